"""Expiry errors, on a dedicated `gatehouse serve --test-clock` server whose clock the test moves
(POST /_gatehouse/clock {"advance_seconds": N}), so the shared server's clock is untouched."""
import msal
import pytest

from gatehouse_harness import Browser, GatehouseServer, assert_aad_error_body, assert_diagnosis_header


@pytest.fixture(scope="module")
def clock_server(server):
    srv = GatehouseServer(name="gatehouse-clock", extra_args=("--test-clock",))
    try:
        srv.start()
    except RuntimeError as e:
        pytest.skip(f"gatehouse serve --test-clock did not start: {e}")
    r = srv.session().post(f"{srv.base}/_gatehouse/clock", json={"advance_seconds": 0}, timeout=30)
    if r.status_code != 200:
        srv.stop()
        pytest.skip(f"POST /_gatehouse/clock -> {r.status_code}: the server cannot move its clock")
    yield srv
    srv.stop()


def _advance(srv, seconds):
    r = srv.session().post(f"{srv.base}/_gatehouse/clock", json={"advance_seconds": seconds}, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)


def test_expired_auth_code_70008(clock_server):
    demo = clock_server.demo
    web = demo["apps"]["web"]
    user = demo["users"]["user"]
    session = clock_server.session()
    app = msal.ConfidentialClientApplication(web["client_id"], client_credential=web["client_secret"],
                                             authority=demo["authority"], instance_discovery=False,
                                             http_client=session)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=web["redirect_uri"])
    b = Browser(clock_server.base, stop_prefixes=(web["redirect_uri"],))
    b.s.trust_env = False
    b.s.verify = str(clock_server.ca_path)
    o = b.sign_in(flow["auth_uri"], username=user["username"], password=user["password"])
    assert o.kind == "redirect" and o.params.get("code"), (o.kind, o.steps)
    _advance(clock_server, 601)  # auth codes live 10 minutes
    r = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert r.get("error") == "invalid_grant", r
    assert r.get("error_codes") == [70008], r
    # the same on the wire
    raw = session.post(f"{demo['authority']}/oauth2/v2.0/token", data={
        "client_id": web["client_id"], "client_secret": web["client_secret"], "grant_type": "authorization_code",
        "code": o.params["code"], "redirect_uri": web["redirect_uri"], "code_verifier": flow["code_verifier"],
        "scope": "User.Read openid profile offline_access"}, timeout=30)
    assert raw.status_code == 400, raw.text
    body = raw.json()
    assert body["error"] == "invalid_grant" and body["error_codes"][0] in (70008, 54005), body
    assert_diagnosis_header(raw)


def test_inactive_refresh_token(clock_server):
    """A refresh token unused for 90 days: Entra answers invalid_grant 700082 (suberror bad_token);
    70008 is the older/generic wording for an expired code or refresh token."""
    demo = clock_server.demo
    public = demo["apps"]["public"]
    user = demo["users"]["user_admin"]
    app = msal.PublicClientApplication(public["client_id"], authority=demo["authority"], instance_discovery=False,
                                       http_client=clock_server.session())
    r = app.acquire_token_by_username_password(user["username"], user["password"], scopes=["User.Read"])
    assert "refresh_token" in r, r
    _advance(clock_server, 91 * 24 * 3600)
    r2 = app.acquire_token_by_refresh_token(r["refresh_token"], scopes=["User.Read"])
    assert r2.get("error") == "invalid_grant", r2
    assert r2.get("error_codes") in ([700082], [70008]), r2
    if r2["error_codes"] == [700082]:
        assert r2.get("suberror") == "bad_token", r2
    assert_aad_error_body({k: v for k, v in r2.items() if k != "classification"}, code=r2["error_codes"][0],
                          error="invalid_grant")
