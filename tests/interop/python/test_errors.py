"""Token-endpoint errors: what MSAL Python surfaces (its result dict), and the raw wire format."""
import uuid

import msal
import pytest
import requests

from gatehouse_harness import assert_aad_error_body, assert_diagnosis_header

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


def _cca(authority, client_id, secret):
    return msal.ConfidentialClientApplication(client_id, client_credential=secret, authority=authority,
                                             instance_discovery=False)


def _pca(authority, tenant):
    return msal.PublicClientApplication(tenant.apps.public.client_id, authority=authority, instance_discovery=False)


def _post(token_endpoint, data, corr=None):
    corr = corr or str(uuid.uuid4())
    r = requests.post(token_endpoint, data=data, headers={"client-request-id": corr}, timeout=30)
    return r, corr


def _check(resp, corr, *, status, code, error, suberror=None):
    assert resp.status_code == status, (resp.status_code, resp.text[:800])
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert_aad_error_body(body, code=code, error=error, suberror=suberror, correlation_id=corr)
    assert_diagnosis_header(resp)
    return body


# ---- client authentication ------------------------------------------------------------------------

def test_unknown_client_700016(authority, token_endpoint):
    cid = str(uuid.uuid4())
    r = _cca(authority, cid, "whatever").acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert r.get("error") == "unauthorized_client", r
    assert r.get("error_codes") == [700016], r
    assert cid in r["error_description"], r
    resp, corr = _post(token_endpoint, {"client_id": cid, "client_secret": "x", "grant_type": "client_credentials",
                                        "scope": GRAPH_DEFAULT[0]})
    _check(resp, corr, status=400, code=700016, error="unauthorized_client")


def test_wrong_secret_7000215(authority, tenant, token_endpoint):
    d = tenant.apps.daemon
    r = _cca(authority, d.client_id, "not-the-secret").acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert r.get("error") == "invalid_client", r
    assert r.get("error_codes") == [7000215], r
    assert r["error_description"].startswith("AADSTS7000215: Invalid client secret provided."), r
    resp, corr = _post(token_endpoint, {"client_id": d.client_id, "client_secret": "not-the-secret",
                                        "grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]})
    _check(resp, corr, status=401, code=7000215, error="invalid_client")


def test_wrong_secret_basic_auth_7000215(tenant, token_endpoint):
    d = tenant.apps.daemon
    corr = str(uuid.uuid4())
    resp = requests.post(token_endpoint, data={"grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]},
                         auth=(d.client_id, "wrong"), headers={"client-request-id": corr}, timeout=30)
    _check(resp, corr, status=401, code=7000215, error="invalid_client")


def test_missing_secret_7000218(tenant, token_endpoint):
    d = tenant.apps.daemon
    resp, corr = _post(token_endpoint, {"client_id": d.client_id, "grant_type": "client_credentials",
                                        "scope": GRAPH_DEFAULT[0]})
    _check(resp, corr, status=401, code=7000218, error="invalid_client")


# ---- scopes --------------------------------------------------------------------------------------

def test_named_scope_in_client_credentials_1002012(authority, tenant, token_endpoint):
    d = tenant.apps.daemon
    r = _cca(authority, d.client_id, d.client_secret).acquire_token_for_client(scopes=["User.Read.All"])
    assert r.get("error") == "invalid_scope", r
    assert r.get("error_codes") == [1002012], r
    assert "/.default" in r["error_description"], r
    resp, corr = _post(token_endpoint, {"client_id": d.client_id, "client_secret": d.client_secret,
                                        "grant_type": "client_credentials", "scope": "User.Read.All"})
    _check(resp, corr, status=400, code=1002012, error="invalid_scope")


def test_invalid_scope_70011(authority, tenant, token_endpoint):
    """Static (.default) and dynamic scopes cannot be combined (entra-docs scopes-oidc.md)."""
    user = tenant.users.user
    r = _pca(authority, tenant).acquire_token_by_username_password(
        user.username, user.password, scopes=["https://graph.microsoft.com/.default", "Mail.Read"])
    assert r.get("error") == "invalid_scope", r
    assert r.get("error_codes") == [70011], r
    resp, corr = _post(token_endpoint, {"client_id": tenant.apps.public.client_id, "grant_type": "password",
                                        "username": user.username, "password": user.password,
                                        "scope": "https://graph.microsoft.com/.default Mail.Read openid"})
    _check(resp, corr, status=400, code=70011, error="invalid_scope")


def test_not_consented_scope_ropc_65001(authority, tenant, token_endpoint):
    user = tenant.users.user
    r = _pca(authority, tenant).acquire_token_by_username_password(user.username, user.password,
                                                                   scopes=["Mail.Read"])
    assert r.get("error") == "invalid_grant", r
    assert r.get("error_codes") == [65001], r
    assert r.get("suberror") == "consent_required", r
    assert tenant.apps.public.client_id in r["error_description"], r
    resp, corr = _post(token_endpoint, {"client_id": tenant.apps.public.client_id, "grant_type": "password",
                                        "username": user.username, "password": user.password,
                                        "scope": "Mail.Read openid profile offline_access"})
    _check(resp, corr, status=400, code=65001, error="invalid_grant", suberror="consent_required")


# ---- user credentials (ROPC) ---------------------------------------------------------------------

def test_wrong_password_ropc_50126(authority, tenant, token_endpoint):
    user = tenant.users.user_admin
    r = _pca(authority, tenant).acquire_token_by_username_password(user.username, "wrong-password!",
                                                                   scopes=["User.Read"])
    assert r.get("error") == "invalid_grant", r
    assert r.get("error_codes") == [50126], r
    resp, corr = _post(token_endpoint, {"client_id": tenant.apps.public.client_id, "grant_type": "password",
                                        "username": user.username, "password": "wrong-password!",
                                        "scope": "User.Read openid profile offline_access"})
    _check(resp, corr, status=400, code=50126, error="invalid_grant")
    # a good password afterwards still works (and resets the failure count)
    ok = _pca(authority, tenant).acquire_token_by_username_password(user.username, user.password,
                                                                    scopes=["User.Read"])
    assert "access_token" in ok, ok


def test_unknown_user_ropc_50034(authority, tenant, demo, token_endpoint):
    name = f"nobody-{uuid.uuid4().hex[:8]}@{demo['domain']}"
    r = _pca(authority, tenant).acquire_token_by_username_password(name, "whatever", scopes=["User.Read"])
    assert r.get("error") == "invalid_grant", r
    assert r.get("error_codes") == [50034], r
    resp, corr = _post(token_endpoint, {"client_id": tenant.apps.public.client_id, "grant_type": "password",
                                        "username": name, "password": "whatever",
                                        "scope": "User.Read openid profile offline_access"})
    _check(resp, corr, status=400, code=50034, error="invalid_grant")


# ---- grants --------------------------------------------------------------------------------------

def test_malformed_refresh_token_9002313(authority, tenant, token_endpoint):
    r = _pca(authority, tenant).acquire_token_by_refresh_token("not-a-refresh-token", scopes=["User.Read"])
    assert r.get("error") == "invalid_grant", r
    assert r.get("error_codes") == [9002313], r
    resp, corr = _post(token_endpoint, {"client_id": tenant.apps.public.client_id, "grant_type": "refresh_token",
                                        "refresh_token": "not-a-refresh-token", "scope": "User.Read openid"})
    _check(resp, corr, status=400, code=9002313, error="invalid_grant")


@pytest.mark.parametrize("missing", ["grant_type", "scope"])
def test_missing_parameter_900144(tenant, token_endpoint, missing):
    d = tenant.apps.daemon
    data = {"client_id": d.client_id, "client_secret": d.client_secret, "grant_type": "client_credentials",
            "scope": GRAPH_DEFAULT[0]}
    del data[missing]
    resp, corr = _post(token_endpoint, data)
    body = _check(resp, corr, status=400, code=900144, error="invalid_request")
    assert f"'{missing}'" in body["error_description"], body


def test_unsupported_grant_type_70003(tenant, token_endpoint):
    d = tenant.apps.daemon
    resp, corr = _post(token_endpoint, {"client_id": d.client_id, "client_secret": d.client_secret,
                                        "grant_type": "urn:example:nope", "scope": GRAPH_DEFAULT[0]})
    _check(resp, corr, status=400, code=70003, error="unsupported_grant_type")


# ---- wire details ---------------------------------------------------------------------------------

def test_correlation_id_echo_and_diagnosis_header(tenant, token_endpoint):
    corr = str(uuid.uuid4())
    resp, _ = _post(token_endpoint, {"client_id": tenant.apps.daemon.client_id, "client_secret": "bad",
                                     "grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]}, corr=corr)
    body = resp.json()
    assert body["correlation_id"] == corr, body
    assert f"Correlation ID: {corr}" in body["error_description"], body
    diag = assert_diagnosis_header(resp)
    assert "explain=" in diag
    assert "no-store" in resp.headers.get("Cache-Control", ""), resp.headers


def test_msal_sends_client_request_id_and_gets_it_back(authority, tenant):
    """MSAL generates a client-request-id; Gatehouse must echo it as correlation_id (we capture it with a hook)."""
    seen = {}
    session = requests.Session()

    def hook(resp, *a, **k):
        if resp.request.method == "POST":
            seen["sent"] = resp.request.headers.get("client-request-id")
            seen["body"] = resp.json()

    session.hooks["response"].append(hook)
    app = msal.ConfidentialClientApplication(tenant.apps.daemon.client_id, client_credential="bad-secret",
                                             authority=authority, instance_discovery=False, http_client=session)
    r = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert r.get("error") == "invalid_client", r
    assert seen.get("sent"), seen
    assert r["correlation_id"] == seen["sent"], (r, seen)
