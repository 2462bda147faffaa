"""Shared plumbing for the conditional access / MFA / step-up / CAE interop suites (test_ca_*.py).

This module holds no tests. It gives the test_ca_* files:

* `CaServer`: a dedicated `gatehouse serve` (optionally `--test-clock`, optionally `--config` = a copy of
  the demo tenant file with extra TOML appended), so policies, revocations and clock moves never touch
  the shared session server;
* `Admin`: the admin script, i.e. Graph calls with the demo automation app's app-only token (plain
  `requests`; the msgraph-sdk path is exercised in test_graph_scenarios.py and in test_ca_cae.py);
* `totp()`: RFC 6238 (HMAC-SHA1, 30 s, 6 digits) computed here, at the *server's* time (the test clock
  may be far from the wall clock);
* `PageDriver`: the requests-based, no-JavaScript browser of gatehouse_harness, extended with the MFA
  pages (registration: `#mfaSecret`, `#mfaOtpauthUri`, `#mfaQrCode`; code: `#idTxtBx_SAOTCC_OTC` +
  `#idSubmit_SAOTCC_Continue`);
* `parse_www_authenticate()` and `decode_claims()` for claims challenges.

All traffic goes to 127.0.0.1 / localhost.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import struct
import time
import uuid
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from gatehouse_harness import GRAPH_APP_ID, Browser, GatehouseServer, Outcome, SignInError, parse_page

DEMO_TENANT_FILE = Path(__file__).resolve().parents[3] / "crates" / "gatehouse" / "tenants" / "demo.toml"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
CP1 = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
CAE_MESSAGE = ("Continuous access evaluation resulted in claims challenge with result: InteractionRequired "
               "and code: TokenIssuedBeforeRevocationTimestamp")
WWW_PREFIX = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
              'client_id="00000003-0000-0000-c000-000000000000"')


# ----------------------------------------------------------------------------------------------
# TOTP (RFC 6238 / RFC 4226), written out here on purpose: no pyotp.
# ----------------------------------------------------------------------------------------------

def totp(secret_b32: str, unix_time: int, *, step: int = 30, digits: int = 6) -> str:
    key = base64.b32decode(secret_b32.strip().replace(" ", "").upper() + "=" * (-len(secret_b32.strip()) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(unix_time) // step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return str(code).zfill(digits)


def test_totp_rfc6238_vectors():
    """RFC 6238 appendix B, SHA1 (8 digits) -- checks the helper itself."""
    secret = base64.b32encode(b"12345678901234567890").decode()
    for t, want in [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")]:
        assert totp(secret, t, digits=8) == want, (t, want)


# ----------------------------------------------------------------------------------------------
# Dedicated servers
# ----------------------------------------------------------------------------------------------

class CaServer(GatehouseServer):
    """A dedicated server. `extra_toml` is appended to a copy of the demo tenant file (--config)."""

    def __init__(self, name: str, *, test_clock: bool = False, extra_toml: Optional[str] = None):
        args = []
        self._extra_toml = extra_toml
        super().__init__(name=name, extra_args=())
        if extra_toml is not None:
            cfg = self.workdir / "tenant.toml"
            cfg.write_text(DEMO_TENANT_FILE.read_text() + "\n\n# --- appended by the test ---\n" + extra_toml)
            args += ["--config", str(cfg)]
        if test_clock:
            args.append("--test-clock")
        self.extra_args = args

    # Every client in these tests trusts exactly this server's CA (the session fixture may have pointed
    # REQUESTS_CA_BUNDLE at the shared server's bundle; trust_env=False ignores it).
    def browser(self, stop_prefixes: tuple = ()) -> "PageDriver":
        b = PageDriver(self.base, stop_prefixes=stop_prefixes)
        b.s.trust_env = False
        b.s.verify = str(self.ca_path)
        b.server = self
        return b

    @property
    def authority(self) -> str:
        return self.demo["authority"]

    @property
    def graph(self) -> str:
        return self.demo["graph_base_url"]

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    def now(self) -> int:
        """The server's unix time (test clock: POST /_gatehouse/clock {advance_seconds: 0})."""
        r = self.session().post(f"{self.base}/_gatehouse/clock", json={"advance_seconds": 0}, timeout=30)
        if r.status_code == 200:
            return int(r.json()["now"])
        return int(time.time())

    def advance(self, seconds: int) -> int:
        r = self.session().post(f"{self.base}/_gatehouse/clock", json={"advance_seconds": seconds}, timeout=30)
        assert r.status_code == 200, (r.status_code, r.text)
        return int(r.json()["now"])

    def token(self, data: dict, headers: Optional[dict] = None) -> requests.Response:
        return self.session().post(self.token_endpoint, data=data, headers=headers or {}, timeout=30)

    def graph_call(self, method: str, path: str, token: str, body=None, headers: Optional[dict] = None):
        h = {"Authorization": f"Bearer {token}", **(headers or {})}
        return self.session().request(method, f"{self.graph}{path}", json=body, headers=h, timeout=30)

    def explain(self, request_id: str) -> dict:
        r = self.session().get(f"{self.base}/_gatehouse/explain/{request_id}", timeout=30)
        assert r.status_code == 200, (request_id, r.status_code, r.text)
        return r.json()


def start_server(name: str, **kw) -> CaServer:
    srv = CaServer(name, **kw)
    srv.start()
    if kw.get("test_clock"):
        r = srv.session().post(f"{srv.base}/_gatehouse/clock", json={"advance_seconds": 0}, timeout=30)
        assert r.status_code == 200, f"--test-clock server cannot move its clock: {r.status_code} {r.text}"
    return srv


# ----------------------------------------------------------------------------------------------
# The admin script (automation app, app-only token, plain HTTP)
# ----------------------------------------------------------------------------------------------

class Admin:
    def __init__(self, srv: CaServer):
        self.srv = srv
        self._token = None
        self._exp = 0

    @property
    def token(self) -> str:
        """An app-only token; a new one when the (possibly moved) server clock nears its expiry."""
        if self._token is None or self._exp - 300 <= self.srv.now():
            a = self.srv.demo["apps"]["automation"]
            r = self.srv.token({"grant_type": "client_credentials", "client_id": a["client_id"],
                                "client_secret": a["client_secret"], "scope": GRAPH_DEFAULT})
            assert r.status_code == 200, r.text
            self._token = r.json()["access_token"]
            self._exp = int(json.loads(base64.urlsafe_b64decode(self._token.split(".")[1] + "=="))["exp"])
        return self._token

    def call(self, method: str, path: str, body=None, expect: Optional[int] = None) -> requests.Response:
        r = self.srv.graph_call(method, path, self.token, body)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path} {json.dumps(body)} -> {r.status_code} {r.text}"
        return r

    def new_user(self, prefix: str = "ca", *, roles: tuple = ()) -> dict:
        """POST /users; returns {id, username, password}."""
        nick = f"{prefix}{uuid.uuid4().hex[:8]}"
        password = f"Pw-{uuid.uuid4().hex[:12]}!A1"
        upn = f"{nick}@{self.srv.demo['domain']}"
        r = self.call("POST", "/users", {
            "accountEnabled": True, "displayName": f"CA test {nick}", "mailNickname": nick,
            "userPrincipalName": upn,
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False},
        }, expect=201)
        u = {"id": r.json()["id"], "username": upn, "password": password}
        for template in roles:
            self.call("POST", "/roleManagement/directory/roleAssignments",
                      {"principalId": u["id"], "roleDefinitionId": template, "directoryScopeId": "/"}, expect=201)
        return u

    def policy(self, *, users: list, control: str, state: str = "enabled", apps=(GRAPH_APP_ID,),
               contexts=(), client_app_types=("all",), exclude_users=(), groups=(), roles=(), name=None) -> dict:
        applications = {"includeApplications": list(apps)}
        if contexts:
            applications["includeAuthenticationContextClassReferences"] = list(contexts)
        body = {
            "displayName": name or f"{control} {state} {uuid.uuid4().hex[:6]}",
            "state": state,
            "conditions": {
                "users": {"includeUsers": list(users), "excludeUsers": list(exclude_users),
                          "includeGroups": list(groups), "includeRoles": list(roles)},
                "applications": applications,
                "clientAppTypes": list(client_app_types),
            },
            "grantControls": {"operator": "OR", "builtInControls": [control]},
        }
        r = self.call("POST", "/identity/conditionalAccess/policies", body, expect=201)
        return r.json()

    def grant_delegated(self, client_sp: str, principal: Optional[str], scope: str) -> dict:
        """oauth2PermissionGrants for Graph (principal None = AllPrincipals)."""
        graph_sp = self.call("GET", f"/servicePrincipals?$filter=appId eq '{GRAPH_APP_ID}'", expect=200).json()
        body = {"clientId": client_sp, "consentType": "Principal" if principal else "AllPrincipals",
                "resourceId": graph_sp["value"][0]["id"], "scope": scope}
        if principal:
            body["principalId"] = principal
        return self.call("POST", "/oauth2PermissionGrants", body, expect=201).json()


# ----------------------------------------------------------------------------------------------
# Raw token requests
# ----------------------------------------------------------------------------------------------

def ropc(srv: CaServer, user: dict, *, scope: str = "User.Read offline_access", claims: Optional[str] = None,
         client: str = "public") -> requests.Response:
    data = {"grant_type": "password", "client_id": srv.demo["apps"][client]["client_id"],
            "username": user["username"], "password": user["password"], "scope": scope, "client_info": "1"}
    if claims is not None:
        data["claims"] = claims
    return srv.token(data)


def refresh(srv: CaServer, refresh_token: str, *, scope: str = "User.Read offline_access",
            claims: Optional[str] = None, client: str = "public") -> requests.Response:
    data = {"grant_type": "refresh_token", "client_id": srv.demo["apps"][client]["client_id"],
            "refresh_token": refresh_token, "scope": scope, "client_info": "1"}
    if claims is not None:
        data["claims"] = claims
    return srv.token(data)


# ----------------------------------------------------------------------------------------------
# Claims challenges
# ----------------------------------------------------------------------------------------------

_PARAM_RE = re.compile(r'([A-Za-z_]+)="([^"]*)"')


def parse_www_authenticate(value: str) -> dict:
    assert value.startswith("Bearer "), value
    return dict(_PARAM_RE.findall(value))


def decode_claims(b64: str) -> str:
    """The claims parameter of a challenge: standard base64 *with padding* (kiota's b64decode needs it)."""
    assert len(b64) % 4 == 0, f"claims is not padded base64: {b64!r}"
    return base64.b64decode(b64, validate=True).decode("utf-8")


def assert_cae_challenge(resp: requests.Response, *, revoked_at: Optional[int] = None) -> dict:
    """401 InvalidAuthenticationToken + the B.2 WWW-Authenticate; returns the decoded claims (as JSON)."""
    assert resp.status_code == 401, (resp.status_code, resp.text)
    err = resp.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken", err
    assert err["message"] == CAE_MESSAGE, err
    www = resp.headers.get("WWW-Authenticate", "")
    assert www.startswith(WWW_PREFIX + ', error="insufficient_claims", claims="'), www
    params = parse_www_authenticate(www)
    raw = decode_claims(params["claims"])
    m = re.fullmatch(r'\{"access_token":\{"nbf":\{"essential":true, "value":"(\d+)"\}\}\}', raw)
    assert m, f"claims not in the recorded byte pattern (space after the comma, value a string): {raw!r}"
    if revoked_at is not None:
        assert int(m.group(1)) == revoked_at, (raw, revoked_at)
    return {"raw": raw, "value": int(m.group(1)), "b64": params["claims"], "header": www}


# ----------------------------------------------------------------------------------------------
# The pages, with MFA
# ----------------------------------------------------------------------------------------------

_SECRET_RE = re.compile(r'id="mfaSecret"[^>]*>([A-Z2-7= ]+)<')
_OTPAUTH_RE = re.compile(r'id="mfaOtpauthUri"[^>]*href="([^"]+)"')


class PageDriver(Browser):
    """gatehouse_harness.Browser + the MFA pages. `totp_secrets` maps username -> base32 secret and is
    filled in when the registration page shows a new secret, so a later sign-in can answer the code page."""

    server: CaServer
    totp_secrets: dict = {}

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.totp_secrets = {}
        self.mfa_pages: list = []
        self.otpauth_uris: dict = {}

    def _now(self) -> int:
        return self.server.now() if getattr(self, "server", None) else int(time.time())

    def run(self, start_url: str, *, username: Optional[str], password: Optional[str], kmsi: bool = True,
            consent: Optional[str] = "accept", otc_override: Optional[str] = None, max_steps: int = 14) -> Outcome:
        """Like Browser.sign_in, and answers the MFA registration / code pages with a TOTP."""
        return self.resume(self.open(start_url), username=username, password=password, kmsi=kmsi,
                           consent=consent, otc_override=otc_override, max_steps=max_steps)

    def resume(self, opened, *, username: Optional[str], password: Optional[str], kmsi: bool = True,
               consent: Optional[str] = "accept", otc_override: Optional[str] = None, max_steps: int = 14,
               steps: Optional[list] = None) -> Outcome:
        """Continue from (url, response, redirect_status), e.g. what submit() returned."""
        url, resp, redirect_status = opened
        steps = list(steps or [])
        for _ in range(max_steps):
            if redirect_status is not None:
                q = parse_qs(urlsplit(url).query, keep_blank_values=True)
                params = {k: v[0] for k, v in q.items()}
                return Outcome("redirect", steps, url=url, params=params, redirect_status=redirect_status)
            page = parse_page(url, resp)
            ids = page.ids
            posts = [f for f in page.forms if f.method == "post"]
            if len(posts) == 1 and posts[0].action and self._is_stop(urljoin(url, posts[0].action)):
                params = {c.name: c.value for c in posts[0].controls if c.name and c.type == "hidden"}
                return Outcome("form_post", steps, url=urljoin(url, posts[0].action), params=params)
            if ("i0118" in ids and "password" in steps) or ("i0116" in ids and "i0118" not in ids and "username" in steps):
                return Outcome("page", steps, page=page)
            if "idTxtBx_SAOTCC_OTC" in ids:
                if "idSpan_SAOTCC_Error_OTC" in ids and ("mfa_code" in steps or "mfa_register" in steps):
                    return Outcome("page", steps, page=page)
                m = _SECRET_RE.search(page.text)
                if m:
                    steps.append("mfa_register")
                    secret = m.group(1).replace(" ", "")
                    self.totp_secrets[username] = secret
                    assert "mfaQrCode" in ids and "<svg" in page.text, "registration page without the QR code"
                    m_uri = _OTPAUTH_RE.search(page.text)
                    uri = html.unescape(m_uri.group(1)) if m_uri else ""
                    assert uri.startswith("otpauth://totp/"), page.text[:3000]
                    assert f"secret={secret}" in uri, uri
                    self.otpauth_uris[username] = uri
                else:
                    steps.append("mfa_code")
                    secret = self.totp_secrets.get(username)
                    if secret is None and otc_override is None:
                        return Outcome("page", steps, page=page)
                self.mfa_pages.append(page)
                code = otc_override if otc_override is not None else totp(secret, self._now())
                url, resp, redirect_status = self.submit(page, {"idTxtBx_SAOTCC_OTC": code}, "idSubmit_SAOTCC_Continue")
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
                url, resp, redirect_status = self.submit(page, {}, "idBtn_Accept" if consent == "accept" else "idBtn_Back")
            else:
                return Outcome("page", steps, page=page)
        raise SignInError(f"sign-in did not finish after {max_steps} steps: {steps}")
