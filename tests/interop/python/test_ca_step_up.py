"""Step-up with a conditional access authentication context at Microsoft Graph (reference B.3, B.6).

A dedicated server whose tenant file is the demo tenant plus:
  authentication context c1; the Graph operation PATCH /users/{id} protected by c1; a policy
  "MFA for c1" (all users); a helpdesk user `stepper` (User Administrator) with a TOTP authenticator.

Shown with real clients:
* the 401 claims challenge (cp1 tokens) and the 403 (no cp1) on the wire;
* MSAL Python with client_capabilities=["CP1"]: challenge -> silent with claims_challenge fails with
  50076/50079 -> initiate_auth_code_flow(claims_challenge=...) -> password + MFA pages (registration with
  the QR code / otpauth URI for a user created through Graph; TOTP computed by the test) -> token with
  acrs ["c1"] -> the PATCH succeeds;
* msgraph-sdk (kiota) + azure-identity InteractiveBrowserCredential: kiota receives the 401, asks the
  credential for a token with the claims, the credential opens "the browser" (webbrowser.open, patched to
  drive the pages with requests and deliver the redirect to MSAL's own loopback listener), and kiota's one
  retry succeeds.
"""
from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import uuid
import webbrowser

import httpx
import msal
import pytest
import requests

from gatehouse_harness import decode_jwt
from test_ca_support import (CP1, WWW_PREFIX, Admin, decode_claims, parse_www_authenticate, ropc, start_server,
                             totp)

pytestmark = [
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
STEPPER_SECRET = base64.b32encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:4]).decode().rstrip("=")
STEPPER_PASSWORD = f"Step-{uuid.uuid4().hex[:10]}!9"
ACRS_C1 = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
AUTH_CONTEXT_MESSAGE = ("Continuous access evaluation resulted in challenge with result: InteractionRequired and "
                        "code: AuthenticationContextRequired")
SCOPE = "User.ReadWrite.All offline_access"

EXTRA_TOML = f'''
[[users]]
key = "stepper"
user_name = "stepper"
display_name = "Stella Stepper"
password = "{STEPPER_PASSWORD}"
roles = ["User Administrator"]
totp_secret = "{STEPPER_SECRET}"

[[authentication_contexts]]
id = "c1"
displayName = "Sensitive directory changes"

[[protected_operations]]
method = "PATCH"
path = "/users/{{id}}"
authenticationContext = "c1"

[[conditional_access_policies]]
displayName = "MFA for c1"
state = "enabled"
[conditional_access_policies.conditions.users]
includeUsers = ["All"]
[conditional_access_policies.conditions.applications]
includeAuthenticationContextClassReferences = ["c1"]
[conditional_access_policies.grantControls]
builtInControls = ["mfa"]
'''


@pytest.fixture(scope="module")
def srv():
    s = start_server("gatehouse-ca-stepup", test_clock=True, extra_toml=EXTRA_TOML)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv):
    return Admin(srv)


@pytest.fixture(scope="module")
def stepper(srv, admin):
    u = dict(srv.demo["users"]["stepper"])
    u["id"] = u["object_id"]
    admin.grant_delegated(srv.demo["apps"]["public"]["service_principal_id"], u["id"],
                          "User.Read User.ReadWrite.All offline_access openid profile")
    return u


def _helpdesk_user(srv, admin):
    u = admin.new_user("hd", roles=(USER_ADMINISTRATOR,))
    admin.grant_delegated(srv.demo["apps"]["public"]["service_principal_id"], u["id"],
                          "User.Read User.ReadWrite.All offline_access openid profile")
    return u


def _patch(srv, token, target, name):
    return srv.graph_call("PATCH", f"/users/{target}", token, {"displayName": name})


def test_context_challenge_on_the_wire(srv, admin, stepper):
    target = admin.new_user("tgt")
    cae = ropc(srv, stepper, scope=SCOPE, claims=CP1)
    assert cae.status_code == 200, cae.text
    c = decode_jwt(cae.json()["access_token"])[1]
    assert c["xms_cc"] == ["cp1"] and "acrs" not in c, c
    # unprotected operations are not affected
    assert srv.graph_call("GET", f"/users/{target['id']}", cae.json()["access_token"]).status_code == 200

    r = _patch(srv, cae.json()["access_token"], target["id"], "Renamed")
    assert r.status_code == 401, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken", err
    assert err["message"] == AUTH_CONTEXT_MESSAGE, err
    www = r.headers["WWW-Authenticate"]
    assert www.startswith(WWW_PREFIX + ', error="insufficient_claims", claims="'), www
    assert decode_claims(parse_www_authenticate(www)["claims"]) == ACRS_C1
    e = srv.explain(r.headers["request-id"])
    assert e["wire"]["status"] == 401 and "c1" in json.dumps(e["evidence"]), e

    # Without cp1, Graph cannot send a challenge the client would understand: 403.
    plain = ropc(srv, stepper, scope=SCOPE)
    r = _patch(srv, plain.json()["access_token"], target["id"], "Renamed")
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "Authorization_RequestDenied", r.text
    assert "insufficient_claims" not in r.headers.get("WWW-Authenticate", "")
    e = srv.explain(r.headers["request-id"])
    assert "cp1" in json.dumps(e["fix"]) or "CP1" in json.dumps(e["fix"]), e

    # The token endpoint honours the same claims: acrs c1 requires MFA (registered -> 50076).
    r = ropc(srv, stepper, scope=SCOPE, claims=ACRS_C1)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "interaction_required" and r.json()["error_codes"] == [50076], r.text
    assert json.loads(r.json()["claims"])["access_token"]["capolids"]["essential"] is True


def test_msal_python_step_up_with_registration(srv, admin):
    helpdesk = _helpdesk_user(srv, admin)
    target = admin.new_user("tgt")
    app = msal.PublicClientApplication(srv.demo["apps"]["public"]["client_id"], authority=srv.authority,
                                       instance_discovery=False, http_client=srv.session(),
                                       client_capabilities=["CP1"])
    r = app.acquire_token_by_username_password(helpdesk["username"], helpdesk["password"],
                                               scopes=["User.ReadWrite.All"])
    assert "access_token" in r, r
    resp = _patch(srv, r["access_token"], target["id"], "Step-up 1")
    assert resp.status_code == 401, resp.text
    claims = decode_claims(parse_www_authenticate(resp.headers["WWW-Authenticate"])["claims"])
    assert claims == ACRS_C1

    # Silent with the challenge: refresh with {"acrs"..,"xms_cc"..} -> the c1 policy needs MFA -> 50079
    # (no authenticator yet). MSAL returns the error; the app goes interactive with the same claims.
    account = app.get_accounts(username=helpdesk["username"])[0]
    s = app.acquire_token_silent_with_error(["User.ReadWrite.All"], account=account, claims_challenge=claims)
    assert s and s.get("error") == "interaction_required" and s.get("error_codes") == [50079], s
    assert s.get("suberror") == "basic_action", s

    flow = app.initiate_auth_code_flow(["User.ReadWrite.All"], redirect_uri="http://localhost",
                                       claims_challenge=claims, login_hint=helpdesk["username"])
    b = srv.browser(stop_prefixes=("http://localhost",))
    o = b.run(flow["auth_uri"], username=helpdesk["username"], password=helpdesk["password"])
    assert o.kind == "redirect" and o.params.get("code"), (o.steps, o.page and o.page.text[-1500:])
    assert o.steps[:2] == ["password", "mfa_register"], o.steps
    uri = b.otpauth_uris[helpdesk["username"]]
    assert uri.startswith("otpauth://totp/") and "algorithm=SHA1" in uri and "digits=6" in uri and "period=30" in uri, uri
    res = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in res, res
    c = decode_jwt(res["access_token"])[1]
    assert c["acrs"] == ["c1"] and c["amr"] == ["pwd", "mfa"] and c["xms_cc"] == ["cp1"], c

    assert _patch(srv, res["access_token"], target["id"], "Step-up 1").status_code == 204
    got = srv.graph_call("GET", f"/users/{target['id']}", res["access_token"]).json()
    assert got["displayName"] == "Step-up 1", got

    # The stepped-up refresh token keeps acrs when the app asks for the context again.
    s2 = app.acquire_token_silent_with_error(["User.ReadWrite.All"], account=app.get_accounts(
        username=helpdesk["username"])[0], claims_challenge=claims)
    assert s2 and "access_token" in s2, s2
    assert decode_jwt(s2["access_token"])[1].get("acrs") == ["c1"]
    assert _patch(srv, s2["access_token"], target["id"], "Step-up 2").status_code == 204


class PageDrivingBrowser:
    """Stands in for the system browser that MSAL opens (webbrowser.open): drives the Gatehouse pages with
    requests in a thread and delivers the final redirect / form_post to MSAL's loopback listener."""

    def __init__(self, srv, user, secret):
        self.srv, self.user, self.secret = srv, user, secret
        self.opened: list = []
        self.outcomes: list = []
        self.errors: list = []
        self.driver = srv.browser()  # one browser: its session cookie persists across sign-ins
        self.driver.totp_secrets[user["username"]] = secret

    def open(self, url, new=0, autoraise=True):
        self.opened.append(url)
        threading.Thread(target=self._drive, args=(url,), daemon=True).start()
        return True

    def _drive(self, url):
        try:
            o = self.driver.run(url, username=self.user["username"], password=self.user["password"])
            self.outcomes.append(o)
            local = requests.Session()
            local.trust_env = False
            if o.kind == "form_post":
                local.post(o.url, data=o.params, timeout=30)
            elif o.kind == "redirect":
                local.get(o.url, timeout=30)
            else:
                raise AssertionError(f"sign-in ended on a page: {o.steps} {o.page.text[-1500:]}")
        except Exception as e:  # noqa: BLE001 -- reported by the test
            self.errors.append(repr(e))


class RecordingCredential:
    def __init__(self, inner):
        self.inner = inner
        self.calls: list = []

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        tok = self.inner.get_token(*scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs)
        self.calls.append({"scopes": scopes, "claims": claims, "enable_cae": enable_cae, "token": tok.token})
        return tok


def test_msgraph_sdk_follows_context_challenge_with_interactive_browser_credential(srv, admin, stepper, monkeypatch):
    from azure.identity import InteractiveBrowserCredential
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.user import User
    from msgraph.graph_request_adapter import options as graph_default_options
    from msgraph_core import GraphClientFactory
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    target = admin.new_user("tgt")
    browser = PageDrivingBrowser(srv, stepper, STEPPER_SECRET)
    monkeypatch.setattr(webbrowser, "open", browser.open)
    inner = InteractiveBrowserCredential(
        tenant_id=srv.demo["tenant_id"], client_id=srv.demo["apps"]["public"]["client_id"],
        authority=srv.base, disable_instance_discovery=True, connection_verify=str(srv.ca_path),
        login_hint=stepper["username"], timeout=60)
    cred = RecordingCredential(inner)
    auth = AzureIdentityAuthenticationProvider(cred, scopes=["https://graph.microsoft.com/User.ReadWrite.All"],
                                               allowed_hosts=["localhost"])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(srv.ca_path)), http2=True),
        options=graph_default_options)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = srv.graph
    client = GraphServiceClient(request_adapter=adapter)
    loop = asyncio.new_event_loop()
    try:
        # First call: the credential signs in through "the browser" (password only: no context asked yet).
        got = loop.run_until_complete(client.users.by_user_id(target["id"]).get())
        assert got.id == target["id"], got
        assert not browser.errors, browser.errors
        assert len(browser.opened) == 1 and browser.outcomes[0].steps[:1] == ["password"], \
            [o.steps for o in browser.outcomes]
        assert not any(s.startswith("mfa") for s in browser.outcomes[0].steps)
        first = decode_jwt(cred.calls[-1]["token"])[1]
        assert first["xms_cc"] == ["cp1"] and "acrs" not in first, first

        # The protected PATCH: 401 + acrs challenge -> kiota asks the credential with the claims -> the
        # credential goes interactive again with claims (session cookie: MFA code page only) -> retry works.
        n = len(cred.calls)
        loop.run_until_complete(client.users.by_user_id(target["id"]).patch(User(display_name="Via SDK step-up")))
        assert not browser.errors, browser.errors
        retry = cred.calls[n:]
        assert any(c["claims"] == ACRS_C1 and c["enable_cae"] for c in retry), retry
        assert len(browser.opened) == 2, browser.opened
        assert "acrs" in browser.opened[-1], browser.opened[-1]
        assert "mfa_code" in browser.outcomes[-1].steps, browser.outcomes[-1].steps
        stepped = decode_jwt(retry[-1]["token"])[1]
        assert stepped["acrs"] == ["c1"] and stepped["amr"] == ["pwd", "mfa"], stepped
    finally:
        loop.close()
    check = srv.graph_call("GET", f"/users/{target['id']}", admin.token).json()
    assert check["displayName"] == "Via SDK step-up", check
