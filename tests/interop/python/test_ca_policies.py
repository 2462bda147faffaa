"""Conditional access policy outcomes as MSAL Python and the wire see them: block (53003), MFA with
registration and TOTP on the pages (50079 -> 50076, amr mfa, session remembers MFA), report-only and
disabled policies (never enforce), PATCH/DELETE of a policy, group / exclude assignments, and an
authentication context requested through `claims` at the token endpoint.

A dedicated server per module; every user a test changes is created through Graph (POST /users) and
every policy through Graph (POST /identity/conditionalAccess/policies) by the automation app."""
from __future__ import annotations

import json
import uuid

import msal
import pytest

from gatehouse_harness import GRAPH_APP_ID, assert_aad_error_body, assert_diagnosis_header, decode_jwt
from test_ca_support import Admin, ropc, start_server

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

ACRS_C1 = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
REDIRECT = "http://localhost"


@pytest.fixture(scope="module")
def srv():
    s = start_server("gatehouse-ca-policies", test_clock=True)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv):
    return Admin(srv)


def _public(srv, **kw):
    return msal.PublicClientApplication(srv.demo["apps"]["public"]["client_id"], authority=srv.authority,
                                        instance_discovery=False, http_client=srv.session(), **kw)


def _capolids(claims_json: str) -> list:
    c = json.loads(claims_json)
    assert c["access_token"]["capolids"]["essential"] is True, c
    return c["access_token"]["capolids"]["values"]


def test_block_policy_53003_report_only_and_disabled_do_not_enforce(srv, admin):
    u = admin.new_user("blk")
    other = admin.new_user("free")
    app = _public(srv)
    admin.policy(users=[u["id"]], control="block", state="enabledForReportingButNotEnforced")
    admin.policy(users=[u["id"]], control="block", state="disabled")
    r = app.acquire_token_by_username_password(u["username"], u["password"], scopes=["User.Read"])
    assert "access_token" in r, f"report-only and disabled block policies must not enforce: {r}"

    pol = admin.policy(users=[u["id"]], control="block")
    r = app.acquire_token_by_username_password(u["username"], u["password"], scopes=["User.Read"])
    assert r.get("error") == "interaction_required", r
    assert r.get("error_codes") == [53003], r
    assert r.get("suberror") == "message_only", r
    assert r["error_description"].startswith(
        "AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not "
        "allow token issuance."), r
    assert "claims" not in r, r

    wire = ropc(srv, u)
    assert wire.status_code == 400, wire.text
    assert_aad_error_body(wire.json(), code=53003, error="interaction_required", suberror="message_only")
    assert_diagnosis_header(wire)
    e = srv.explain(wire.json()["trace_id"])
    assert e["cause"] == "GH-CA-BLOCKED", e
    assert pol["id"] in json.dumps(e.get("evidence")), e

    assert ropc(srv, other).status_code == 200, "a user outside the policy is not blocked"

    # PATCH the policy to report-only: enforcement stops; DELETE it: gone.
    admin.call("PATCH", f"/identity/conditionalAccess/policies/{pol['id']}",
               {"state": "enabledForReportingButNotEnforced"}, expect=204)
    got = admin.call("GET", f"/identity/conditionalAccess/policies/{pol['id']}", expect=200).json()
    assert got["state"] == "enabledForReportingButNotEnforced", got
    assert ropc(srv, u).status_code == 200
    admin.call("PATCH", f"/identity/conditionalAccess/policies/{pol['id']}", {"state": "enabled"}, expect=204)
    assert ropc(srv, u).status_code == 400
    admin.call("DELETE", f"/identity/conditionalAccess/policies/{pol['id']}", expect=204)
    admin.call("GET", f"/identity/conditionalAccess/policies/{pol['id']}", expect=404)
    assert ropc(srv, u).status_code == 200


def test_mfa_policy_50079_registration_totp_then_50076(srv, admin):
    u = admin.new_user("mfa")
    pol = admin.policy(users=[u["id"]], control="mfa")
    app = _public(srv, client_capabilities=["CP1"])

    r = app.acquire_token_by_username_password(u["username"], u["password"], scopes=["User.Read"])
    assert r.get("error") == "interaction_required", r
    assert r.get("error_codes") == [50079], f"no authenticator registered yet: enroll (50079): {r}"
    assert r.get("suberror") == "basic_action", r
    assert "you must enroll in multi-factor authentication to access '00000003-0000-0000-c000-000000000000'" \
        in r["error_description"], r
    assert _capolids(r["claims"]) == [pol["id"]], r["claims"]
    assert r["claims"] == '{"access_token":{"capolids":{"essential":true,"values":["%s"]}}}' % pol["id"]

    # The app answers with an interactive sign-in carrying the claims (MSAL merges CP1 into them).
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT, claims_challenge=r["claims"],
                                       login_hint=u["username"])
    b = srv.browser(stop_prefixes=(REDIRECT,))
    # A wrong code is refused on the registration page ...
    o = b.run(flow["auth_uri"], username=u["username"], password=u["password"], otc_override="000000")
    assert o.kind == "page" and o.steps == ["password", "mfa_register"], (o.kind, o.steps)
    assert "idSpan_SAOTCC_Error_OTC" in o.page.ids, o.page.text[-1500:]
    secret = b.totp_secrets[u["username"]]
    assert f"secret={secret}" in b.otpauth_uris[u["username"]]
    # ... the TOTP computed from the shown secret is accepted.
    from test_ca_support import totp
    o = b.resume(b.submit(o.page, {"idTxtBx_SAOTCC_OTC": totp(secret, srv.now())}, "idSubmit_SAOTCC_Continue"),
                 username=u["username"], password=u["password"], steps=o.steps)
    assert o.kind == "redirect" and o.params.get("code"), (o.kind, o.steps, o.page and o.page.text[-1500:])
    res = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in res, res
    _, c = decode_jwt(res["access_token"])
    assert c["amr"] == ["pwd", "mfa"], c
    assert c["xms_cc"] == ["cp1"], c

    # The browser session remembers MFA: a second authorize with the cookie asks nothing.
    flow2 = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    o2 = b.run(flow2["auth_uri"], username=u["username"], password=u["password"])
    assert o2.kind == "redirect" and not any(s.startswith("mfa") for s in o2.steps), o2.steps
    assert decode_jwt(app.acquire_token_by_auth_code_flow(flow2, o2.params)["access_token"])[1]["amr"] == ["pwd", "mfa"]

    # The refresh token carries the MFA claim: silent refresh passes the policy.
    acct = app.get_accounts(username=u["username"])
    s = app.acquire_token_silent(["User.Read"], account=acct[0], force_refresh=True)
    assert s and "access_token" in s, s
    assert decode_jwt(s["access_token"])[1]["amr"] == ["pwd", "mfa"]

    # Registered now: ROPC cannot do MFA -> 50076 ("use"), not 50079 ("enroll").
    r = _public(srv).acquire_token_by_username_password(u["username"], u["password"], scopes=["User.Read"])
    assert r.get("error_codes") == [50076], r
    assert r.get("suberror") == "basic_action", r
    assert "you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'" \
        in r["error_description"], r
    assert _capolids(r["claims"]) == [pol["id"]]

    # A fresh browser (no session): password then only the code page (no registration).
    b2 = srv.browser(stop_prefixes=(REDIRECT,))
    b2.totp_secrets = dict(b.totp_secrets)
    srv.advance(31)  # next TOTP window, so the code differs from the one used above
    flow3 = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT, claims_challenge=r["claims"])
    o3 = b2.run(flow3["auth_uri"], username=u["username"], password=u["password"])
    assert o3.kind == "redirect", (o3.steps, o3.page and o3.page.text[-1500:])
    assert "mfa_code" in o3.steps and "mfa_register" not in o3.steps, o3.steps
    assert "mfaSecret" not in b2.mfa_pages[-1].ids


def test_report_only_mfa_never_enforces(srv, admin):
    u = admin.new_user("rpt")
    admin.policy(users=[u["id"]], control="mfa", state="enabledForReportingButNotEnforced")
    r = _public(srv).acquire_token_by_username_password(u["username"], u["password"], scopes=["User.Read"])
    assert "access_token" in r, r
    assert decode_jwt(r["access_token"])[1]["amr"] == ["pwd"]
    # also interactively: no MFA page
    app = _public(srv)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    o = srv.browser(stop_prefixes=(REDIRECT,)).run(flow["auth_uri"], username=u["username"], password=u["password"])
    assert o.kind == "redirect" and not any(s.startswith("mfa") for s in o.steps), o.steps


def test_group_include_and_user_exclude(srv, admin):
    inside, excluded, outside = admin.new_user("gin"), admin.new_user("gex"), admin.new_user("gout")
    g = admin.call("POST", "/groups", {"displayName": f"CA block {uuid.uuid4().hex[:6]}", "mailEnabled": False,
                                       "mailNickname": f"ca{uuid.uuid4().hex[:6]}", "securityEnabled": True},
                   expect=201).json()
    for u in (inside, excluded):
        admin.call("POST", f"/groups/{g['id']}/members/$ref",
                   {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{u['id']}"}, expect=204)
    admin.policy(users=[], groups=[g["id"]], exclude_users=[excluded["id"]], control="block")
    assert ropc(srv, inside).json().get("error_codes") == [53003]
    assert ropc(srv, excluded).status_code == 200
    assert ropc(srv, outside).status_code == 200


def test_policy_for_another_resource_does_not_apply(srv, admin):
    u = admin.new_user("res")
    # Block only the demo API; a Graph token is still issued, an API token is not.
    api_app = srv.demo["apps"]["api"]["client_id"]
    admin.policy(users=[u["id"]], control="block", apps=[api_app])
    assert ropc(srv, u).status_code == 200
    r = ropc(srv, u, scope=f"{srv.demo['apps']['api']['scope']} offline_access")
    assert r.status_code == 400 and r.json()["error_codes"] == [53003], r.text


def test_authentication_context_requested_through_claims(srv, admin):
    u = admin.new_user("acr")
    # Define the context and a policy that requires MFA for it (Graph only).
    r = admin.call("PATCH", "/identity/conditionalAccess/authenticationContextClassReferences/c1",
                   {"displayName": "Sensitive operations", "description": "step-up", "isAvailable": True})
    assert r.status_code in (200, 201, 204), (r.status_code, r.text)
    pol = admin.policy(users=[u["id"]], control="mfa", apps=[], contexts=["c1"])

    # Without the context in claims, the policy does not apply.
    plain = ropc(srv, u)
    assert plain.status_code == 200, plain.text
    assert "acrs" not in decode_jwt(plain.json()["access_token"])[1]

    # With {"acrs":{"essential":true,"value":"c1"}} it applies: MFA required.
    app = _public(srv, client_capabilities=["CP1"])
    r = app.acquire_token_by_username_password(u["username"], u["password"], scopes=["User.Read"],
                                               claims_challenge=ACRS_C1)
    assert r.get("error") == "interaction_required" and r.get("error_codes") == [50079], r
    assert _capolids(r["claims"]) == [pol["id"]]

    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT, claims_challenge=ACRS_C1,
                                       login_hint=u["username"])
    assert "acrs" in flow["auth_uri"] and "xms_cc" in flow["auth_uri"], flow["auth_uri"]
    o = srv.browser(stop_prefixes=(REDIRECT,)).run(flow["auth_uri"], username=u["username"], password=u["password"])
    assert o.kind == "redirect" and "mfa_register" in o.steps, (o.steps, o.page and o.page.text[-1500:])
    res = app.acquire_token_by_auth_code_flow(flow, o.params)
    assert "access_token" in res, res
    c = decode_jwt(res["access_token"])[1]
    assert c["acrs"] == ["c1"], c
    assert c["amr"] == ["pwd", "mfa"], c
    assert c["xms_cc"] == ["cp1"], c
