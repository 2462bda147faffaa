"""Starts and stops a Gatehouse server for the interop tests, and helpers shared by the tests.

Everything here talks to 127.0.0.1 / localhost only.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

REPO_ROOT = Path(__file__).resolve().parents[3]
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH = "https://graph.microsoft.com"
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$")
DESCRIPTION_RE = re.compile(
    r"^AADSTS(?P<code>\d+): (?P<msg>.*)\r\nTrace ID: (?P<trace>[0-9a-fA-F-]{36})\r\n"
    r"Correlation ID: (?P<corr>[0-9a-fA-F-]{36})\r\nTimestamp: (?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z)$",
    re.S,
)


# ----------------------------------------------------------------------------------------------
# Server process
# ----------------------------------------------------------------------------------------------

def gatehouse_binary() -> Path:
    """Path of the gatehouse binary; builds it with cargo when it is missing.

    GATEHOUSE_BIN overrides the path. GATEHOUSE_BUILD=1 forces `cargo build -p gatehouse` first
    (cargo is a no-op when the build is up to date)."""
    override = os.environ.get("GATEHOUSE_BIN")
    binary = Path(override) if override else REPO_ROOT / "target" / "debug" / "gatehouse"
    if override:
        if not binary.exists():
            raise RuntimeError(f"GATEHOUSE_BIN={override} does not exist")
        return binary
    if not binary.exists() or os.environ.get("GATEHOUSE_BUILD") == "1":
        cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
        proc = subprocess.run([cargo, "build", "-p", "gatehouse"], cwd=REPO_ROOT)
        if proc.returncode != 0 and not binary.exists():
            raise RuntimeError("cargo build -p gatehouse failed and no binary exists")
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class GatehouseServer:
    """One `gatehouse serve` process on a fresh data dir and a free port."""

    def __init__(self, workdir: Optional[Path] = None, name: str = "gatehouse", extra_args: tuple = ()):
        self.binary = gatehouse_binary()
        self.extra_args = list(extra_args)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{name}-it-"))
        self.data_dir = self.workdir / "data"
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.base = f"https://localhost:{self.port}"
        self.log_path = self.workdir / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.demo: dict = {}
        self.ca_path: Optional[Path] = None
        self.bundle_path = self.workdir / "ca-bundle.pem"

    # A requests session that trusts exactly this server's CA, whatever the environment says.
    def session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.ca_path)
        return s

    def start(self, timeout: float = 120.0) -> "GatehouseServer":
        self._log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--data-dir", str(self.data_dir), "--listen", self.listen, *self.extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=self.workdir,
        )
        deadline = time.time() + timeout
        ca = self.data_dir / "tls" / "ca.pem"
        while time.time() < deadline:
            self._check_alive()
            if ca.exists() and _port_open(self.port):
                break
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"gatehouse did not open {self.listen} within {timeout}s; log:\n{self.log_tail()}")
        self.demo = self.read_demo()
        self.ca_path = Path(self.demo.get("ca_cert") or ca)
        self.bundle_path.write_bytes(SYSTEM_BUNDLE.read_bytes() + b"\n" + self.ca_path.read_bytes())
        url = f"{self.base}/{self.demo['tenant_id']}/v2.0/.well-known/openid-configuration"
        s = self.session()
        last = None
        while time.time() < deadline:
            self._check_alive()
            try:
                r = s.get(url, timeout=5)
                if r.status_code == 200:
                    return self
                last = f"HTTP {r.status_code}: {r.text[:300]}"
            except requests.RequestException as e:  # noqa: PERF203
                last = repr(e)
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"gatehouse not ready ({url}): {last}; log:\n{self.log_tail()}")

    def read_demo(self) -> dict:
        proc = subprocess.run(
            [str(self.binary), "demo", "--json", "--data-dir", str(self.data_dir), "--listen", self.listen],
            capture_output=True, text=True, timeout=120, cwd=self.workdir,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"gatehouse demo --json failed ({proc.returncode}): {proc.stderr}\n{proc.stdout}")
        out = proc.stdout.strip()
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            # tolerate log lines before the JSON document
            start = out.find("{")
            return json.loads(out[start:])

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"gatehouse exited with {self.proc.returncode}; log:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        try:
            self._log.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------------------------
# Tokens and errors
# ----------------------------------------------------------------------------------------------

def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_jwt(token: str) -> tuple[dict, dict]:
    parts = token.split(".")
    assert len(parts) == 3, f"not a JWS compact token: {token[:40]}..."
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))


def assert_v1_graph_token(token: str, tid: str, *, appid: str, aud: str, idtyp: str) -> dict:
    header, claims = decode_jwt(token)
    assert header.get("alg") == "RS256", header
    assert header.get("typ") == "JWT", header
    assert header.get("kid"), header
    assert claims.get("iss") == f"https://sts.windows.net/{tid}/", claims
    assert claims.get("aud") == aud, claims
    assert claims.get("ver") == "1.0", claims
    assert claims.get("appid") == appid, claims
    assert claims.get("tid") == tid, claims
    assert claims.get("idtyp") == idtyp, claims
    assert GUID_RE.match(str(claims.get("oid", ""))), claims
    for k in ("iat", "nbf", "exp"):
        assert isinstance(claims.get(k), int), (k, claims)
    assert claims["exp"] > time.time(), claims
    assert claims["nbf"] <= time.time() + 300, claims
    assert claims.get("uti") or claims.get("jti"), claims
    if idtyp == "app":
        assert "scp" not in claims, claims
        assert isinstance(claims.get("roles"), list), claims
    else:
        assert isinstance(claims.get("scp"), str), claims
        assert "roles" not in claims or isinstance(claims["roles"], list), claims
    return claims


def assert_id_token(token: str, *, client_id: str, tid: str, base: str, user: dict, nonce: Optional[str] = None) -> dict:
    header, claims = decode_jwt(token)
    assert header.get("alg") == "RS256" and header.get("kid"), header
    assert claims.get("aud") == client_id, claims
    assert claims.get("iss") == f"{base}/{tid}/v2.0", claims
    assert claims.get("ver") == "2.0", claims
    assert claims.get("tid") == tid, claims
    assert claims.get("oid") == user["object_id"], claims
    assert str(claims.get("preferred_username", "")).lower() == user["username"].lower(), claims
    assert claims.get("sub"), claims
    if nonce is not None:
        assert claims.get("nonce") == nonce, claims
    return claims


def client_info(result: dict) -> dict:
    return json.loads(b64url_decode(result["client_info"]))


def assert_aad_error_body(body: dict, *, code: int, error: Optional[str] = None,
                          suberror: Optional[str] = None, correlation_id: Optional[str] = None) -> None:
    """Entra token-endpoint error shape (reference C.1)."""
    assert "error" in body, body
    if error is not None:
        assert body["error"] == error, body
    assert body.get("error_codes") == [code] or (isinstance(body.get("error_codes"), list) and code in body["error_codes"]), body
    desc = body.get("error_description", "")
    m = DESCRIPTION_RE.match(desc)
    assert m, f"error_description not in Entra format: {desc!r}"
    assert m.group("code") == str(body["error_codes"][0]), body
    assert TIMESTAMP_RE.match(body.get("timestamp", "")), body
    assert GUID_RE.match(body.get("trace_id", "")), body
    assert GUID_RE.match(body.get("correlation_id", "")), body
    assert m.group("trace").lower() == body["trace_id"].lower(), body
    assert m.group("corr").lower() == body["correlation_id"].lower(), body
    assert m.group("ts") == body["timestamp"], body
    assert body.get("error_uri", "").endswith(f"/error?code={code}") or "error_uri" not in body, body
    if suberror is not None:
        assert body.get("suberror") == suberror, body
    if correlation_id is not None:
        assert body["correlation_id"].lower() == correlation_id.lower(), body


def assert_diagnosis_header(resp: requests.Response) -> str:
    value = resp.headers.get("x-gatehouse-diagnosis")
    assert value, f"no x-gatehouse-diagnosis header on error response {resp.status_code}; headers={dict(resp.headers)}"
    assert re.match(r"^[A-Za-z0-9_.:-]+; *explain=\S+$", value), value
    return value


def new_correlation_id() -> str:
    return str(uuid.uuid4())


# ----------------------------------------------------------------------------------------------
# HTML form driver (no JavaScript)
# ----------------------------------------------------------------------------------------------

@dataclass
class Control:
    tag: str
    type: str
    name: Optional[str]
    value: str
    id: Optional[str]
    checked: bool = False


@dataclass
class Form:
    action: Optional[str]
    method: str
    id: Optional[str]
    controls: list = field(default_factory=list)

    def by_id(self, element_id: str) -> Optional[Control]:
        for c in self.controls:
            if c.id == element_id:
                return c
        return None


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.ids: set[str] = set()
        self._current: Optional[Form] = None
        self._textarea: Optional[Control] = None
        self._button: Optional[Control] = None
        self._select: Optional[Control] = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "form":
            self._current = Form(action=a.get("action"), method=(a.get("method") or "get").lower(), id=a.get("id"))
            self.forms.append(self._current)
            return
        if self._current is None:
            return
        if tag == "input":
            typ = (a.get("type") or "text").lower()
            self._current.controls.append(Control(
                "input", typ, a.get("name"), a.get("value", "on" if typ in ("checkbox", "radio") else ""),
                a.get("id"), "checked" in a))
        elif tag == "button":
            typ = (a.get("type") or "submit").lower()
            self._button = Control("button", typ, a.get("name"), a.get("value", ""), a.get("id"))
            self._current.controls.append(self._button)
        elif tag == "textarea":
            self._textarea = Control("textarea", "textarea", a.get("name"), "", a.get("id"))
            self._current.controls.append(self._textarea)
        elif tag == "select":
            self._select = Control("select", "select", a.get("name"), "", a.get("id"))
            self._current.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            if "selected" in a or not self._select.value:
                self._select.value = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "button":
            self._button = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data


@dataclass
class Page:
    url: str
    status: int
    text: str
    headers: dict
    forms: list
    ids: set

    @property
    def form(self) -> Form:
        posts = [f for f in self.forms if f.method == "post"]
        assert len(posts) == 1, f"expected exactly one <form method=post> on {self.url}, found {len(posts)}:\n{self.text[:2000]}"
        return posts[0]


def parse_page(url: str, resp: requests.Response) -> Page:
    p = _FormParser()
    text = resp.text
    p.feed(text)
    return Page(url, resp.status_code, text, dict(resp.headers), p.forms, p.ids)


class SignInError(AssertionError):
    pass


@dataclass
class Outcome:
    """Where the sign-in ended."""
    kind: str                    # "redirect" | "form_post" | "page"
    steps: list                  # pages seen, e.g. ["username", "password", "kmsi", "consent"]
    url: Optional[str] = None    # the redirect_uri URL with its query
    params: Optional[dict] = None
    page: Optional[Page] = None  # final page (kind == "page")
    redirect_status: Optional[int] = None


class Browser:
    """A cookie-keeping, no-JavaScript browser that drives the Gatehouse pages with requests."""

    def __init__(self, server_base: str, stop_prefixes: tuple = ()):
        self.s = requests.Session()  # REQUESTS_CA_BUNDLE points to the bundle with Gatehouse's CA
        self.s.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) gatehouse-interop"
        self.base = server_base.rstrip("/")
        self.stop_prefixes = stop_prefixes

    def _is_stop(self, url: str) -> bool:
        return any(url.startswith(p) for p in self.stop_prefixes) or not url.startswith(self.base)

    def open(self, url: str, method: str = "GET", data=None):
        """Request url, following redirects while they stay on the server. Returns (final_url, response, redirect_status).
        When a redirect leaves the server (e.g. to the redirect_uri), it is not followed: the response is the 30x."""
        hops = 0
        while True:
            if method == "GET":
                r = self.s.get(url, allow_redirects=False, timeout=30)
            else:
                r = self.s.post(url, data=data, allow_redirects=False, timeout=30)
            if r.status_code in (301, 302, 303, 307, 308) and "Location" in r.headers:
                nxt = urljoin(url, r.headers["Location"])
                if self._is_stop(nxt):
                    return nxt, r, r.status_code
                if r.status_code in (301, 302, 303):
                    method, data = "GET", None
                url = nxt
                hops += 1
                if hops > 10:
                    raise SignInError("too many redirects")
                continue
            return url, r, None

    def submit(self, page: Page, fill: dict, click: Optional[str]):
        form = page.form
        data = []
        clicked = None
        for c in form.controls:
            if c.id is not None and c.id == click:
                clicked = c
                continue
            if c.type in ("submit", "button", "image", "reset") or c.tag == "button":
                continue
            if not c.name:
                continue
            if c.type in ("checkbox", "radio"):
                checked = c.checked
                if c.id in fill:
                    checked = bool(fill[c.id])
                if checked:
                    data.append((c.name, c.value or "on"))
                continue
            value = fill.get(c.id, c.value) if c.id else c.value
            data.append((c.name, value))
        if click is not None:
            if clicked is None:
                raise SignInError(f"button #{click} not in the form on {page.url}:\n{page.text[:1500]}")
            if clicked.name:
                data.append((clicked.name, clicked.value))
        missing = [i for i in fill if form.by_id(i) is None]
        if missing:
            raise SignInError(f"inputs {missing} not in the form on {page.url}:\n{page.text[:1500]}")
        action = urljoin(page.url, form.action or page.url)
        return self.open(action, method="POST", data=data)

    def sign_in(self, start_url: str, *, username: Optional[str], password: Optional[str], kmsi: bool = True,
                consent: Optional[str] = "accept", consent_for_org: bool = False, otc: Optional[str] = None,
                max_steps: int = 12) -> Outcome:
        """Walk the Entra-like pages. consent: "accept" | "cancel" | None (stop at the consent page)."""
        url, resp, redirect_status = self.open(start_url)
        steps: list = []
        for _ in range(max_steps):
            if redirect_status is not None:
                q = parse_qs(urlsplit(url).query, keep_blank_values=True)
                params = {k: v[0] for k, v in q.items()}
                if urlsplit(url).fragment:
                    params.update({k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()})
                return Outcome("redirect", steps, url=url, params=params, redirect_status=redirect_status)
            page = parse_page(url, resp)
            ids = page.ids
            # response_mode=form_post: a form that posts to the redirect_uri outside the server
            posts = [f for f in page.forms if f.method == "post"]
            if len(posts) == 1 and posts[0].action and self._is_stop(urljoin(url, posts[0].action)):
                params = {c.name: c.value for c in posts[0].controls if c.name and c.type == "hidden"}
                return Outcome("form_post", steps, url=urljoin(url, posts[0].action), params=params)
            def seen(step):
                return step in steps
            if ("i0118" in ids and seen("password")) or ("i0116" in ids and "i0118" not in ids and seen("username")):
                # the same page again: an error (wrong password, unknown user, locked account, ...)
                return Outcome("page", steps, page=page)
            if "otc" in ids and otc is not None and "device_code" not in steps:
                steps.append("device_code")
                url, resp, redirect_status = self.submit(page, {"otc": otc}, "idSIButton9")
            elif "i0118" in ids and password is not None and len(posts) == 1:
                steps.append("password")
                url, resp, redirect_status = self.submit(page, {"i0118": password}, "idSIButton9")
            elif "i0116" in ids and username is not None and len(posts) == 1:
                steps.append("username")
                url, resp, redirect_status = self.submit(page, {"i0116": username}, "idSIButton9")
            elif "KmsiCheckboxField" in ids:
                steps.append("kmsi")
                url, resp, redirect_status = self.submit(page, {}, "idSIButton9" if kmsi else "idBtn_Back")
            elif "idBtn_Accept" in ids:
                steps.append("consent")
                if consent is None:
                    return Outcome("page", steps, page=page)
                fill = {}
                if consent_for_org:
                    box = [c for c in page.form.controls if c.type == "checkbox"]
                    assert box, "no 'consent on behalf of your organization' checkbox on the consent page"
                    fill[box[0].id] = True
                if consent == "accept":
                    url, resp, redirect_status = self.submit(page, fill, "idBtn_Accept")
                else:
                    url, resp, redirect_status = self.submit(page, {}, "idBtn_Back")
            elif "device_code" in steps and "idSIButton9" in ids and len(posts) == 1 and "device_confirm" not in steps:
                steps.append("device_confirm")
                url, resp, redirect_status = self.submit(page, {}, "idSIButton9")
            else:
                return Outcome("page", steps, page=page)
        raise SignInError(f"sign-in did not finish after {max_steps} steps: {steps}")
