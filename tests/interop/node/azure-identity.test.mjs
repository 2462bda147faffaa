// @azure/identity 4 (JS): ClientSecretCredential with authorityHost + disableInstanceDiscovery.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { ClientSecretCredential } from "@azure/identity";
import { demo, skipReason, GRAPH_DEFAULT, assertV1GraphToken } from "./lib.mjs";

describe("@azure/identity", { skip: skipReason }, () => {
  test("ClientSecretCredential.getToken", async () => {
    const d = demo.apps.daemon;
    const cred = new ClientSecretCredential(demo.tenant_id, d.client_id, d.client_secret,
      { authorityHost: demo.authority_host, disableInstanceDiscovery: true });
    const tok = await cred.getToken(GRAPH_DEFAULT);
    assert.ok(tok.token);
    assert.ok(tok.expiresOnTimestamp > Date.now() + 300_000, `${tok.expiresOnTimestamp}`);
    const claims = assertV1GraphToken(tok.token, { appid: d.client_id, aud: "https://graph.microsoft.com", idtyp: "app" });
    assert.ok(claims.roles.includes("User.Read.All"));
  });

  test("wrong secret -> AuthenticationError mentioning AADSTS7000215", async () => {
    const cred = new ClientSecretCredential(demo.tenant_id, demo.apps.daemon.client_id, "wrong-secret",
      { authorityHost: demo.authority_host, disableInstanceDiscovery: true });
    await assert.rejects(cred.getToken(GRAPH_DEFAULT), (err) => {
      assert.match(err.message, /AADSTS7000215/, `${err.name}: ${err.message}`);
      return true;
    });
  });
});
