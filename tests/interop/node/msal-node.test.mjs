// @azure/msal-node 7: client credentials, error surfacing, and the auth code flow in real Chromium.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { ConfidentialClientApplication, ServerError, CryptoProvider } from "@azure/msal-node";
import { demo, skipReason, hostPort, GRAPH_DEFAULT, GRAPH_APP_ID, assertV1GraphToken, decodeJwt, launchChromium, chromiumSignIn } from "./lib.mjs";

function cca(clientId, clientSecret) {
  return new ConfidentialClientApplication({
    auth: { clientId, clientSecret, authority: demo.authority, knownAuthorities: [hostPort] },
  });
}

describe("msal-node ConfidentialClientApplication", { skip: skipReason }, () => {
  test("client credentials, then from cache", async () => {
    const d = demo.apps.daemon;
    const app = cca(d.client_id, d.client_secret);
    const r1 = await app.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
    assert.ok(r1.accessToken);
    assert.equal(r1.tokenType, "Bearer");
    assert.equal(r1.fromCache, false);
    assert.ok(r1.expiresOn instanceof Date && r1.expiresOn.getTime() > Date.now() + 300_000, `expiresOn ${r1.expiresOn}`);
    const claims = assertV1GraphToken(r1.accessToken, { appid: d.client_id, aud: "https://graph.microsoft.com", idtyp: "app" });
    assert.ok(claims.roles.includes("User.Read.All"), JSON.stringify(claims.roles));
    const r2 = await app.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
    assert.equal(r2.fromCache, true);
    assert.equal(r2.accessToken, r1.accessToken);
  });

  test("wrong secret -> ServerError invalid_client / 7000215", async () => {
    const app = cca(demo.apps.daemon.client_id, "wrong-secret");
    const correlationId = crypto.randomUUID();
    await assert.rejects(app.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT], correlationId }), (err) => {
      assert.ok(err instanceof ServerError, `${err.name}: ${err.message}`);
      assert.equal(err.errorCode, "invalid_client");
      assert.equal(String(err.errorNo), "7000215");
      assert.equal(err.status, 401);
      assert.match(err.errorMessage, /AADSTS7000215: Invalid client secret provided\./);
      assert.match(err.errorMessage, /Trace ID: [0-9a-f-]{36}/i);
      assert.equal(err.correlationId, correlationId, "correlation_id must echo client-request-id");
      return true;
    });
  });

  test("named scope in client credentials -> invalid_scope 1002012", async () => {
    const d = demo.apps.daemon;
    await assert.rejects(cca(d.client_id, d.client_secret).acquireTokenByClientCredential({ scopes: ["https://graph.microsoft.com/User.Read.All"] }), (err) => {
      assert.equal(err.errorCode, "invalid_scope", `${err.name}: ${err.message}`);
      assert.equal(String(err.errorNo), "1002012");
      return true;
    });
  });
});

describe("msal-node auth code flow in Chromium", { skip: skipReason, timeout: 180_000 }, () => {
  let browser;
  before(async () => { browser = await launchChromium(); });
  after(async () => { await browser?.close(); });

  test("getAuthCodeUrl -> sign in -> acquireTokenByCode", async () => {
    const w = demo.apps.web;
    const user = demo.users.user;
    const app = cca(w.client_id, w.client_secret);
    const pkce = await new CryptoProvider().generatePkceCodes();
    const state = crypto.randomUUID();
    const nonce = crypto.randomUUID();
    const authUrl = await app.getAuthCodeUrl({
      scopes: ["User.Read"], redirectUri: w.redirect_uri, state, nonce,
      codeChallenge: pkce.challenge, codeChallengeMethod: "S256",
    });
    assert.ok(authUrl.startsWith(`${demo.authority}/oauth2/v2.0/authorize?`), authUrl);
    const { callbackUrl, steps } = await chromiumSignIn(browser, authUrl, w.redirect_uri, { username: user.username, password: user.password });
    assert.deepEqual(steps.slice(0, 2), ["username", "password"]);
    assert.ok(!steps.includes("consent"), `no consent expected for User.Read: ${steps}`);
    const cb = new URL(callbackUrl);
    assert.equal(cb.searchParams.get("state"), state);
    const code = cb.searchParams.get("code");
    assert.ok(code, callbackUrl);

    const r = await app.acquireTokenByCode(
      { code, scopes: ["User.Read"], redirectUri: w.redirect_uri, codeVerifier: pkce.verifier, state, nonce },
      { code, state: cb.searchParams.get("state") });
    assert.ok(r.accessToken);
    const claims = assertV1GraphToken(r.accessToken, { appid: w.client_id, aud: GRAPH_APP_ID, idtyp: "user" });
    assert.ok(claims.scp.split(" ").includes("User.Read"), claims.scp);
    assert.equal(claims.oid, user.object_id);
    assert.equal(r.account.homeAccountId, `${user.object_id}.${demo.tenant_id}`);
    assert.equal(r.account.username.toLowerCase(), user.username.toLowerCase());
    assert.equal(r.tenantId, demo.tenant_id);
    assert.equal(r.idTokenClaims.aud, w.client_id);
    assert.equal(r.idTokenClaims.nonce, nonce);
    assert.equal(r.idTokenClaims.iss, `${demo.authority}/v2.0`);
    const { header } = decodeJwt(r.idToken);
    assert.equal(header.alg, "RS256");

    // silent with the cached account, then forced refresh through the refresh token
    const s2 = await app.acquireTokenSilent({ account: r.account, scopes: ["User.Read"], forceRefresh: true });
    assert.equal(s2.fromCache, false);
    assert.notEqual(s2.accessToken, r.accessToken);
    const s1 = await app.acquireTokenSilent({ account: r.account, scopes: ["User.Read"] });
    assert.equal(s1.fromCache, true,
      `acquireTokenSilent({scopes:["User.Read"]}) right after acquireTokenByCode should come from the cache; ` +
      `msal-node cached the token under the response's scope ${JSON.stringify(r.scopes)}, which does not contain "User.Read" as requested`);
  });
});
