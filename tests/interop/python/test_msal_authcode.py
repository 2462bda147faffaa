"""MSAL Python authorization code flow against the Gatehouse sign-in pages (driven with requests, no JavaScript)."""
import hashlib
import uuid
from urllib.parse import urlencode

import msal
import requests

from gatehouse_harness import (GRAPH_APP_ID, Browser, assert_aad_error_body, assert_diagnosis_header,
                               assert_id_token, assert_v1_graph_token, parse_page)


def _web(authority, tenant):
    w = tenant.apps.web
    return msal.ConfidentialClientApplication(w.client_id, client_credential=w.client_secret, authority=authority,
                                             instance_discovery=False)


def _sign_in(base, tenant, flow, user, **kw):
    b = Browser(base, stop_prefixes=(tenant.apps.web.redirect_uri,))
    return b, b.sign_in(flow["auth_uri"], username=user.username, password=user.password, **kw)


def test_auth_code_user_read(authority, tenant, tid, base):
    app = _web(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=tenant.apps.web.redirect_uri)
    _, o = _sign_in(base, tenant, flow, user)
    assert o.kind == "redirect", (o.kind, o.steps, o.page and o.page.text[:2000])
    assert o.redirect_status in (302, 303), o.redirect_status
    assert o.steps[:2] == ["username", "password"], o.steps
    assert "consent" not in o.steps, f"User.Read is consented for all users, no consent page expected: {o.steps}"
    assert o.params.get("state") == flow["state"], o.params
    assert o.params.get("code"), o.params
    assert "error" not in o.params, o.params

    r = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in r, r
    claims = assert_v1_graph_token(r["access_token"], tid, appid=tenant.apps.web.client_id, aud=GRAPH_APP_ID,
                                   idtyp="user")
    assert "User.Read" in claims["scp"].split(" ") and claims["oid"] == user.object_id, claims
    assert claims.get("appidacr") == "1", claims
    expected_nonce = hashlib.sha256(flow["nonce"].encode("ascii")).hexdigest()
    assert_id_token(r["id_token"], client_id=tenant.apps.web.client_id, tid=tid, base=base, user=vars(user),
                    nonce=expected_nonce)
    assert r.get("refresh_token"), sorted(r)
    accounts = app.get_accounts()
    assert accounts and accounts[0]["home_account_id"] == f"{user.object_id}.{tid}", accounts

    # silent refresh through the refresh token of a confidential client
    r2 = app.acquire_token_silent(["User.Read"], account=accounts[0], force_refresh=True)
    assert r2 and "access_token" in r2 and r2["access_token"] != r["access_token"], r2


def test_auth_code_login_hint_skips_username_page(authority, tenant, base):
    app = _web(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=tenant.apps.web.redirect_uri,
                                       login_hint=user.username)
    _, o = _sign_in(base, tenant, flow, user)
    assert o.kind == "redirect", (o.steps, o.page and o.page.text[:1500])
    assert o.steps[0] == "password", o.steps
    r = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in r, r


def test_auth_code_consent_page_for_mail_read(authority, tenant, tid, base):
    app = _web(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_auth_code_flow(["Mail.Read"], redirect_uri=tenant.apps.web.redirect_uri)
    b, o = _sign_in(base, tenant, flow, user, consent=None)
    assert o.kind == "page" and o.steps[-1] == "consent", (o.kind, o.steps)
    assert "Mail.Read" in o.page.text or "mail" in o.page.text.lower(), "consent page should list the permission"
    # now accept it
    url, resp, status = b.submit(o.page, {}, "idBtn_Accept")
    assert status in (302, 303), (status, resp.status_code, resp.text[:1500])
    from urllib.parse import parse_qs, urlsplit
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert params.get("code") and params.get("state") == flow["state"], params
    r = app.acquire_token_by_auth_code_flow(flow, params)
    assert "access_token" in r, r
    claims = assert_v1_graph_token(r["access_token"], tid, appid=tenant.apps.web.client_id, aud=GRAPH_APP_ID,
                                   idtyp="user")
    assert "Mail.Read" in claims["scp"].split(" "), claims

    # consent is remembered: a second sign-in for Mail.Read shows no consent page
    flow2 = app.initiate_auth_code_flow(["Mail.Read"], redirect_uri=tenant.apps.web.redirect_uri)
    _, o2 = _sign_in(base, tenant, flow2, user)
    assert o2.kind == "redirect" and "consent" not in o2.steps, o2.steps


def test_auth_code_form_post(authority, tenant, base):
    app = _web(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=tenant.apps.web.redirect_uri,
                                       response_mode="form_post")
    _, o = _sign_in(base, tenant, flow, user)
    assert o.kind == "form_post", (o.kind, o.steps, o.page and o.page.text[:1500])
    assert o.url == tenant.apps.web.redirect_uri, o.url
    assert o.params.get("code") and o.params.get("state") == flow["state"], o.params
    r = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in r, r


def test_kmsi_no_still_completes(authority, tenant, base):
    app = _web(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=tenant.apps.web.redirect_uri)
    _, o = _sign_in(base, tenant, flow, user, kmsi=False)
    assert o.kind == "redirect" and o.params.get("code"), (o.steps, o.page and o.page.text[:1500])
    assert "kmsi" in o.steps, o.steps


def test_consent_cancel_65004(authority, tenant, base):
    app = _web(authority, tenant)
    user = tenant.users.unlicensed
    flow = app.initiate_auth_code_flow(["Mail.Read"], redirect_uri=tenant.apps.web.redirect_uri, prompt="consent")
    _, o = _sign_in(base, tenant, flow, user, consent="cancel")
    assert "consent" in o.steps, o.steps
    assert o.kind == "redirect", (o.kind, o.page and o.page.text[:1500])
    assert o.url.startswith(tenant.apps.web.redirect_uri), o.url
    assert o.params.get("error") == "consent_required", o.params
    assert o.params.get("error_description", "").startswith("AADSTS65004"), o.params
    assert o.params.get("state") == flow["state"], o.params
    assert "code" not in o.params
    r = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert r.get("error") == "consent_required", r


def test_admin_only_scope_non_admin_90094(authority, tenant, base):
    app = _web(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_auth_code_flow(["Directory.Read.All"], redirect_uri=tenant.apps.web.redirect_uri)
    _, o = _sign_in(base, tenant, flow, user)
    assert o.kind == "page", f"non-admin + admin-only scope must end on a page, not {o.kind}: {o.url}"
    assert "AADSTS90094" in o.page.text, o.page.text[:2000]
    assert "idBtn_Accept" not in o.page.ids, "a non-admin must not be offered to accept an admin-only permission"


def test_admin_sees_consent_on_behalf_of_org(authority, tenant, base):
    app = _web(authority, tenant)
    admin = tenant.users.admin
    flow = app.initiate_auth_code_flow(["Directory.Read.All"], redirect_uri=tenant.apps.web.redirect_uri)
    _, o = _sign_in(base, tenant, flow, admin, consent=None)
    assert o.kind == "page" and o.steps[-1] == "consent", (o.kind, o.steps)
    boxes = [c for c in o.page.form.controls if c.type == "checkbox"]
    assert boxes, "admin consent page should have the 'Consent on behalf of your organization' checkbox"
    assert "organi" in o.page.text.lower()


def test_unregistered_redirect_uri_50011(authority, tenant, base):
    q = urlencode({"client_id": tenant.apps.web.client_id, "response_type": "code",
                   "redirect_uri": "http://localhost:3999/not/registered", "scope": "openid User.Read",
                   "state": "s1", "response_mode": "query"})
    r = requests.get(f"{authority}/oauth2/v2.0/authorize?{q}", allow_redirects=False, timeout=30)
    assert r.status_code == 400, (r.status_code, r.headers.get("Location"), r.text[:500])
    assert "Location" not in r.headers
    assert "AADSTS50011" in r.text
    assert "text/html" in r.headers.get("Content-Type", "")
    assert_diagnosis_header(r)


def test_unknown_client_page_700016(authority, base):
    q = urlencode({"client_id": str(uuid.uuid4()), "response_type": "code",
                   "redirect_uri": "http://localhost:3000/auth/callback", "scope": "openid User.Read", "state": "s"})
    r = requests.get(f"{authority}/oauth2/v2.0/authorize?{q}", allow_redirects=False, timeout=30)
    assert "Location" not in r.headers, r.headers.get("Location")
    assert r.status_code not in (301, 302, 303, 307, 308), r.status_code
    assert "AADSTS700016" in r.text
    assert_diagnosis_header(r)


def test_code_redeemed_twice_54005(authority, tenant, base, token_endpoint):
    app = _web(authority, tenant)
    user = tenant.users.user
    w = tenant.apps.web
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=w.redirect_uri)
    _, o = _sign_in(base, tenant, flow, user)
    assert o.kind == "redirect", (o.steps, o.page and o.page.text[:1500])
    r = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in r, r
    corr = str(uuid.uuid4())
    resp = requests.post(token_endpoint, data={
        "client_id": w.client_id, "client_secret": w.client_secret, "grant_type": "authorization_code",
        "code": o.params["code"], "redirect_uri": w.redirect_uri, "code_verifier": flow["code_verifier"],
        "scope": "User.Read openid profile offline_access"}, headers={"client-request-id": corr}, timeout=30)
    assert resp.status_code == 400, (resp.status_code, resp.text)
    assert_aad_error_body(resp.json(), code=54005, error="invalid_grant", correlation_id=corr)
    assert_diagnosis_header(resp)


def test_code_with_wrong_pkce_verifier_is_rejected(authority, tenant, base, token_endpoint):
    app = _web(authority, tenant)
    w = tenant.apps.web
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=w.redirect_uri)
    _, o = _sign_in(base, tenant, flow, tenant.users.user)
    assert o.kind == "redirect", o.steps
    resp = requests.post(token_endpoint, data={
        "client_id": w.client_id, "client_secret": w.client_secret, "grant_type": "authorization_code",
        "code": o.params["code"], "redirect_uri": w.redirect_uri, "code_verifier": "x" * 43,
        "scope": "User.Read openid profile offline_access"}, timeout=30)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_grant", body
    assert body["error_codes"] == [501481], body  # AADSTS501481: The Code_Verifier does not match the code_challenge


def test_garbage_code_9002313(tenant, token_endpoint):
    w = tenant.apps.web
    resp = requests.post(token_endpoint, data={
        "client_id": w.client_id, "client_secret": w.client_secret, "grant_type": "authorization_code",
        "code": "this-is-not-a-code", "redirect_uri": w.redirect_uri, "scope": "User.Read openid"}, timeout=30)
    assert resp.status_code == 400, resp.text
    assert_aad_error_body(resp.json(), code=9002313, error="invalid_grant")
    assert_diagnosis_header(resp)


def test_wrong_password_on_page_50126(authority, tenant, base):
    app = _web(authority, tenant)
    user = tenant.users.user
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=tenant.apps.web.redirect_uri)
    b = Browser(base, stop_prefixes=(tenant.apps.web.redirect_uri,))
    o = b.sign_in(flow["auth_uri"], username=user.username, password="definitely-wrong-1")
    assert o.kind == "page" and o.steps == ["username", "password"], (o.kind, o.steps)
    assert "i0118" in o.page.ids, "the password page should be shown again"
    assert "AADSTS50126" in o.page.text
    # then the right password on the same page works
    url, resp, status = b.submit(o.page, {"i0118": user.password}, "idSIButton9")
    page = parse_page(url, resp) if status is None else None
    assert status is not None or "KmsiCheckboxField" in page.ids, page and page.text[:1500]
