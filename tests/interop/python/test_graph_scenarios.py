"""End-to-end scenarios for every cause of the 401/403 troubleshooting guide.

Each scenario is set up the way a real admin script does it -- only Microsoft Graph calls made with
msgraph-sdk, authenticated as the demo tenant's automation app (ClientSecretCredential): create an
application and its service principal, add a password, grant delegated consent
(oauth2PermissionGrants), assign an application permission (appRoleAssignedTo), assign a directory role
(roleManagement / directoryRoles members $ref), create users and assign licences.

Tokens are then obtained with MSAL Python from Gatehouse (ROPC for delegated tokens, client credentials
for app-only tokens), and the call under test is made with msgraph-sdk's GraphServiceClient pointed at
Gatehouse. Each failing call asserts the ODataError as the real service sends it (status, error.code,
error.message) and the explanation fetched by the response's request-id
(GET /_gatehouse/explain/{request-id}): cause code and the suggested fix. Most scenarios then apply the
fix through Graph and show the call succeeding.

Users that a scenario changes (passwords, licences, roles, accountEnabled) are created by the scenario,
so the demo users stay as they are for the other test files.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from types import SimpleNamespace
from typing import Optional

import httpx
import msal
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.identity import ClientSecretCredential

from gatehouse_harness import GRAPH_APP_ID, Browser, decode_jwt

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
AAD_GRAPH_DEFAULT = "https://graph.windows.net/.default"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"  # directory role template id
PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"  # the password authentication method
INSUFFICIENT = "Insufficient privileges to complete the operation."

# Microsoft Graph permission ids (reference F.3): name -> (delegated scope id, application role id)
PERMISSIONS = {
    "User.Read": ("e1fe6dd8-ba31-4d61-89e7-88639da4683d", None),
    "User.ReadBasic.All": ("b340eb25-3456-403f-be2f-af7a0d370277", "97235f07-e226-4f63-ace3-39588e11d3a1"),
    "User.Read.All": ("a154be20-db9c-4678-8ab7-66f6cc099a59", "df021288-bdef-4463-88db-98f22de89214"),
    "User.ReadWrite.All": ("204e0828-b5ca-4ad8-b9f3-f32a958e7cc4", "741f803b-c850-494e-b5df-cde7c675a1ca"),
    "UserAuthenticationMethod.ReadWrite.All": ("b7887744-6746-4312-813d-72daeaee7e2d",
                                               "50483e42-d915-4231-9639-7fdb7fd190e5"),
    "User-PasswordProfile.ReadWrite.All": ("56760768-b641-451f-8906-e1b8ab31bca7",
                                           "cc117bb9-00cf-4eb8-b580-ea2a878fe8f7"),
    "Mail.Read": ("570282fd-fa5c-430d-a7fd-fc8dc98a9dca", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
    "openid": ("37f7f235-527c-4136-accd-4a02d197296e", None),
    "profile": ("14dad69e-099b-42c9-810b-d002981feec1", None),
    "offline_access": ("7427e0e9-2fba-42fe-b0c0-848c9e6a8182", None),
}
SIGN_IN = "openid profile offline_access User.Read"

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions.*"),
]


# ----------------------------------------------------------------------------------------------
# Plumbing: one event loop for the module (the httpx clients are bound to it), SDK clients
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loop():
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def graph_served(demo):
    r = requests.get(f"{demo['graph_base_url']}/users", timeout=30)
    if r.status_code == 404 and "error" not in r.text:
        pytest.skip(f"GET {demo['graph_base_url']}/users -> 404 without a Graph error body: Graph API not served yet")
    return True


class MsalTokenCredential:
    """azure-core TokenCredential protocol over a token MSAL already returned.

    Records the scopes and claims kiota asks for. With `reacquire` (a callable taking the claims
    challenge JSON), a claims challenge is answered by asking MSAL again, the way an app would."""

    def __init__(self, result: dict, reacquire=None):
        assert "access_token" in result, result
        self.result = result
        self.reacquire = reacquire
        self.calls: list = []

    def get_token(self, *scopes, claims: Optional[str] = None, tenant_id=None, enable_cae=False, **kwargs):
        self.calls.append({"scopes": scopes, "claims": claims})
        if claims and self.reacquire is not None:
            self.result = self.reacquire(claims)
            assert "access_token" in self.result, self.result
        exp = int(time.time()) + int(self.result.get("expires_in", 3600))
        return AccessToken(self.result["access_token"], exp)


def _graph_client(server, demo, credential, scopes):
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as graph_default_options
    from msgraph_core import GraphClientFactory
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    auth = AzureIdentityAuthenticationProvider(credential, scopes=scopes, allowed_hosts=["localhost"])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(server.bundle_path)), http2=True),
        options=graph_default_options)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = demo["graph_base_url"]
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture(scope="module")
def sdk(server, demo):
    """sdk(token_result, scopes) -> GraphServiceClient that presents that MSAL token."""
    def make(result_or_credential, scopes=(GRAPH_DEFAULT,)):
        cred = result_or_credential if hasattr(result_or_credential, "get_token") else MsalTokenCredential(
            result_or_credential)
        return _graph_client(server, demo, cred, list(scopes))
    return make


def run_fails(loop, coro):
    """Run an SDK call that must fail; returns the ODataError."""
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    try:
        value = loop.run_until_complete(coro)
    except ODataError as e:
        return e
    raise AssertionError(f"the call succeeded, expected an ODataError; returned {value!r}")


def assert_graph_error(e, status: int, code: str, message: str) -> str:
    """Assert what msgraph-sdk surfaces, as the real service sends it; returns the request-id."""
    body = f"status={e.response_status_code} error={getattr(e.error, 'code', None)!r} " \
           f"message={getattr(e.error, 'message', None)!r} headers={dict(e.response_headers or {})}"
    assert e.response_status_code == status, body
    assert e.error is not None, body
    assert e.error.code == code, body
    assert e.error.message == message, body
    headers = e.response_headers
    rid = headers.get("request-id")
    assert rid, body
    if e.error.inner_error is not None:
        assert e.error.inner_error.request_id == rid, body
        assert e.error.inner_error.client_request_id == headers.get("client-request-id"), body
    diag = headers.get("x-gatehouse-diagnosis")
    assert diag and f"/_gatehouse/explain/{rid}" in diag, body
    return rid


@pytest.fixture(scope="module")
def explain(server, base):
    def get(request_id: str, cause: str, *, status: Optional[int] = None, error: Optional[str] = None,
            of=None) -> dict:
        """The explanation of a denial; `of` = the ODataError whose wire status/code/message it must repeat."""
        if of is not None:
            status, error = of.response_status_code, of.error.code
        r = requests.get(f"{base}/_gatehouse/explain/{request_id}", timeout=30)
        assert r.status_code == 200, (request_id, r.status_code, r.text)
        e = r.json()
        assert e.get("cause") == cause, json.dumps(e, indent=1)
        assert e.get("summary"), e
        assert isinstance(e.get("fix"), list) and e["fix"] and all(f.get("text") for f in e["fix"]), e
        if status is not None:
            assert e["wire"]["status"] == status, e
        if error is not None:
            assert e["wire"]["error"] == error, e
        if of is not None:
            assert e["wire"]["message"] == of.error.message, (e["wire"], of.error.message)
            assert e.get("request_id") == request_id, e
        e["fix_text"] = json.dumps(e["fix"])
        return e
    return get


def fix_mentions(e: dict, *needles: str) -> None:
    missing = [n for n in needles if n not in e["fix_text"]]
    assert not missing, f"fix does not mention {missing}: {json.dumps(e['fix'], indent=1)}"


def evidence_mentions(e: dict, *needles: str) -> None:
    text = json.dumps(e.get("evidence"))
    missing = [n for n in needles if n not in text]
    assert not missing, f"evidence does not mention {missing}: {json.dumps(e.get('evidence'), indent=1)}"


def _ok(loop, coro):
    return loop.run_until_complete(coro)


# ----------------------------------------------------------------------------------------------
# The admin script: Graph calls with the automation app (msgraph-sdk, ClientSecretCredential)
# ----------------------------------------------------------------------------------------------

class AdminScript:
    def __init__(self, server, demo, loop):
        a = demo["apps"]["automation"]
        cred = ClientSecretCredential(demo["tenant_id"], a["client_id"], a["client_secret"],
                                      authority=demo["authority_host"], disable_instance_discovery=True,
                                      connection_verify=str(server.bundle_path))
        self.client = _graph_client(server, demo, cred, [GRAPH_DEFAULT])
        self.demo = demo
        self.loop = loop
        self._graph_sp = None
        self._sku = None

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    @property
    def graph_sp_id(self) -> str:
        if self._graph_sp is None:
            from kiota_abstractions.base_request_configuration import RequestConfiguration
            from msgraph.generated.service_principals.service_principals_request_builder import \
                ServicePrincipalsRequestBuilder
            q = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
                filter=f"appId eq '{GRAPH_APP_ID}'")
            res = self.run(self.client.service_principals.get(RequestConfiguration(query_parameters=q)))
            assert res.value and len(res.value) == 1, res
            self._graph_sp = res.value[0].id
        return self._graph_sp

    def new_app(self, name: str, *, scopes=(), roles=(), public_client=False) -> SimpleNamespace:
        """POST /applications (+ requiredResourceAccess), POST /servicePrincipals, addPassword."""
        from msgraph.generated.applications.item.add_password.add_password_post_request_body import \
            AddPasswordPostRequestBody
        from msgraph.generated.models.application import Application
        from msgraph.generated.models.password_credential import PasswordCredential
        from msgraph.generated.models.public_client_application import PublicClientApplication
        from msgraph.generated.models.required_resource_access import RequiredResourceAccess
        from msgraph.generated.models.resource_access import ResourceAccess
        from msgraph.generated.models.service_principal import ServicePrincipal

        access = [ResourceAccess(id=uuid.UUID(PERMISSIONS[s][0]), type="Scope") for s in scopes]
        access += [ResourceAccess(id=uuid.UUID(PERMISSIONS[r][1]), type="Role") for r in roles]
        body = Application(
            display_name=f"{name} {uuid.uuid4().hex[:6]}",
            sign_in_audience="AzureADMyOrg",
            required_resource_access=[RequiredResourceAccess(resource_app_id=GRAPH_APP_ID, resource_access=access)],
        )
        if public_client:
            body.is_fallback_public_client = True
            body.public_client = PublicClientApplication(redirect_uris=["http://localhost"])
        app = self.run(self.client.applications.post(body))
        assert app and app.app_id and app.id, app
        sp = self.run(self.client.service_principals.post(ServicePrincipal(app_id=app.app_id)))
        assert sp and sp.id and sp.app_id == app.app_id, sp
        pw = self.run(self.client.applications.by_application_id(app.id).add_password.post(
            AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="scenario"))))
        assert pw and pw.secret_text, pw
        return SimpleNamespace(client_id=app.app_id, object_id=app.id, sp_id=sp.id, secret=pw.secret_text,
                               display_name=app.display_name)

    def grant_delegated(self, app, scope: str, principal_id: Optional[str] = None):
        """POST /oauth2PermissionGrants: consent for all users, or for one user."""
        from msgraph.generated.models.o_auth2_permission_grant import OAuth2PermissionGrant
        g = OAuth2PermissionGrant(client_id=app.sp_id, resource_id=self.graph_sp_id, scope=scope,
                                  consent_type="Principal" if principal_id else "AllPrincipals",
                                  principal_id=principal_id)
        got = self.run(self.client.oauth2_permission_grants.post(g))
        assert got and got.id, got
        return got

    def grant_app_role(self, app, permission: str):
        """POST /servicePrincipals/{graph}/appRoleAssignedTo: admin consent for an application permission."""
        from msgraph.generated.models.app_role_assignment import AppRoleAssignment
        a = AppRoleAssignment(principal_id=uuid.UUID(app.sp_id), resource_id=uuid.UUID(self.graph_sp_id),
                              app_role_id=uuid.UUID(PERMISSIONS[permission][1]))
        got = self.run(self.client.service_principals.by_service_principal_id(self.graph_sp_id)
                       .app_role_assigned_to.post(a))
        assert got and got.id, got
        return got

    def assign_role_to_principal(self, principal_id: str, template_id: str = USER_ADMINISTRATOR):
        """POST /roleManagement/directory/roleAssignments."""
        from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
        got = self.run(self.client.role_management.directory.role_assignments.post(UnifiedRoleAssignment(
            principal_id=principal_id, role_definition_id=template_id, directory_scope_id="/")))
        assert got and got.id, got
        return got

    def add_directory_role_member(self, principal_id: str, template_id: str = USER_ADMINISTRATOR):
        """GET /directoryRoles, then POST /directoryRoles/{id}/members/$ref.

        msgraph-sdk percent-encodes the '=' of a `roleTemplateId={id}` key (by_directory_role_id), and has
        no builder for the alternate key (msgraph-sdk-python#1524), so the script looks the role up first,
        as that issue's workaround does."""
        from msgraph.generated.models.reference_create import ReferenceCreate
        roles = self.run(self.client.directory_roles.get())
        role = next((r for r in roles.value if r.role_template_id == template_id), None)
        assert role is not None, [(r.display_name, r.role_template_id) for r in roles.value]
        self.run(self.client.directory_roles.by_directory_role_id(role.id).members.ref.post(
            ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{principal_id}")))

    def new_user(self, prefix: str, *, licensed: bool = False) -> SimpleNamespace:
        """POST /users in the tenant's domain (+ assignLicense)."""
        from msgraph.generated.models.password_profile import PasswordProfile
        from msgraph.generated.models.user import User
        nick = f"{prefix}{uuid.uuid4().hex[:8]}"
        password = f"Sc-{uuid.uuid4().hex[:10]}!9a"
        u = self.run(self.client.users.post(User(
            account_enabled=True, display_name=f"Scenario {prefix}", mail_nickname=nick,
            user_principal_name=f"{nick}@{self.demo['domain']}",
            password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=False))))
        assert u and u.id, u
        user = SimpleNamespace(object_id=u.id, username=u.user_principal_name, password=password)
        if licensed:
            self.assign_licence(user)
        return user

    @property
    def sku_id(self) -> uuid.UUID:
        if self._sku is None:
            skus = self.run(self.client.subscribed_skus.get())
            assert skus and skus.value, skus
            sku = next((s for s in skus.value if s.sku_part_number == "SPE_E3"), skus.value[0])
            self._sku = sku.sku_id
        return self._sku

    def assign_licence(self, user):
        from msgraph.generated.models.assigned_license import AssignedLicense
        from msgraph.generated.users.item.assign_license.assign_license_post_request_body import \
            AssignLicensePostRequestBody
        got = self.run(self.client.users.by_user_id(user.object_id).assign_license.post(
            AssignLicensePostRequestBody(add_licenses=[AssignedLicense(sku_id=self.sku_id)], remove_licenses=[])))
        assert got is not None and got.id == user.object_id, got
        assert any(str(l.sku_id) == str(self.sku_id) for l in (got.assigned_licenses or [])), got.assigned_licenses
        return got

    def get_user(self, object_id: str, select=("id", "displayName", "accountEnabled", "assignedLicenses")):
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
        q = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=list(select))
        return self.run(self.client.users.by_user_id(object_id).get(RequestConfiguration(query_parameters=q)))


@pytest.fixture(scope="module")
def admin(server, demo, loop, graph_served) -> AdminScript:
    return AdminScript(server, demo, loop)


# ----------------------------------------------------------------------------------------------
# MSAL: delegated tokens (ROPC) and app-only tokens (client credentials)
# ----------------------------------------------------------------------------------------------

def ropc(authority, app, user, scopes, **kw) -> dict:
    pca = msal.PublicClientApplication(app.client_id, authority=authority, instance_discovery=False, **kw)
    return pca.acquire_token_by_username_password(user.username, user.password, scopes=list(scopes))


def app_only(authority, app, scope=GRAPH_DEFAULT) -> dict:
    """A fresh ConfidentialClientApplication each time: no token cache, so a new token after a grant."""
    cca = msal.ConfidentialClientApplication(app.client_id, client_credential=app.secret, authority=authority,
                                             instance_discovery=False)
    r = cca.acquire_token_for_client([scope])
    assert "access_token" in r, r
    return r


def claims_of(result: dict) -> dict:
    return decode_jwt(result["access_token"])[1]


def demo_user(tenant, key):
    u = getattr(tenant.users, key)
    return SimpleNamespace(object_id=u.object_id, username=u.username, password=u.password)


# ----------------------------------------------------------------------------------------------
# 1. Consent missing
# ----------------------------------------------------------------------------------------------

def test_1_consent_missing_user_65001(admin, authority, tenant, base, explain, sdk, loop):
    """ROPC for a delegated scope nobody consented to: invalid_grant 65001 consent_required. A user consent
    grant through Graph (oauth2PermissionGrant, consentType Principal) fixes it for that user."""
    app = admin.new_app("Consent user", scopes=["User.Read", "Mail.Read", "openid", "profile", "offline_access"],
                        public_client=True)
    admin.grant_delegated(app, SIGN_IN)
    user = demo_user(tenant, "user")

    ok = ropc(authority, app, user, ["User.Read"])
    assert "access_token" in ok, ok

    r = ropc(authority, app, user, ["Mail.Read"])
    assert r.get("error") == "invalid_grant", r
    assert r.get("error_codes") == [65001], r
    assert r.get("suberror") == "consent_required", r
    assert r["error_description"].startswith(
        f"AADSTS65001: The user or administrator has not consented to use the application with ID "
        f"'{app.client_id}' named '{app.display_name}'. Send an interactive authorization request for this user "
        f"and resource."), r["error_description"]
    e = explain(r["trace_id"], "GH-CONSENT-MISSING", status=400, error="invalid_grant")
    fix_mentions(e, "adminconsent?client_id=" + app.client_id)
    evidence_mentions(e, "Mail.Read")

    # The fix: consent (here: an admin script records the user's consent through Graph).
    admin.grant_delegated(app, "Mail.Read", principal_id=user.object_id)
    r = ropc(authority, app, user, ["Mail.Read"])
    assert "access_token" in r, r
    assert "Mail.Read" in claims_of(r)["scp"].split(), claims_of(r)
    msgs = _ok(loop, sdk(r).me.messages.get())
    assert msgs is not None and msgs.value is not None


def test_1_consent_admin_required_90094(admin, authority, tenant, base, explain):
    """Interactive sign-in of a non-admin for an admin-only delegated scope ends on the 90094 page;
    after an admin grants tenant-wide consent through Graph the same user gets the token."""
    app = admin.new_app("Consent admin", scopes=["User.Read", "User.Read.All", "openid", "profile",
                                                 "offline_access"], public_client=True)
    admin.grant_delegated(app, SIGN_IN)
    user = demo_user(tenant, "user")
    pca = msal.PublicClientApplication(app.client_id, authority=authority, instance_discovery=False)
    flow = pca.initiate_auth_code_flow(["User.Read.All"], redirect_uri="http://localhost")
    b = Browser(base, stop_prefixes=("http://localhost",))
    o = b.sign_in(flow["auth_uri"], username=user.username, password=user.password)
    assert o.kind == "page", (o.kind, o.steps, o.url)
    assert "AADSTS90094" in o.page.text, o.page.text[:2000]
    assert "idBtn_Accept" not in o.page.ids
    diag = {k.lower(): v for k, v in o.page.headers.items()}.get("x-gatehouse-diagnosis", "")
    assert diag.startswith("GH-CONSENT-ADMIN-REQUIRED; explain="), (diag, o.page.headers)
    request_id = diag.rsplit("/", 1)[-1]
    e = explain(request_id, "GH-CONSENT-ADMIN-REQUIRED")
    fix_mentions(e, "User.Read.All")

    admin.grant_delegated(app, "User.Read.All")
    r = ropc(authority, app, user, ["User.Read.All"])
    assert "access_token" in r, r
    assert "User.Read.All" in claims_of(r)["scp"].split()


def test_1b_app_permission_not_admin_consented(admin, authority, tenant, explain, sdk, loop):
    """Application permission requested (requiredResourceAccess) but never granted: the client-credentials
    token has no roles, Graph answers 403. After appRoleAssignedTo, a NEW token works; the old one keeps
    its frozen claims and still fails."""
    app = admin.new_app("Daemon not consented", roles=["User.Read.All"])
    before = app_only(authority, app)
    assert "roles" not in claims_of(before), claims_of(before)
    e = run_fails(loop, sdk(before).users.get())
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)
    x = explain(rid, "GH-APP-PERMISSION-NOT-CONSENTED", of=e)
    fix_mentions(x, "adminconsent", app.client_id)

    admin.grant_app_role(app, "User.Read.All")
    e = run_fails(loop, sdk(before).users.get())
    assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)

    after = app_only(authority, app)
    assert "User.Read.All" in claims_of(after).get("roles", []), claims_of(after)
    users = _ok(loop, sdk(after).users.get())
    names = {u.user_principal_name.lower() for u in users.value}
    assert tenant.users.user.username.lower() in names, names


# ----------------------------------------------------------------------------------------------
# 2. Wrong permissions
# ----------------------------------------------------------------------------------------------

def test_2_wrong_permission_delegated_user_read_lists_users(admin, authority, tenant, explain, sdk, loop):
    app = admin.new_app("Wrong permission", scopes=["User.Read", "User.ReadBasic.All", "openid", "profile",
                                                    "offline_access"],
                        public_client=True)
    admin.grant_delegated(app, SIGN_IN)
    user = demo_user(tenant, "user")
    r = ropc(authority, app, user, ["User.Read"])
    assert "access_token" in r, r
    client = sdk(r, ["User.Read"])
    e = run_fails(loop, client.users.get())
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)
    x = explain(rid, "GH-PERMISSION-MISSING", of=e)
    assert "User.ReadBasic.All" in x["fix_text"] or "User.Read.All" in x["fix_text"], x["fix"]
    # The same token is fine for what User.Read covers.
    me = _ok(loop, client.me.get())
    assert me.user_principal_name.lower() == user.username.lower()
    # The fix: consent to User.ReadBasic.All (granted through Graph here), then a new token.
    admin.grant_delegated(app, "User.ReadBasic.All", principal_id=user.object_id)
    r = ropc(authority, app, user, ["User.ReadBasic.All"])
    assert "access_token" in r, r
    users = _ok(loop, sdk(r, ["User.ReadBasic.All"]).users.get())
    assert tenant.users.user_admin.username.lower() in {u.user_principal_name.lower() for u in users.value}
    # Last, as it is about wording only: User.ReadBasic.All (the least privileged delegated permission for
    # GET /users) is user-consentable (permissions.json DelegatedWork requiresAdminConsent=false; reference
    # F.3), and the user's consent was just enough above: the fix must not say it needs admin consent.
    for f in x["fix"]:
        if "User.ReadBasic.All" in f["text"] and "User.Read.All" not in f["text"]:
            assert "needs admin consent" not in f["text"], f"User.ReadBasic.All needs no admin consent: {f['text']!r}"


# ----------------------------------------------------------------------------------------------
# 3. Token type
# ----------------------------------------------------------------------------------------------

def test_3a_application_permission_with_delegated_token(admin, authority, tenant, explain, sdk, loop):
    app = admin.new_app("App perm delegated token", scopes=["User.Read", "openid", "profile", "offline_access"],
                        roles=["User.Read.All"], public_client=True)
    admin.grant_delegated(app, SIGN_IN)
    admin.grant_app_role(app, "User.Read.All")
    user = demo_user(tenant, "user")
    r = ropc(authority, app, user, ["User.Read"])
    assert "access_token" in r, r
    e = run_fails(loop, sdk(r, ["User.Read"]).users.get())
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)
    x = explain(rid, "GH-TOKEN-TYPE-DELEGATED", of=e)
    fix_mentions(x, GRAPH_DEFAULT)
    # The fix: a client-credentials token from the same app.
    users = _ok(loop, sdk(app_only(authority, app)).users.get())
    assert users.value


def test_3b_delegated_permission_with_app_only_token(admin, authority, tenant, explain, sdk, loop):
    app = admin.new_app("Delegated perm app token", scopes=["User.Read", "User.Read.All", "openid", "profile",
                                                            "offline_access"], public_client=True)
    admin.grant_delegated(app, SIGN_IN + " User.Read.All")
    target = tenant.users.user
    tok = app_only(authority, app)
    assert "roles" not in claims_of(tok), claims_of(tok)
    e = run_fails(loop, sdk(tok).users.by_user_id(target.object_id).get())
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)
    x = explain(rid, "GH-TOKEN-TYPE-APP", of=e)
    fix_mentions(x, "sign a user in", "application permission", "adminconsent?client_id=" + app.client_id)
    # The fix: a delegated token of a signed-in user.
    r = ropc(authority, app, demo_user(tenant, "user"), ["User.Read.All"])
    assert "access_token" in r, r
    got = _ok(loop, sdk(r, ["User.Read.All"]).users.by_user_id(target.object_id).get())
    assert got.id == target.object_id


def test_3c_me_with_app_only_token(admin, authority, tenant, explain, sdk, loop):
    app = admin.new_app("Me app only", roles=["User.Read.All"])
    admin.grant_app_role(app, "User.Read.All")
    client = sdk(app_only(authority, app))
    e = run_fails(loop, client.me.get())
    rid = assert_graph_error(e, 400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    x = explain(rid, "GH-ME-APP-ONLY", of=e)
    fix_mentions(x, "/users/")
    got = _ok(loop, client.users.by_user_id(tenant.users.user.username).get())
    assert got.id == tenant.users.user.object_id


# ----------------------------------------------------------------------------------------------
# 4. Privileged operations
# ----------------------------------------------------------------------------------------------

def test_4_privileged_password_operations(admin, authority, tenant, explain, sdk, loop):
    from msgraph.generated.models.password_profile import PasswordProfile
    from msgraph.generated.models.user import User
    from msgraph.generated.users.item.authentication.methods.item.reset_password.reset_password_post_request_body \
        import ResetPasswordPostRequestBody

    target = admin.new_user("pwtarget")
    app = admin.new_app("Password daemon", roles=["User.ReadWrite.All"])
    admin.grant_app_role(app, "User.ReadWrite.All")
    new_password = f"Nw-{uuid.uuid4().hex[:10]}!9a"
    patch = User(password_profile=PasswordProfile(password=new_password, force_change_password_next_sign_in=False))

    # App-only passwordProfile without a directory role on the service principal.
    client = sdk(app_only(authority, app))
    e = run_fails(loop, client.users.by_user_id(target.object_id).patch(patch))
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)
    x = explain(rid, "GH-PRIVILEGED-APP-ROLE-MISSING", of=e)
    fix_mentions(x, "User Administrator")
    # A non-privileged property with the same token works (msgraph-sdk-powershell#1382).
    _ok(loop, client.users.by_user_id(target.object_id).patch(User(display_name="Scenario renamed")))
    assert admin.get_user(target.object_id).display_name == "Scenario renamed"

    # The fix: User Administrator for the app's service principal (roleManagement), then retry.
    admin.assign_role_to_principal(app.sp_id, USER_ADMINISTRATOR)
    client = sdk(app_only(authority, app))
    _ok(loop, client.users.by_user_id(target.object_id).patch(patch))
    target.password = new_password
    signed_in = ropc(authority, tenant.apps.public, target, ["User.Read"])
    assert "access_token" in signed_in, f"the new password does not sign in: {signed_in}"

    # resetPassword has no application permission at all, role or not.
    e = run_fails(loop, client.users.by_user_id(target.object_id).authentication.methods
                  .by_authentication_method_id(PASSWORD_METHOD_ID).reset_password
                  .post(ResetPasswordPostRequestBody(new_password=f"Rp-{uuid.uuid4().hex[:10]}!9a")))
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)
    x = explain(rid, "GH-PRIVILEGED-DELEGATED-ONLY", of=e)
    fix_mentions(x, "UserAuthenticationMethod.ReadWrite.All", "delegated")

    # The fix: a signed-in administrator (delegated token) with UserAuthenticationMethod.ReadWrite.All.
    tool = admin.new_app("Helpdesk tool", scopes=["User.Read", "UserAuthenticationMethod.ReadWrite.All", "openid",
                                                  "profile", "offline_access"], public_client=True)
    admin.grant_delegated(tool, SIGN_IN + " UserAuthenticationMethod.ReadWrite.All")
    r = ropc(authority, tool, demo_user(tenant, "admin"), ["UserAuthenticationMethod.ReadWrite.All"])
    assert "access_token" in r, r
    _ok(loop, sdk(r, ["UserAuthenticationMethod.ReadWrite.All"]).users.by_user_id(target.object_id)
        .authentication.methods.by_authentication_method_id(PASSWORD_METHOD_ID).reset_password
        .post(ResetPasswordPostRequestBody(new_password=f"Rp-{uuid.uuid4().hex[:10]}!9a")))


def test_4_change_password_of_another_user(admin, authority, tenant, explain, sdk, loop):
    from msgraph.generated.users.item.change_password.change_password_post_request_body import \
        ChangePasswordPostRequestBody
    target = admin.new_user("cptarget")
    caller = admin.new_user("cpcaller")
    app = admin.new_app("Change password", scopes=["User.Read", "User-PasswordProfile.ReadWrite.All", "openid",
                                                   "profile", "offline_access"], public_client=True)
    admin.grant_delegated(app, SIGN_IN + " User-PasswordProfile.ReadWrite.All")
    r = ropc(authority, app, caller, ["User-PasswordProfile.ReadWrite.All"])
    assert "access_token" in r, r
    client = sdk(r, ["User-PasswordProfile.ReadWrite.All"])
    body = ChangePasswordPostRequestBody(current_password=target.password,
                                         new_password=f"Cp-{uuid.uuid4().hex[:10]}!9a")
    e = run_fails(loop, client.users.by_user_id(target.object_id).change_password.post(body))
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", "Access to change password operation is denied.")
    x = explain(rid, "GH-PRIVILEGED-CHANGE-PASSWORD-OTHER", of=e)
    fix_mentions(x, "/me/changePassword")
    # Changing one's own password through /me works.
    own = ChangePasswordPostRequestBody(current_password=caller.password,
                                        new_password=f"Cp-{uuid.uuid4().hex[:10]}!9a")
    _ok(loop, client.me.change_password.post(own))
    caller.password = own.new_password
    assert "access_token" in ropc(authority, app, caller, ["User.Read"])


# ----------------------------------------------------------------------------------------------
# 5. User access: role, licence
# ----------------------------------------------------------------------------------------------

def test_5a_user_lacking_a_directory_role(admin, authority, tenant, explain, sdk, loop):
    from msgraph.generated.models.user import User
    target = admin.new_user("roletarget")
    regular = admin.new_user("regular")
    app = admin.new_app("User admin tool", scopes=["User.Read", "User.ReadWrite.All", "openid", "profile",
                                                   "offline_access"], public_client=True)
    admin.grant_delegated(app, SIGN_IN + " User.ReadWrite.All")
    disable = User(account_enabled=False)

    r = ropc(authority, app, regular, ["User.ReadWrite.All"])
    assert "access_token" in r, r
    assert "User.ReadWrite.All" in claims_of(r)["scp"].split()
    e = run_fails(loop, sdk(r, ["User.ReadWrite.All"]).users.by_user_id(target.object_id).patch(disable))
    rid = assert_graph_error(e, 403, "Authorization_RequestDenied", INSUFFICIENT)
    x = explain(rid, "GH-USER-ROLE-MISSING", of=e)
    fix_mentions(x, "User Administrator")
    assert admin.get_user(target.object_id).account_enabled is True

    # The demo's User Administrator succeeds with the same app and scope.
    uma = ropc(authority, app, demo_user(tenant, "user_admin"), ["User.ReadWrite.All"])
    assert "access_token" in uma, uma
    _ok(loop, sdk(uma, ["User.ReadWrite.All"]).users.by_user_id(target.object_id).patch(disable))
    assert admin.get_user(target.object_id).account_enabled is False

    # The fix for the regular user: User Administrator through /directoryRoles/{..}/members/$ref, new token.
    admin.add_directory_role_member(regular.object_id, USER_ADMINISTRATOR)
    r = ropc(authority, app, regular, ["User.ReadWrite.All"])
    _ok(loop, sdk(r, ["User.ReadWrite.All"]).users.by_user_id(target.object_id).patch(User(account_enabled=True)))
    assert admin.get_user(target.object_id).account_enabled is True


def test_5b_unlicensed_user_mailbox(admin, authority, tenant, explain, sdk, loop):
    user = admin.new_user("nolicence")
    app = admin.new_app("Mail reader", scopes=["User.Read", "Mail.Read", "openid", "profile", "offline_access"],
                        public_client=True)
    admin.grant_delegated(app, SIGN_IN + " Mail.Read")
    r = ropc(authority, app, user, ["Mail.Read"])
    assert "access_token" in r, r
    client = sdk(r, ["Mail.Read"])
    e = run_fails(loop, client.me.messages.get())
    rid = assert_graph_error(e, 404, "MailboxNotEnabledForRESTAPI",
                             "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
    x = explain(rid, "GH-USER-UNLICENSED", of=e)
    fix_mentions(x, "assignLicense")

    # The fix: a licence with an Exchange plan (assignLicense with the SKU from /subscribedSkus).
    admin.assign_licence(user)
    msgs = _ok(loop, client.me.messages.get())
    assert msgs is not None and msgs.value is not None


# ----------------------------------------------------------------------------------------------
# 6. Wrong resource: Azure AD Graph token at Microsoft Graph, and the reverse
# ----------------------------------------------------------------------------------------------

def test_6_azure_ad_graph_token_at_microsoft_graph(admin, authority, tenant, explain, sdk, loop):
    app = admin.new_app("Wrong resource", roles=["User.Read.All"])
    admin.grant_app_role(app, "User.Read.All")
    aad = app_only(authority, app, AAD_GRAPH_DEFAULT)
    assert claims_of(aad)["aud"] in ("https://graph.windows.net", "00000002-0000-0000-c000-000000000000"), \
        claims_of(aad)
    e = run_fails(loop, sdk(aad).users.get())
    rid = assert_graph_error(e, 401, "InvalidAuthenticationToken",
                             "Access token validation failure. Invalid audience.")
    x = explain(rid, "GH-AUD-WRONG-RESOURCE", of=e)
    fix_mentions(x, GRAPH_DEFAULT)
    users = _ok(loop, sdk(app_only(authority, app)).users.get())
    assert users.value


def test_6_microsoft_graph_token_at_azure_ad_graph(admin, authority, tenant, base, tid, explain):
    """No msgraph-sdk for Azure AD Graph: the call is a plain HTTP request, as ADAL-era clients made it."""
    app = admin.new_app("Wrong resource reverse", roles=["User.Read.All"])
    admin.grant_app_role(app, "User.Read.All")
    tok = app_only(authority, app)
    r = requests.get(f"{base}/aadgraph/{tid}/users?api-version=1.6",
                     headers={"Authorization": f"Bearer {tok['access_token']}"}, timeout=30)
    assert r.status_code == 401, (r.status_code, dict(r.headers), r.text)
    body = r.json()
    assert body.get("odata.error", {}).get("code") == "Authentication_MissingOrMalformed", body
    rid = r.headers.get("request-id")
    assert rid, dict(r.headers)
    x = explain(rid, "GH-AUD-WRONG-RESOURCE", status=401)
    fix_mentions(x, AAD_GRAPH_DEFAULT)


# ----------------------------------------------------------------------------------------------
# 7. Conditional access: CAE revocation (claims challenge), answered by msgraph-sdk + MSAL
# ----------------------------------------------------------------------------------------------

def test_7_cae_revoked_session_claims_challenge(admin, authority, tenant, explain, sdk, loop):
    import base64
    user = admin.new_user("cae")
    app = admin.new_app("CAE client", scopes=["User.Read", "openid", "profile", "offline_access"],
                        public_client=True)
    admin.grant_delegated(app, SIGN_IN)
    pca = msal.PublicClientApplication(app.client_id, authority=authority, instance_discovery=False,
                                       client_capabilities=["CP1"])
    first = pca.acquire_token_by_username_password(user.username, user.password, scopes=["User.Read"])
    assert "access_token" in first, first
    assert "cp1" in [c.lower() for c in claims_of(first).get("xms_cc", [])], claims_of(first)
    time.sleep(1.1)
    # The admin revokes the user's sessions through Graph.
    assert admin.run(admin.client.users.by_user_id(user.object_id).revoke_sign_in_sessions.post()).value is True
    time.sleep(1.1)

    # A credential that cannot answer the challenge: kiota retries once with the claims, then raises.
    stuck = MsalTokenCredential(first)
    e = run_fails(loop, sdk(stuck, ["User.Read"]).me.get())
    rid = assert_graph_error(e, 401, "InvalidAuthenticationToken",
                             "Continuous access evaluation resulted in claims challenge with result: "
                             "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp")
    www = e.response_headers.get("www-authenticate", "")
    assert 'error="insufficient_claims"' in www and 'claims="' in www, www
    challenge = json.loads(base64.b64decode(www.split('claims="', 1)[1].split('"', 1)[0]))
    assert "nbf" in challenge["access_token"], challenge
    assert [c["claims"] for c in stuck.calls][-1], f"kiota did not pass the claims to the credential: {stuck.calls}"
    x = explain(rid, "GH-CAE-REVOKED", of=e)
    fix_mentions(x, "claims")

    # An app that answers the challenge with MSAL (claims_challenge=...) recovers transparently.
    def reacquire(claims_json):
        return pca.acquire_token_by_username_password(user.username, user.password, scopes=["User.Read"],
                                                      claims_challenge=claims_json)
    answering = MsalTokenCredential(first, reacquire=reacquire)
    me = _ok(loop, sdk(answering, ["User.Read"]).me.get())
    assert me.id == user.object_id
    assert any(c["claims"] for c in answering.calls), answering.calls


# ----------------------------------------------------------------------------------------------
# 0. Token missing / not a token (the guide's "presenting a valid access token")
# ----------------------------------------------------------------------------------------------

def test_0_token_missing_sdk_host_not_allowed(server, demo, explain, loop):
    """msgraph-sdk sends no Authorization header to hosts outside allowed_hosts."""
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as graph_default_options
    from msgraph_core import GraphClientFactory
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider
    cred = MsalTokenCredential({"access_token": "never-sent", "expires_in": 3600})
    # The usual mistake: allowed_hosts left at Graph's own host name.
    auth = AzureIdentityAuthenticationProvider(cred, scopes=[GRAPH_DEFAULT], allowed_hosts=["graph.microsoft.com"])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(server.bundle_path)), http2=True),
        options=graph_default_options)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = demo["graph_base_url"]
    e = run_fails(loop, GraphServiceClient(request_adapter=adapter).users.get())
    rid = assert_graph_error(e, 401, "InvalidAuthenticationToken", "Access token is empty.")
    assert cred.calls == [], cred.calls
    x = explain(rid, "GH-TOKEN-MISSING", of=e)
    fix_mentions(x, "allowed_hosts")


def test_0_not_a_jwt(admin, authority, explain, sdk, loop):
    e = run_fails(loop, sdk({"access_token": "not-a-jwt", "expires_in": 3600}).users.get())
    assert e.error is not None and e.error.message.startswith("IDX14100: JWT is not well formed"), e.error
    rid = assert_graph_error(e, 401, "InvalidAuthenticationToken", e.error.message)
    explain(rid, "GH-TOKEN-MALFORMED", of=e)
