"""Smart lockout (AADSTS50053), on a dedicated server so the shared tenant's users are not locked."""
import msal
import pytest
import requests

from gatehouse_harness import Browser, GatehouseServer, assert_aad_error_body


@pytest.fixture(scope="module")
def lock_server(server):  # `server` first: the environment then trusts the main CA; this one gets its own session
    srv = GatehouseServer(name="gatehouse-lockout")
    srv.start()
    yield srv
    srv.stop()


def test_ten_wrong_passwords_lock_the_account_50053(lock_server):
    demo = lock_server.demo
    authority = demo["authority"]
    public = demo["apps"]["public"]
    user = demo["users"]["user"]
    session = lock_server.session()
    app = msal.PublicClientApplication(public["client_id"], authority=authority, instance_discovery=False,
                                       http_client=session)
    codes = []
    for i in range(10):
        r = app.acquire_token_by_username_password(user["username"], f"wrong-{i}", scopes=["User.Read"])
        assert r.get("error") == "invalid_grant", r
        codes.append(r["error_codes"][0])
        if codes[-1] == 50053:
            break
    assert codes[0] == 50126, codes
    # after 10 failures in a row, even the right password is refused with 50053
    r = app.acquire_token_by_username_password(user["username"], user["password"], scopes=["User.Read"])
    assert r.get("error") == "invalid_grant", (codes, r)
    assert r.get("error_codes") == [50053], (codes, r)
    assert "locked" in r["error_description"].lower(), r

    raw = session.post(f"{authority}/oauth2/v2.0/token", data={
        "client_id": public["client_id"], "grant_type": "password", "username": user["username"],
        "password": user["password"], "scope": "User.Read openid profile offline_access"}, timeout=30)
    assert raw.status_code == 400, raw.text
    assert_aad_error_body(raw.json(), code=50053, error="invalid_grant")
    assert raw.headers.get("x-gatehouse-diagnosis"), dict(raw.headers)

    # the sign-in page says so too
    web = demo["apps"]["web"]
    pca = msal.ConfidentialClientApplication(web["client_id"], client_credential=web["client_secret"],
                                             authority=authority, instance_discovery=False, http_client=session)
    flow = pca.initiate_auth_code_flow(["User.Read"], redirect_uri=web["redirect_uri"])
    b = Browser(lock_server.base, stop_prefixes=(web["redirect_uri"],))
    b.s.trust_env = False
    b.s.verify = str(lock_server.ca_path)
    o = b.sign_in(flow["auth_uri"], username=user["username"], password=user["password"])
    assert o.kind == "page", (o.kind, o.steps)
    assert "AADSTS50053" in o.page.text, o.page.text[:2000]

    # other users are not affected
    other = demo["users"]["user_admin"]
    ok = app.acquire_token_by_username_password(other["username"], other["password"], scopes=["User.Read"])
    assert "access_token" in ok, ok
