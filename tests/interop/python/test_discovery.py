"""OIDC discovery documents, JWKS and instance discovery, as Entra serves them."""
import msal
import pytest
import requests


def _get(url):
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, (url, r.status_code, r.text[:500])
    return r.json()


@pytest.mark.parametrize("form", ["guid", "domain"])
def test_tenant_specific_issuer(form, base, tid, demo):
    tenant = tid if form == "guid" else demo["domain"]
    doc = _get(f"{base}/{tenant}/v2.0/.well-known/openid-configuration")
    assert doc["issuer"] == f"{base}/{tid}/v2.0"
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "device_authorization_endpoint",
                "end_session_endpoint"):
        assert doc.get(key, "").startswith(f"{base}/"), (key, doc.get(key))
    # MSAL Python takes the tenant from the first path segment of token_endpoint
    assert doc["token_endpoint"] == f"{base}/{tenant}/oauth2/v2.0/token" or \
        doc["token_endpoint"] == f"{base}/{tid}/oauth2/v2.0/token", doc["token_endpoint"]
    assert doc["authorization_endpoint"].endswith("/oauth2/v2.0/authorize")
    assert "RS256" in doc.get("id_token_signing_alg_values_supported", [])
    assert {"client_secret_post", "private_key_jwt", "client_secret_basic"} <= set(
        doc.get("token_endpoint_auth_methods_supported", []))


@pytest.mark.parametrize("tenant", ["common", "organizations"])
def test_multi_tenant_issuer_placeholder(tenant, base):
    doc = _get(f"{base}/{tenant}/v2.0/.well-known/openid-configuration")
    assert doc["issuer"] == f"{base}/{{tenantid}}/v2.0"
    assert doc["token_endpoint"] == f"{base}/{tenant}/oauth2/v2.0/token"


def test_jwks(base, tid):
    doc = _get(f"{base}/{tid}/v2.0/.well-known/openid-configuration")
    jwks = _get(doc["jwks_uri"])
    keys = jwks.get("keys")
    assert keys, jwks
    for k in keys:
        assert k["kty"] == "RSA" and k.get("use") == "sig" and k.get("kid") and k.get("n") and k.get("e"), k


def test_unknown_tenant_is_an_error(base):
    r = requests.get(f"{base}/00000000-1111-2222-3333-444444444444/v2.0/.well-known/openid-configuration",
                     timeout=30)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    body = r.json()
    assert body.get("error") == "invalid_tenant", body
    assert body.get("error_codes") == [90002], body


def test_instance_discovery(base, tid, authority, demo):
    r = requests.get(f"{base}/common/discovery/instance",
                     params={"api-version": "1.1",
                             "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tenant_discovery_endpoint"] == f"{authority}/v2.0/.well-known/openid-configuration", body
    host = base.split("://", 1)[1]
    assert any(host in m.get("aliases", []) for m in body.get("metadata", [])), body


def test_msal_with_instance_discovery_pointed_at_gatehouse(base, authority, tenant):
    """MSAL Python recipe D: keep instance discovery, but point it at Gatehouse."""
    app = msal.ConfidentialClientApplication(
        tenant.apps.daemon.client_id, client_credential=tenant.apps.daemon.client_secret, authority=authority,
        instance_discovery=f"{base}/common/discovery/instance")
    r = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in r, r


def test_msal_oidc_authority(authority, tenant):
    """MSAL Python recipe C: oidc_authority checks the issuer."""
    app = msal.ConfidentialClientApplication(
        tenant.apps.daemon.client_id, client_credential=tenant.apps.daemon.client_secret,
        oidc_authority=f"{authority}/v2.0")
    r = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in r, r
