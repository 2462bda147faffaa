// Shared helpers for the Node interop tests. The server is started by run.mjs, which passes
// GATEHOUSE_DEMO_JSON (path of `gatehouse demo --json` output) and sets NODE_EXTRA_CA_CERTS.
import fs from "node:fs";
import assert from "node:assert/strict";

export const demoPath = process.env.GATEHOUSE_DEMO_JSON;
export const skipReason = demoPath ? false : "GATEHOUSE_DEMO_JSON is not set: run the suite with `node tests/interop/node/run.mjs`";
export const demo = demoPath ? JSON.parse(fs.readFileSync(demoPath, "utf8")) : null;
export const base = demo ? demo.authority_host : "";
export const hostPort = demo ? new URL(demo.authority_host).host : "";
export const GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000";
export const GRAPH_DEFAULT = "https://graph.microsoft.com/.default";

export const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

export function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

export function decodeJwt(token) {
  const parts = token.split(".");
  assert.equal(parts.length, 3, `not a JWS: ${token.slice(0, 30)}`);
  return { header: b64urlJson(parts[0]), claims: b64urlJson(parts[1]) };
}

export function assertV1GraphToken(token, { appid, aud, idtyp }) {
  const { header, claims } = decodeJwt(token);
  const tid = demo.tenant_id;
  assert.equal(header.alg, "RS256");
  assert.ok(header.kid, "kid");
  assert.equal(claims.iss, `https://sts.windows.net/${tid}/`);
  assert.equal(claims.aud, aud);
  assert.equal(claims.ver, "1.0");
  assert.equal(claims.appid, appid);
  assert.equal(claims.tid, tid);
  assert.equal(claims.idtyp, idtyp);
  assert.match(claims.oid, /^[0-9a-f-]{36}$/i);
  assert.ok(claims.exp > Date.now() / 1000);
  if (idtyp === "app") {
    assert.ok(Array.isArray(claims.roles), "roles array");
    assert.equal(claims.scp, undefined);
  } else {
    assert.equal(typeof claims.scp, "string");
  }
  return claims;
}

// Re-throws client errors with the server's response body in the message, so failures tell the lead why.
export async function explain(promise) {
  try {
    return await promise;
  } catch (e) {
    const extra = e?.cause && typeof e.cause === "object" ? JSON.stringify(e.cause) : e?.cause ? String(e.cause) : "";
    if (extra && !String(e.message).includes(extra)) e.message = `${e.message} -- server said: ${extra}`;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTML form parser and a fetch-based, cookie-keeping browser (no JavaScript).
// ---------------------------------------------------------------------------------------------
const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", "#39": "'", nbsp: "\u00a0" };
function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+\d*);/gi, (m, e) => {
    if (e[0] === "#") return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

function parseAttrs(src) {
  const attrs = {};
  const re = /([^\s=\/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  let m;
  while ((m = re.exec(src))) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return attrs;
}

export function parseForms(html) {
  const cleaned = html.replace(/<script\b[\s\S]*?<\/script>/gi, "").replace(/<style\b[\s\S]*?<\/style>/gi, "").replace(/<!--[\s\S]*?-->/g, "");
  const forms = [];
  const ids = new Set();
  let current = null;
  const re = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[^\s=>\/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*\/?>/g;
  let m;
  let textarea = null;
  let lastIndex = 0;
  while ((m = re.exec(cleaned))) {
    const closing = m[1] === "/";
    const tag = m[2].toLowerCase();
    const attrs = closing ? {} : parseAttrs(m[3] || "");
    if (textarea && closing && tag === "textarea") {
      textarea.value = decodeEntities(cleaned.slice(lastIndex, m.index));
      textarea = null;
    }
    lastIndex = re.lastIndex;
    if (!closing && attrs.id) ids.add(attrs.id);
    if (tag === "form") {
      if (closing) current = null;
      else {
        current = { action: attrs.action ?? null, method: (attrs.method || "get").toLowerCase(), id: attrs.id, controls: [] };
        forms.push(current);
      }
      continue;
    }
    if (!current || closing) continue;
    if (tag === "input") {
      const type = (attrs.type || "text").toLowerCase();
      current.controls.push({ tag, type, name: attrs.name, id: attrs.id, checked: "checked" in attrs,
        value: attrs.value ?? (type === "checkbox" || type === "radio" ? "on" : "") });
    } else if (tag === "button") {
      current.controls.push({ tag, type: (attrs.type || "submit").toLowerCase(), name: attrs.name, id: attrs.id, value: attrs.value ?? "" });
    } else if (tag === "textarea") {
      textarea = { tag, type: "textarea", name: attrs.name, id: attrs.id, value: "" };
      current.controls.push(textarea);
    }
  }
  return { forms, ids };
}

export class Browser {
  constructor(serverBase, stopPrefixes = []) {
    this.base = serverBase.replace(/\/$/, "");
    this.stopPrefixes = stopPrefixes;
    this.cookies = new Map();
  }
  isStop(url) {
    return this.stopPrefixes.some((p) => url.startsWith(p)) || !url.startsWith(this.base);
  }
  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  storeCookies(res) {
    for (const sc of res.headers.getSetCookie?.() ?? []) {
      const [pair, ...attrs] = sc.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires\s*=/i.test(a) && Date.parse(a.split("=")[1]) < Date.now());
      if (expired || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  // Follows redirects while they stay on the server; stops (without following) at the first one that leaves it.
  async open(url, { method = "GET", body } = {}) {
    for (let hops = 0; hops < 10; hops++) {
      const headers = { "user-agent": "Mozilla/5.0 gatehouse-interop-node" };
      const ck = this.cookieHeader();
      if (ck) headers.cookie = ck;
      if (body) headers["content-type"] = "application/x-www-form-urlencoded";
      const res = await fetch(url, { method, body, headers, redirect: "manual" });
      this.storeCookies(res);
      const loc = res.headers.get("location");
      if ([301, 302, 303, 307, 308].includes(res.status) && loc) {
        const next = new URL(loc, url).href;
        await res.arrayBuffer();
        if (this.isStop(next)) return { url: next, res, redirectStatus: res.status };
        if (res.status !== 307 && res.status !== 308) { method = "GET"; body = undefined; }
        url = next;
        continue;
      }
      const text = await res.text();
      return { url, res, text, redirectStatus: null };
    }
    throw new Error("too many redirects");
  }
  async submit(page, fill, click) {
    const posts = page.forms.filter((f) => f.method === "post");
    assert.equal(posts.length, 1, `expected exactly one <form method=post> on ${page.url}:\n${page.text.slice(0, 1500)}`);
    const form = posts[0];
    const data = new URLSearchParams();
    let clicked = null;
    for (const c of form.controls) {
      if (c.id && c.id === click) { clicked = c; continue; }
      if (["submit", "button", "image", "reset"].includes(c.type) || c.tag === "button") continue;
      if (!c.name) continue;
      if (c.type === "checkbox" || c.type === "radio") {
        const on = c.id in fill ? !!fill[c.id] : c.checked;
        if (on) data.append(c.name, c.value || "on");
        continue;
      }
      data.append(c.name, c.id && c.id in fill ? fill[c.id] : c.value);
    }
    for (const id of Object.keys(fill)) {
      assert.ok(form.controls.some((c) => c.id === id), `input #${id} not in the form on ${page.url}`);
    }
    if (click) {
      assert.ok(clicked, `button #${click} not in the form on ${page.url}:\n${page.text.slice(0, 1500)}`);
      if (clicked.name) data.append(clicked.name, clicked.value);
    }
    const action = new URL(form.action || page.url, page.url).href;
    return this.open(action, { method: "POST", body: data.toString() });
  }
  // Walks the Entra-like pages; returns {kind: "redirect"|"form_post"|"page", steps, url, params, page}.
  async signIn(startUrl, { username, password, kmsi = true, consent = "accept", otc } = {}) {
    let cur = await this.open(startUrl);
    const steps = [];
    for (let i = 0; i < 12; i++) {
      if (cur.redirectStatus) {
        const u = new URL(cur.url);
        const params = Object.fromEntries(u.searchParams);
        if (u.hash) Object.assign(params, Object.fromEntries(new URLSearchParams(u.hash.slice(1))));
        return { kind: "redirect", steps, url: cur.url, params, status: cur.redirectStatus };
      }
      const { forms, ids } = parseForms(cur.text);
      const page = { url: cur.url, status: cur.res.status, text: cur.text, forms, ids };
      const posts = forms.filter((f) => f.method === "post");
      if (posts.length === 1 && posts[0].action && this.isStop(new URL(posts[0].action, cur.url).href)) {
        const params = Object.fromEntries(posts[0].controls.filter((c) => c.name && c.type === "hidden").map((c) => [c.name, c.value]));
        return { kind: "form_post", steps, url: new URL(posts[0].action, cur.url).href, params };
      }
      if ((ids.has("i0118") && steps.includes("password")) || (ids.has("i0116") && !ids.has("i0118") && steps.includes("username"))) {
        return { kind: "page", steps, page };
      }
      if (ids.has("otc") && otc && !steps.includes("device_code")) {
        steps.push("device_code");
        cur = await this.submit(page, { otc }, "idSIButton9");
      } else if (ids.has("i0118") && password != null) {
        steps.push("password");
        cur = await this.submit(page, { i0118: password }, "idSIButton9");
      } else if (ids.has("i0116") && username != null) {
        steps.push("username");
        cur = await this.submit(page, { i0116: username }, "idSIButton9");
      } else if (ids.has("KmsiCheckboxField")) {
        steps.push("kmsi");
        cur = await this.submit(page, {}, kmsi ? "idSIButton9" : "idBtn_Back");
      } else if (ids.has("idBtn_Accept")) {
        steps.push("consent");
        if (!consent) return { kind: "page", steps, page };
        cur = await this.submit(page, {}, consent === "accept" ? "idBtn_Accept" : "idBtn_Back");
      } else if (steps.includes("device_code") && ids.has("idSIButton9") && !steps.includes("device_confirm")) {
        steps.push("device_confirm");
        cur = await this.submit(page, {}, "idSIButton9");
      } else {
        return { kind: "page", steps, page };
      }
    }
    throw new Error(`sign-in did not finish: ${steps}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Real Chromium (Debian's /usr/bin/chromium) through playwright-core.
// ---------------------------------------------------------------------------------------------
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium", args: CHROMIUM_ARGS, timeout: 60000 });
}

// Drives the sign-in pages in a real browser until the browser is sent to redirectUri.
// Returns {callbackUrl, steps}. The callback is intercepted, no listener is needed on port 3000.
export async function chromiumSignIn(browser, authUrl, redirectUri, { username, password, consent = "accept" }) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  let callbackUrl = null;
  let resolveCb;
  const gotCallback = new Promise((r) => { resolveCb = r; });
  const onCallback = (url) => { if (!callbackUrl && url.startsWith(redirectUri)) { callbackUrl = url; resolveCb(url); } };
  const origin = new URL(redirectUri).origin;
  await context.route(`${origin}/**`, (route) => {
    onCallback(route.request().url());
    return route.fulfill({ status: 200, contentType: "text/html", body: "<html><body>callback captured</body></html>" });
  });
  page.on("request", (req) => onCallback(req.url()));
  const steps = [];
  try {
    await page.goto(authUrl, { waitUntil: "domcontentloaded" }).catch((e) => { if (!callbackUrl) throw e; });
    for (let i = 0; i < 12 && !callbackUrl; i++) {
      const which = await Promise.race([
        gotCallback.then(() => "callback"),
        page.waitForSelector("#i0118, #i0116, #KmsiCheckboxField, #idBtn_Accept", { timeout: 20000 })
          .then(async () => {
            for (const id of ["i0118", "i0116", "KmsiCheckboxField", "idBtn_Accept"]) {
              if (await page.$(`#${id}`)) return id;
            }
            return null;
          })
          .catch(async (e) => { if (callbackUrl) return "callback"; throw new Error(`no sign-in element on ${page.url()}: ${e.message}\n${(await page.content()).slice(0, 1500)}`); }),
      ]);
      if (which === "callback") break;
      let fillId = null, value = null, button = "idSIButton9";
      if (which === "i0118") { steps.push("password"); fillId = "i0118"; value = password; }
      else if (which === "i0116") { steps.push("username"); fillId = "i0116"; value = username; }
      else if (which === "KmsiCheckboxField") { steps.push("kmsi"); }
      else if (which === "idBtn_Accept") { steps.push("consent"); button = consent === "accept" ? "idBtn_Accept" : "idBtn_Back"; }
      if (fillId) await page.fill(`#${fillId}`, value);
      const nav = page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 20000 }).catch(() => null);
      await page.click(`#${button}`);
      await Promise.race([nav, gotCallback]);
    }
    if (!callbackUrl) throw new Error(`never redirected to ${redirectUri}; steps=${steps}; at ${page.url()}\n${(await page.content()).slice(0, 1500)}`);
    return { callbackUrl, steps };
  } finally {
    await context.close();
  }
}
