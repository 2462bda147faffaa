"""MSAL Python ConfidentialClientApplication: client credentials with a secret and with a certificate."""
from pathlib import Path

import msal

from gatehouse_harness import assert_v1_graph_token, decode_jwt

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


def _app(authority, app, credential):
    return msal.ConfidentialClientApplication(
        app.client_id, client_credential=credential, authority=authority, instance_discovery=False)


def test_client_credentials_secret_then_cache(authority, tenant, tid):
    daemon = tenant.apps.daemon
    app = _app(authority, daemon, daemon.client_secret)
    r1 = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in r1, r1
    assert r1["token_type"].lower() == "bearer", r1
    assert isinstance(r1["expires_in"], int) and r1["expires_in"] > 300, r1
    assert r1.get("token_source") == "identity_provider", r1
    assert "refresh_token" not in r1, r1
    claims = assert_v1_graph_token(r1["access_token"], tid, appid=daemon.client_id,
                                   aud="https://graph.microsoft.com", idtyp="app")
    assert "User.Read.All" in claims["roles"], claims
    assert claims.get("appidacr") == "1", claims
    sp = getattr(daemon, "service_principal_id", None)
    if sp:
        assert claims["oid"] == sp, f"app-only oid must be the service principal's object id {sp}: {claims}"

    r2 = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert r2.get("token_source") == "cache", r2
    assert r2["access_token"] == r1["access_token"]


def test_client_credentials_certificate(authority, tenant, tid):
    daemon = tenant.apps.daemon
    key = Path(daemon.private_key_path).read_text()
    cred = {"private_key": key, "thumbprint": daemon.certificate_thumbprint}
    app = _app(authority, daemon, cred)
    r = app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in r, r
    claims = assert_v1_graph_token(r["access_token"], tid, appid=daemon.client_id,
                                   aud="https://graph.microsoft.com", idtyp="app")
    assert "User.Read.All" in claims["roles"], claims
    assert claims.get("appidacr") == "2", claims


def test_client_credentials_certificate_pem_with_public_cert(authority, tenant, tid):
    """client_credential with public_certificate: MSAL sends x5c in the assertion header (SNI-style)."""
    daemon = tenant.apps.daemon
    pem = Path(daemon.certificate_path).read_text()
    key = Path(daemon.private_key_path).read_text()
    cert_block = pem[pem.index("-----BEGIN CERTIFICATE-----"):]
    cred = {"private_key": key, "thumbprint": daemon.certificate_thumbprint, "public_certificate": cert_block}
    r = _app(authority, daemon, cred).acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in r, r


def test_automation_app_roles(authority, tenant, tid):
    auto = tenant.apps.automation
    r = _app(authority, auto, auto.client_secret).acquire_token_for_client(scopes=GRAPH_DEFAULT)
    assert "access_token" in r, r
    claims = assert_v1_graph_token(r["access_token"], tid, appid=auto.client_id,
                                   aud="https://graph.microsoft.com", idtyp="app")
    assert {"Application.ReadWrite.All", "User.ReadWrite.All"} <= set(claims["roles"]), claims


def test_graph_guid_audience(authority, tenant, tid):
    """Requested via the Graph app id, aud is the app id (Entra behaviour)."""
    daemon = tenant.apps.daemon
    r = _app(authority, daemon, daemon.client_secret).acquire_token_for_client(
        scopes=["00000003-0000-0000-c000-000000000000/.default"])
    assert "access_token" in r, r
    _, claims = decode_jwt(r["access_token"])
    assert claims["aud"] == "00000003-0000-0000-c000-000000000000", claims
