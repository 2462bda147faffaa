// openid-client 6 (panva): discovery, client credentials (post / basic), auth code + PKCE with id_token
// signature validation against the JWKS, refresh.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import * as client from "openid-client";
import { demo, skipReason, base, GRAPH_DEFAULT, GRAPH_APP_ID, assertV1GraphToken, Browser, explain } from "./lib.mjs";

const issuerUrl = () => new URL(`${demo.authority}/v2.0`);

describe("openid-client", { skip: skipReason }, () => {
  test("discovery issuer equals {authority}/v2.0", async () => {
    const cfg = await explain(client.discovery(issuerUrl(), demo.apps.web.client_id, demo.apps.web.client_secret));
    const md = cfg.serverMetadata();
    assert.equal(md.issuer, `${demo.authority}/v2.0`);
    assert.ok(md.jwks_uri && md.token_endpoint && md.authorization_endpoint);
  });

  test("discovery via the domain name gives the GUID issuer (so openid-client refuses it)", async () => {
    await assert.rejects(
      client.discovery(new URL(`${base}/${demo.domain}/v2.0`), demo.apps.web.client_id, demo.apps.web.client_secret),
      (err) => { assert.equal(err.code, "OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED", `${err.code}: ${err.message}`); return true; },
    );
  });

  test("client credentials, client_secret_post", async () => {
    const d = demo.apps.daemon;
    const cfg = await client.discovery(issuerUrl(), d.client_id, d.client_secret);
    const t = await explain(client.clientCredentialsGrant(cfg, { scope: GRAPH_DEFAULT }));
    assert.equal(t.token_type, "bearer");
    assert.ok(t.expiresIn() > 300);
    const claims = assertV1GraphToken(t.access_token, { appid: d.client_id, aud: "https://graph.microsoft.com", idtyp: "app" });
    assert.ok(claims.roles.includes("User.Read.All"));
  });

  test("client credentials, client_secret_basic", async () => {
    const d = demo.apps.daemon;
    const cfg = await client.discovery(issuerUrl(), d.client_id, undefined, client.ClientSecretBasic(d.client_secret));
    const t = await explain(client.clientCredentialsGrant(cfg, { scope: GRAPH_DEFAULT }));
    assertV1GraphToken(t.access_token, { appid: d.client_id, aud: "https://graph.microsoft.com", idtyp: "app" });
  });

  test("client credentials error -> ResponseBodyError with the Entra body", async () => {
    const d = demo.apps.daemon;
    const cfg = await client.discovery(issuerUrl(), d.client_id, "wrong-secret");
    await assert.rejects(client.clientCredentialsGrant(cfg, { scope: GRAPH_DEFAULT }), (err) => {
      assert.equal(err.code, "OAUTH_RESPONSE_BODY_ERROR", `${err.code}: ${err.message}`);
      assert.equal(err.error, "invalid_client");
      assert.equal(err.status, 401);
      assert.deepEqual(err.cause.error_codes, [7000215]);
      assert.ok(err.response.headers.get("x-gatehouse-diagnosis"), "x-gatehouse-diagnosis header");
      return true;
    });
  });

  test("authorization code + PKCE + nonce, id_token signature checked against the JWKS, then refresh", async () => {
    const w = demo.apps.web;
    const user = demo.users.user;
    const cfg = await client.discovery(issuerUrl(), w.client_id, w.client_secret);
    client.enableNonRepudiationChecks(cfg); // validate the id_token's JWS signature with jwks_uri
    const verifier = client.randomPKCECodeVerifier();
    const challenge = await client.calculatePKCECodeChallenge(verifier);
    const nonce = client.randomNonce();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: w.redirect_uri, scope: "openid profile offline_access User.Read",
      code_challenge: challenge, code_challenge_method: "S256", nonce, state,
    });
    const b = new Browser(base, [w.redirect_uri]);
    const o = await b.signIn(url.href, { username: user.username, password: user.password });
    assert.equal(o.kind, "redirect", `${o.kind} ${o.steps} ${o.page?.text?.slice(0, 1500)}`);
    assert.ok(!o.steps.includes("consent"), `${o.steps}`);

    const tokens = await explain(client.authorizationCodeGrant(cfg, new URL(o.url), {
      pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true,
    }));
    const claims = tokens.claims();
    assert.equal(claims.iss, `${demo.authority}/v2.0`);
    assert.equal(claims.aud, w.client_id);
    assert.equal(claims.tid, demo.tenant_id);
    assert.equal(claims.oid, user.object_id);
    assert.equal(claims.nonce, nonce);
    assert.equal(String(claims.preferred_username).toLowerCase(), user.username.toLowerCase());
    const at = assertV1GraphToken(tokens.access_token, { appid: w.client_id, aud: GRAPH_APP_ID, idtyp: "user" });
    assert.ok(at.scp.split(" ").includes("User.Read"));
    assert.ok(tokens.refresh_token, "refresh_token with offline_access");
    assert.ok(tokens.scope.split(" ").some((s) => s.endsWith("User.Read")), tokens.scope);

    const refreshed = await explain(client.refreshTokenGrant(cfg, tokens.refresh_token, { scope: "openid profile offline_access User.Read" }));
    assert.ok(refreshed.access_token && refreshed.access_token !== tokens.access_token);
    if (refreshed.id_token) assert.equal(refreshed.claims().oid, user.object_id);
  });

  test("authorization code reused -> invalid_grant 54005", async () => {
    const w = demo.apps.web;
    const user = demo.users.user;
    const cfg = await client.discovery(issuerUrl(), w.client_id, w.client_secret);
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: w.redirect_uri, scope: "openid User.Read", state: "st",
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    const o = await new Browser(base, [w.redirect_uri]).signIn(url.href, { username: user.username, password: user.password });
    assert.equal(o.kind, "redirect", `${o.steps}`);
    await explain(client.authorizationCodeGrant(cfg, new URL(o.url), { pkceCodeVerifier: verifier, expectedState: "st" }));
    await assert.rejects(client.authorizationCodeGrant(cfg, new URL(o.url), { pkceCodeVerifier: verifier, expectedState: "st" }), (err) => {
      assert.equal(err.error, "invalid_grant", `${err.code}: ${err.message}`);
      assert.deepEqual(err.cause.error_codes, [54005]);
      return true;
    });
  });
});
