"""Continuous access evaluation (CAE) with real clients, on a dedicated `serve --test-clock` server whose
clock the tests move (POST /_gatehouse/clock) instead of sleeping:

* the recorded CAE sequence (reference B.5) replayed on the wire;
* MSAL Python with client_capabilities=["CP1"]: the claims challenge from Graph after revokeSignInSessions,
  a silent refresh with it (50173), then an interactive sign-in with claims_challenge (pages driven with
  requests) and the Graph call succeeding;
* azure-identity `get_token(..., enable_cae=True)` and msgraph-sdk (kiota) retrying the 401 claims
  challenge by itself, the credential re-authenticating with the claims (UsernamePasswordCredential: the
  only azure-identity credential that can sign a user in again without a person, offline);
* every revocation event (revokeSignInSessions, password change, password reset, account disabled, user
  deleted): CAE token challenged, non-CAE token still accepted, refresh token 50173;
* both clocks at their boundaries: token expiry (exp + 5 min skew) and the revocation time.
"""
from __future__ import annotations

import asyncio
import json
import re
import ssl
import time

import httpx
import msal
import pytest

from gatehouse_harness import GRAPH_APP_ID, assert_aad_error_body, decode_jwt
from test_ca_support import (CAE_MESSAGE, CP1, GRAPH_DEFAULT, Admin, assert_cae_challenge, refresh, ropc,
                             start_server)

pytestmark = [
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

REDIRECT = "http://localhost"
MSG_50173 = re.compile(
    r"^AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed\. "
    r"The user might have changed or reset their password\. The grant was issued on '(?P<issued>[^']+)' and the "
    r"TokensValidFrom date \(before which tokens are not valid\) for this user is '(?P<valid_from>[^']+)'\.\r\n")


@pytest.fixture(scope="module")
def srv():
    s = start_server("gatehouse-ca-cae", test_clock=True)
    yield s
    s.stop()


USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"


@pytest.fixture(scope="module")
def admin(srv):
    a = Admin(srv)
    # An app resets passwords only with User.ReadWrite.All *and* the User Administrator role (the server's
    # explanation of the 403 says so; reference E.5): the admin script assigns it to its own service principal.
    a.call("POST", "/roleManagement/directory/roleAssignments",
           {"principalId": srv.demo["apps"]["automation"]["service_principal_id"],
            "roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"}, expect=201)
    return a


def _ok(resp, status=200):
    assert resp.status_code == status, (resp.status_code, resp.text)
    return resp.json() if resp.content else None


def _merge(challenge: str, capabilities: str = CP1) -> str:
    """What MSAL sends: the challenge with the client capabilities merged in (B.5 step 6)."""
    c = json.loads(challenge)
    c["access_token"].update(json.loads(capabilities)["access_token"])
    return json.dumps(c, separators=(",", ":"))


def _assert_50173(resp, *, valid_from: int):
    assert resp.status_code == 400, (resp.status_code, resp.text)
    body = resp.json()
    assert_aad_error_body(body, code=50173, error="invalid_grant", suberror="bad_token")
    m = MSG_50173.match(body["error_description"])
    assert m, body["error_description"]
    assert m.group("valid_from").startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(valid_from))), \
        (m.group("valid_from"), valid_from)
    return body


# ----------------------------------------------------------------------------------------------
# B.5 replayed
# ----------------------------------------------------------------------------------------------

def test_recorded_cae_sequence_replayed(srv, admin):
    u = admin.new_user("b5")
    # The recording revokes with the user's own token (/me/revokeSignInSessions): the user consents to
    # User.RevokeSessions.All for the public client (an admin grants it for that user through Graph).
    admin.grant_delegated(srv.demo["apps"]["public"]["service_principal_id"], u["id"],
                          "User.Read User.RevokeSessions.All offline_access openid profile")
    scope = "User.Read User.RevokeSessions.All offline_access"

    # 3. password grant with xms_cc cp1 -> 200, expires_in 70000
    t = _ok(ropc(srv, u, scope=scope, claims=CP1))
    assert t["expires_in"] == 70000 and t["ext_expires_in"] == 70000, t
    at, rt = t["access_token"], t["refresh_token"]
    assert decode_jwt(at)[1]["xms_cc"] == ["cp1"]
    srv.advance(2)

    # 4. POST /me/revokeSignInSessions -> 200 Edm.Boolean true
    r = srv.graph_call("POST", "/me/revokeSignInSessions", at)
    assert r.status_code == 200, r.text
    assert r.json() == {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": True}
    revoked_at = srv.now()
    srv.advance(2)

    # 5. the same call -> 401 + the B.2 challenge
    r = srv.graph_call("POST", "/me/revokeSignInSessions", at)
    ch = assert_cae_challenge(r)
    assert revoked_at - 1 <= ch["value"] <= revoked_at, (ch, revoked_at)
    inner = r.json()["error"]["innerError"]
    assert inner["request-id"] == r.headers["request-id"], inner

    # 6. refresh with the challenge merged with cp1 -> 400 50173 bad_token
    merged = _merge(ch["raw"])
    assert merged == '{"access_token":{"nbf":{"essential":true,"value":"%d"},"xms_cc":{"values":["cp1"]}}}' % ch["value"]
    _assert_50173(refresh(srv, rt, scope=scope, claims=merged), valid_from=ch["value"])

    # 7. fresh password grant with the claims -> 200; the retried Graph call succeeds
    t2 = _ok(ropc(srv, u, scope=scope, claims=merged))
    assert t2["expires_in"] == 70000
    assert decode_jwt(t2["access_token"])[1]["iat"] >= ch["value"]
    r = srv.graph_call("POST", "/me/revokeSignInSessions", t2["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["value"] is True


# ----------------------------------------------------------------------------------------------
# MSAL Python, CP1, claims_challenge, interactive sign-in through the pages
# ----------------------------------------------------------------------------------------------

def test_msal_python_cp1_claims_challenge_then_interactive(srv, admin):
    u = admin.new_user("msal")
    app = msal.PublicClientApplication(srv.demo["apps"]["public"]["client_id"], authority=srv.authority,
                                       instance_discovery=False, http_client=srv.session(),
                                       client_capabilities=["CP1"])
    r = app.acquire_token_by_username_password(u["username"], u["password"], scopes=["User.Read"])
    assert "access_token" in r, r
    assert r["expires_in"] == 70000, r
    assert decode_jwt(r["access_token"])[1]["xms_cc"] == ["cp1"]
    _ok(srv.graph_call("GET", "/me", r["access_token"]))

    srv.advance(2)
    _ok(admin.call("POST", f"/users/{u['id']}/revokeSignInSessions"))
    srv.advance(2)
    resp = srv.graph_call("GET", "/me", r["access_token"])
    ch = assert_cae_challenge(resp)
    claims = ch["raw"]  # MSAL Python wants the decoded JSON string

    # Silent first, as an app does: MSAL bypasses the AT cache for a claims challenge and refreshes
    # with the merged claims; the refresh token predates the revocation -> 50173 bad_token.
    account = app.get_accounts(username=u["username"])[0]
    s = app.acquire_token_silent_with_error(["User.Read"], account=account, claims_challenge=claims)
    assert s is not None and s.get("error") == "invalid_grant", s
    assert s.get("error_codes") == [50173] and s.get("suberror") == "bad_token", s

    # Interactive: auth code flow with claims_challenge; the authorize URL carries the merged claims.
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT, claims_challenge=claims,
                                       login_hint=u["username"])
    from urllib.parse import parse_qs, urlsplit
    sent = json.loads(parse_qs(urlsplit(flow["auth_uri"]).query)["claims"][0])
    assert sent["access_token"]["nbf"] == {"essential": True, "value": str(ch["value"])}, sent
    assert sent["access_token"]["xms_cc"] == {"values": ["CP1"]}, sent
    o = srv.browser(stop_prefixes=(REDIRECT,)).run(flow["auth_uri"], username=u["username"], password=u["password"])
    assert o.kind == "redirect" and o.params.get("code"), (o.steps, o.page and o.page.text[-1500:])
    r2 = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in r2, r2
    c2 = decode_jwt(r2["access_token"])[1]
    assert c2["iat"] >= ch["value"] and c2["xms_cc"] == ["cp1"], c2
    me = _ok(srv.graph_call("GET", "/me", r2["access_token"]))
    assert me["id"] == u["id"], me
    # and the new refresh token works
    s2 = app.acquire_token_silent(["User.Read"], account=app.get_accounts(username=u["username"])[0],
                                  force_refresh=True)
    assert s2 and "access_token" in s2, s2


# ----------------------------------------------------------------------------------------------
# azure-identity enable_cae=True + msgraph-sdk (kiota) retrying the 401 claims challenge
# ----------------------------------------------------------------------------------------------

class RecordingCredential:
    """Wraps a real azure-identity credential; records what kiota asks it for."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list = []

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        self.calls.append({"scopes": scopes, "claims": claims, "enable_cae": enable_cae})
        tok = self.inner.get_token(*scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs)
        self.calls[-1]["token"] = tok.token
        return tok


def _graph_client(srv, credential, scopes=(GRAPH_DEFAULT,)):
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as graph_default_options
    from msgraph_core import GraphClientFactory
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    auth = AzureIdentityAuthenticationProvider(credential, scopes=list(scopes), allowed_hosts=["localhost"])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(srv.ca_path)), http2=True),
        options=graph_default_options)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = srv.graph
    return GraphServiceClient(request_adapter=adapter)


def test_azure_identity_enable_cae_and_msgraph_sdk_retry(srv, admin):
    from azure.identity import UsernamePasswordCredential

    u = admin.new_user("sdk")
    inner = UsernamePasswordCredential(
        srv.demo["apps"]["public"]["client_id"], u["username"], u["password"], tenant_id=srv.demo["tenant_id"],
        authority=srv.base, disable_instance_discovery=True,
        connection_verify=str(srv.ca_path))
    # get_token(enable_cae=True) -> MSAL client_capabilities=["CP1"] -> a CAE token
    tok = inner.get_token(GRAPH_DEFAULT, enable_cae=True)
    c = decode_jwt(tok.token)[1]
    assert c["xms_cc"] == ["cp1"], c
    assert 69000 < tok.expires_on - srv.now() <= 70000, (tok.expires_on, srv.now())
    # without enable_cae: a normal token, separate cache
    plain = inner.get_token(GRAPH_DEFAULT)
    assert "xms_cc" not in decode_jwt(plain.token)[1]

    cred = RecordingCredential(inner)
    # A named scope, not .default: for .default Gatehouse's response `scope` lists the granted scopes
    # without ".default", so MSAL's AT cache never matches and every get_token silently refreshes -- the
    # refresh after the revocation fails (50173) and azure-identity signs in again *before* kiota's call,
    # so Graph would never get to send the challenge. With User.Read the cached (revoked) token is used.
    client = _graph_client(srv, cred, scopes=("https://graph.microsoft.com/User.Read",))
    loop = asyncio.new_event_loop()
    try:
        me = loop.run_until_complete(client.me.get())
        assert me.id == u["id"]
        assert cred.calls and cred.calls[0]["enable_cae"] is True and cred.calls[0]["claims"] is None, cred.calls
        first_token = cred.calls[-1]["token"]
        assert decode_jwt(first_token)[1]["xms_cc"] == ["cp1"]

        srv.advance(2)
        _ok(admin.call("POST", f"/users/{u['id']}/revokeSignInSessions"))
        revoked_at = srv.now()
        srv.advance(2)
        # the old token is challenged on the wire ...
        ch = assert_cae_challenge(srv.graph_call("GET", "/me", first_token))
        n = len(cred.calls)
        # ... and the SDK gets past it by itself: kiota sees 401 + claims, asks the credential for a token
        # with those claims once, and retries.
        me2 = loop.run_until_complete(client.me.get())
        assert me2.id == u["id"]
        retry = cred.calls[n:]
        assert any(call["claims"] == ch["raw"] for call in retry), retry
        assert all(call["enable_cae"] for call in retry), retry
        new_token = retry[-1]["token"]
        assert new_token != first_token
        assert decode_jwt(new_token)[1]["iat"] >= revoked_at - 1
        assert decode_jwt(new_token)[1]["xms_cc"] == ["cp1"]
    finally:
        loop.close()


# ----------------------------------------------------------------------------------------------
# Revocation events
# ----------------------------------------------------------------------------------------------

def _tokens(srv, u):
    cae = _ok(ropc(srv, u, claims=CP1))
    plain = _ok(ropc(srv, u))
    assert "xms_cc" not in decode_jwt(plain["access_token"])[1]
    return cae, plain


def _event(srv, admin, u, kind):
    if kind == "revokeSignInSessions":
        _ok(admin.call("POST", f"/users/{u['id']}/revokeSignInSessions"))
    elif kind == "password_change":
        # self-service, with the user's own (non-CAE) token; the permission Gatehouse's catalog accepts
        # for it is User-PasswordProfile.ReadWrite.All (admin consent: granted for this user through Graph)
        admin.grant_delegated(srv.demo["apps"]["public"]["service_principal_id"], u["id"],
                              "User.Read User-PasswordProfile.ReadWrite.All offline_access openid profile")
        t = _ok(ropc(srv, u, scope="User.Read User-PasswordProfile.ReadWrite.All"))["access_token"]
        new = u["password"] + "x9"
        r = srv.graph_call("POST", "/me/changePassword", t, {"currentPassword": u["password"], "newPassword": new})
        assert r.status_code == 204, (r.status_code, r.text)
        u["old_password"], u["password"] = u["password"], new
    elif kind == "password_reset":
        new = u["password"] + "r7"
        admin.call("PATCH", f"/users/{u['id']}",
                   {"passwordProfile": {"password": new, "forceChangePasswordNextSignIn": False}}, expect=204)
        u["old_password"], u["password"] = u["password"], new
    elif kind == "account_disabled":
        admin.call("PATCH", f"/users/{u['id']}", {"accountEnabled": False}, expect=204)
    elif kind == "user_deleted":
        admin.call("DELETE", f"/users/{u['id']}", expect=204)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["revokeSignInSessions", "password_change", "password_reset", "account_disabled"])
def test_revocation_event(srv, admin, kind):
    u = admin.new_user("rev")
    cae, plain = _tokens(srv, u)
    _ok(srv.graph_call("GET", "/me", cae["access_token"]))
    srv.advance(2)
    _event(srv, admin, u, kind)
    at_event = srv.now()
    srv.advance(2)

    ch = assert_cae_challenge(srv.graph_call("GET", "/me", cae["access_token"]))
    assert at_event - 1 <= ch["value"] <= at_event, (ch["value"], at_event)
    r = srv.graph_call("GET", "/me", plain["access_token"])
    assert r.status_code == 200, f"a non-CAE token lives until it expires ({kind}): {r.status_code} {r.text}"
    for rt in (cae["refresh_token"], plain["refresh_token"]):
        resp = refresh(srv, rt)
        if kind == "account_disabled":
            # the refresh is refused either as revoked (50173) or as a disabled account (50057)
            assert resp.status_code == 400 and resp.json()["error_codes"][0] in (50173, 50057), resp.text
        else:
            _assert_50173(resp, valid_from=ch["value"])

    if kind in ("password_change", "password_reset"):
        old = dict(u, password=u["old_password"])
        assert ropc(srv, old).json().get("error_codes") == [50126], "the old password no longer works"
    if kind == "account_disabled":
        r = ropc(srv, u)
        assert r.status_code == 400 and r.json()["error_codes"] == [50057], r.text
    else:
        fresh = _ok(ropc(srv, u, claims=CP1))
        _ok(srv.graph_call("GET", "/me", fresh["access_token"]))


def test_user_deleted(srv, admin):
    """Deleting the user: what the server does with the tokens issued before (reported, see the report)."""
    u = admin.new_user("del")
    cae, plain = _tokens(srv, u)
    srv.advance(2)
    _event(srv, admin, u, "user_deleted")
    srv.advance(2)
    results = {}
    for name, t in (("cae", cae["access_token"]), ("plain", plain["access_token"])):
        r = srv.graph_call("GET", "/me", t)
        results[name] = (r.status_code, r.json().get("error", {}).get("code") if r.content else None,
                         r.headers.get("WWW-Authenticate"))
    rr = refresh(srv, cae["refresh_token"])
    results["refresh"] = (rr.status_code, rr.json().get("error"), rr.json().get("error_codes"))
    print("user deleted ->", json.dumps(results))
    # Observed (server at 923a11c): the CAE token -> 401 + the TokenIssuedBeforeRevocationTimestamp challenge
    # (deleting the user revokes its CAE tokens); the non-CAE token -> 404 Request_ResourceNotFound on /me;
    # the refresh token -> 400 invalid_request 9002313 (Entra would say invalid_grant: see the report).
    assert results["cae"][0] == 401 and results["cae"][1] == "InvalidAuthenticationToken", results
    assert_cae_challenge(srv.graph_call("GET", "/me", cae["access_token"]))
    assert results["plain"][0] in (401, 404), results
    assert rr.status_code == 400, rr.text
    r = ropc(srv, u)
    assert r.status_code == 400 and r.json()["error_codes"][0] in (50034, 50126), r.text


# ----------------------------------------------------------------------------------------------
# Both clocks at their boundaries
# ----------------------------------------------------------------------------------------------

def _graph_status_at(srv, token, at):
    """Move the server clock to unix time `at` (it keeps ticking) and call GET /me."""
    srv.advance(at - srv.now())
    return srv.graph_call("GET", "/me", token)


@pytest.mark.parametrize("cae", [False, True], ids=["plain", "cae"])
def test_token_expiry_boundary_with_five_minute_skew(srv, admin, cae):
    u = admin.new_user("exp")
    t = _ok(ropc(srv, u, claims=CP1 if cae else None))
    c = decode_jwt(t["access_token"])[1]
    assert c["exp"] - c["iat"] == t["expires_in"], (c, t["expires_in"])
    if cae:
        assert t["expires_in"] == 70000
    else:
        assert 3600 <= t["expires_in"] <= 5400 or t["expires_in"] < 70000, t["expires_in"]
    exp = c["exp"]
    # just after exp but inside the 5-minute skew: still accepted
    r = _graph_status_at(srv, t["access_token"], exp + 5)
    assert r.status_code == 200, (r.status_code, r.text)
    r = _graph_status_at(srv, t["access_token"], exp + 300 - 5)
    assert r.status_code == 200, ("inside exp + 5 min skew", r.status_code, r.text)
    # just after exp + skew: 401 Lifetime validation failed
    r = _graph_status_at(srv, t["access_token"], exp + 300 + 2)
    assert r.status_code == 401, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken", err
    assert err["message"] == "Lifetime validation failed, the token is expired.", err
    assert "insufficient_claims" not in r.headers.get("WWW-Authenticate", ""), r.headers
    # the refresh token still works (90 days), and gives a token Graph accepts
    t2 = _ok(refresh(srv, t["refresh_token"], claims=CP1 if cae else None))
    _ok(srv.graph_call("GET", "/me", t2["access_token"]))


def test_revocation_time_boundary(srv, admin):
    u = admin.new_user("rtb")
    before = _ok(ropc(srv, u, claims=CP1))
    issued = decode_jwt(before["access_token"])[1]["iat"]
    # used before the revocation: fine
    _ok(srv.graph_call("GET", "/me", before["access_token"]))
    srv.advance(10)
    _ok(admin.call("POST", f"/users/{u['id']}/revokeSignInSessions"))
    revoked = srv.now()
    assert revoked >= issued + 10
    # right after the revocation: the token issued before is challenged, with nbf = the revocation time
    ch = assert_cae_challenge(srv.graph_call("GET", "/me", before["access_token"]))
    assert revoked - 1 <= ch["value"] <= revoked, (ch["value"], revoked)
    assert ch["value"] > issued
    # a token issued after the revocation time is accepted; so is its refresh token
    srv.advance(1)
    after = _ok(ropc(srv, u, claims=CP1))
    assert decode_jwt(after["access_token"])[1]["iat"] > ch["value"]
    _ok(srv.graph_call("GET", "/me", after["access_token"]))
    _ok(refresh(srv, after["refresh_token"], claims=CP1))
    # the refresh token issued before stays dead, even much later
    srv.advance(3600)
    _assert_50173(refresh(srv, before["refresh_token"], claims=CP1), valid_from=ch["value"])
    # and the old CAE access token is still challenged (not "expired": it lives 70000 s)
    assert_cae_challenge(srv.graph_call("GET", "/me", before["access_token"]), revoked_at=ch["value"])
