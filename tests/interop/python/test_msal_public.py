"""MSAL Python PublicClientApplication: ROPC, silent refresh through the refresh token, device code."""
import threading
import time

import msal

from gatehouse_harness import (Browser, GRAPH_APP_ID, assert_id_token, assert_v1_graph_token, client_info,
                               parse_page)


def _public(authority, tenant):
    return msal.PublicClientApplication(tenant.apps.public.client_id, authority=authority, instance_discovery=False)


def test_ropc_then_silent_refresh(authority, tenant, tid, base):
    app = _public(authority, tenant)
    user = tenant.users.user
    r = app.acquire_token_by_username_password(user.username, user.password, scopes=["User.Read"])
    assert "access_token" in r, r
    assert r["token_type"].lower() == "bearer"
    assert "refresh_token" in r and "id_token" in r and "client_info" in r, sorted(r)
    assert r.get("token_source") == "identity_provider"
    scope = r.get("scope", "")
    assert "https://graph.microsoft.com/User.Read" in scope.split() or "User.Read" in scope.split(), scope

    claims = assert_v1_graph_token(r["access_token"], tid, appid=tenant.apps.public.client_id,
                                   aud=GRAPH_APP_ID, idtyp="user")
    assert "User.Read" in claims["scp"].split(" "), claims
    assert claims["oid"] == user.object_id, claims
    assert claims.get("appidacr") == "0", claims
    assert claims.get("upn", claims.get("unique_name", "")).lower() == user.username.lower(), claims

    idc = assert_id_token(r["id_token"], client_id=tenant.apps.public.client_id, tid=tid, base=base,
                          user=vars(user))
    assert r["id_token_claims"]["oid"] == idc["oid"]
    ci = client_info(r)
    assert ci == {"uid": user.object_id, "utid": tid} or (ci["uid"], ci["utid"]) == (user.object_id, tid), ci

    accounts = app.get_accounts()
    assert accounts, "get_accounts() is empty after ROPC"
    acct = accounts[0]
    assert acct["home_account_id"] == f"{user.object_id}.{tid}", acct
    assert acct["username"].lower() == user.username.lower(), acct
    assert acct.get("local_account_id") == user.object_id, acct

    refreshed = app.acquire_token_silent(["User.Read"], account=acct, force_refresh=True)
    assert refreshed and "access_token" in refreshed, refreshed
    assert refreshed.get("token_source") == "identity_provider", refreshed
    assert refreshed["access_token"] != r["access_token"]
    c2 = assert_v1_graph_token(refreshed["access_token"], tid, appid=tenant.apps.public.client_id,
                               aud=GRAPH_APP_ID, idtyp="user")
    assert c2["oid"] == user.object_id and "User.Read" in c2["scp"].split(" ")

    cached = app.acquire_token_silent(["User.Read"], account=acct)
    assert cached and cached.get("token_source") == "cache", (
        f"acquire_token_silent(['User.Read']) after ROPC/refresh should be a cache hit; MSAL cached the token under the "
        f"response's scope {r.get('scope')!r}, and its lookup needs the requested strings ('User.Read') in it")


def test_ropc_graph_prefixed_scope_audience(authority, tenant, tid):
    app = _public(authority, tenant)
    user = tenant.users.user
    r = app.acquire_token_by_username_password(user.username, user.password,
                                               scopes=["https://graph.microsoft.com/User.Read"])
    assert "access_token" in r, r
    claims = assert_v1_graph_token(r["access_token"], tid, appid=tenant.apps.public.client_id,
                                   aud="https://graph.microsoft.com", idtyp="user")
    assert "User.Read" in claims["scp"].split(" ")


def test_device_code_flow(authority, tenant, tid, base):
    app = _public(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_device_flow(scopes=["User.Read"])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{base}/devicelogin", flow
    assert flow.get("message") and flow["user_code"] in flow["message"], flow
    assert int(flow.get("interval", 5)) >= 1 and int(flow["expires_in"]) > 60, flow
    flow["expires_at"] = time.time() + 90  # do not poll for 15 minutes if something is broken

    outcome = {}

    def complete():
        try:
            b = Browser(base)
            time.sleep(1)
            outcome["result"] = b.sign_in(flow["verification_uri"], username=user.username, password=user.password,
                                          otc=flow["user_code"])
        except BaseException as e:  # reported below
            outcome["error"] = e

    t = threading.Thread(target=complete, daemon=True)
    t.start()
    r = app.acquire_token_by_device_flow(flow)
    t.join(timeout=60)
    assert "error" not in outcome, f"device pages failed: {outcome['error']!r}"
    o = outcome["result"]
    assert o.steps[0] == "device_code" and "password" in o.steps and "device_confirm" in o.steps, o.steps
    assert o.kind == "page", o
    assert "access_token" in r, r
    claims = assert_v1_graph_token(r["access_token"], tid, appid=tenant.apps.public.client_id,
                                   aud=GRAPH_APP_ID, idtyp="user")
    assert claims["oid"] == user.object_id and "User.Read" in claims["scp"].split(" ")
    assert_id_token(r["id_token"], client_id=tenant.apps.public.client_id, tid=tid, base=base, user=vars(user))
    accounts = app.get_accounts()
    assert accounts and accounts[0]["home_account_id"] == f"{user.object_id}.{tid}", accounts


def test_device_code_pending_then_bad_code(authority, tenant, base):
    """Before the user acts, polling gets authorization_pending; a wrong user code is refused on the page."""
    app = _public(authority, tenant)
    flow = app.initiate_device_flow(scopes=["User.Read"])
    assert "device_code" in flow, flow
    r = app.acquire_token_by_device_flow(flow, exit_condition=lambda f: True)
    assert r.get("error") == "authorization_pending", r
    assert 70016 in r.get("error_codes", []), r

    b = Browser(base)
    url, resp, _ = b.open(flow["verification_uri"])
    page = parse_page(url, resp)
    url, resp, _ = b.submit(page, {"otc": "NOTACODE"}, "idSIButton9")
    page2 = parse_page(url, resp)
    assert "otc" in page2.ids, "a wrong code should show the code page again with an error"

