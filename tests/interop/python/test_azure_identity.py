"""azure-identity (Python): ClientSecretCredential and CertificateCredential against Gatehouse."""
import time

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential

from gatehouse_harness import assert_v1_graph_token

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


def test_client_secret_credential(demo, server, tid):
    d = demo["apps"]["daemon"]
    cred = ClientSecretCredential(tid, d["client_id"], d["client_secret"], authority=demo["authority_host"],
                                  disable_instance_discovery=True, connection_verify=str(server.bundle_path))
    tok = cred.get_token(GRAPH_DEFAULT)
    assert tok.token and tok.expires_on > time.time() + 300, tok
    claims = assert_v1_graph_token(tok.token, tid, appid=d["client_id"], aud="https://graph.microsoft.com",
                                   idtyp="app")
    assert "User.Read.All" in claims["roles"]
    info = cred.get_token_info(GRAPH_DEFAULT)
    assert info.token == tok.token  # served from MSAL's cache


def test_client_secret_credential_domain_tenant(demo, server, tid):
    d = demo["apps"]["daemon"]
    cred = ClientSecretCredential(demo["domain"], d["client_id"], d["client_secret"],
                                  authority=demo["authority_host"], disable_instance_discovery=True,
                                  connection_verify=str(server.bundle_path))
    tok = cred.get_token(GRAPH_DEFAULT)
    assert_v1_graph_token(tok.token, tid, appid=d["client_id"], aud="https://graph.microsoft.com", idtyp="app")


def test_certificate_credential(demo, server, tid):
    d = demo["apps"]["daemon"]
    cred = CertificateCredential(tid, d["client_id"], certificate_path=d["certificate_path"],
                                 authority=demo["authority_host"], disable_instance_discovery=True,
                                 connection_verify=str(server.bundle_path))
    tok = cred.get_token(GRAPH_DEFAULT)
    claims = assert_v1_graph_token(tok.token, tid, appid=d["client_id"], aud="https://graph.microsoft.com",
                                   idtyp="app")
    assert claims.get("appidacr") == "2", claims


def test_wrong_secret_message(demo, server, tid):
    d = demo["apps"]["daemon"]
    cred = ClientSecretCredential(tid, d["client_id"], "wrong-secret", authority=demo["authority_host"],
                                  disable_instance_discovery=True, connection_verify=str(server.bundle_path))
    with pytest.raises(ClientAuthenticationError) as ei:
        cred.get_token(GRAPH_DEFAULT)
    assert "AADSTS7000215" in str(ei.value), str(ei.value)


def test_unknown_client_message(demo, server, tid):
    cred = ClientSecretCredential(tid, "11111111-2222-3333-4444-555555555555", "x",
                                  authority=demo["authority_host"], disable_instance_discovery=True,
                                  connection_verify=str(server.bundle_path))
    with pytest.raises(ClientAuthenticationError) as ei:
        cred.get_token(GRAPH_DEFAULT)
    assert "AADSTS700016" in str(ei.value), str(ei.value)


def test_named_scope_message(demo, server, tid):
    d = demo["apps"]["daemon"]
    cred = ClientSecretCredential(tid, d["client_id"], d["client_secret"], authority=demo["authority_host"],
                                  disable_instance_discovery=True, connection_verify=str(server.bundle_path))
    with pytest.raises(ClientAuthenticationError) as ei:
        cred.get_token("https://graph.microsoft.com/User.Read.All")
    assert "AADSTS1002012" in str(ei.value), str(ei.value)
