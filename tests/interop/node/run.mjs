#!/usr/bin/env node
// Starts `gatehouse serve` on a free port with a fresh data dir, reads `gatehouse demo --json`,
// writes a CA bundle (system bundle + Gatehouse's CA), and runs `node --test` on the *.test.mjs
// files with NODE_EXTRA_CA_CERTS pointing at it (Node reads it only at process start).
// Usage: node tests/interop/node/run.mjs [test files...]   (exit code = the test run's)
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../../..");
const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

function log(msg) { process.stderr.write(`[run.mjs] ${msg}\n`); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function binary() {
  if (process.env.GATEHOUSE_BIN) return process.env.GATEHOUSE_BIN;
  const bin = path.join(repoRoot, "target", "debug", "gatehouse");
  if (!fs.existsSync(bin) || process.env.GATEHOUSE_BUILD === "1") {
    log("cargo build -p gatehouse");
    const r = spawnSync("cargo", ["build", "-p", "gatehouse"], { cwd: repoRoot, stdio: "inherit" });
    if (r.status !== 0 && !fs.existsSync(bin)) throw new Error("cargo build -p gatehouse failed");
  }
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.once("connect", () => { sock.destroy(); resolve(true); });
    sock.once("error", () => resolve(false));
  });
}

function httpsGet(url, ca) {
  return new Promise((resolve) => {
    const req = https.get(url, { ca, timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", (e) => resolve(e.message));
    req.on("timeout", () => { req.destroy(); resolve("timeout"); });
  });
}

async function main() {
  const bin = binary();
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "gatehouse-node-it-"));
  const dataDir = path.join(work, "data");
  const logPath = path.join(work, "server.log");
  const logFd = fs.openSync(logPath, "a");
  const tail = () => { try { return fs.readFileSync(logPath, "utf8").split("\n").slice(-60).join("\n"); } catch { return ""; } };

  log(`starting ${bin} serve --data-dir ${dataDir} --listen ${listen}`);
  const server = spawn(bin, ["serve", "--data-dir", dataDir, "--listen", listen],
    { stdio: ["ignore", logFd, logFd], env: { RUST_LOG: "info", ...process.env }, cwd: work });
  let serverExited = null;
  server.on("exit", (code, sig) => { serverExited = `${code ?? sig}`; });

  const stopServer = async () => {
    if (serverExited !== null) return;
    try { process.kill(server.pid, "SIGTERM"); } catch { return; }
    for (let i = 0; i < 150 && serverExited === null; i++) await sleep(100);
    if (serverExited === null) { try { process.kill(server.pid, "SIGKILL"); } catch { /* gone */ } }
  };
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, async () => { await stopServer(); process.exit(130); });

  let exitCode = 1;
  try {
    const deadline = Date.now() + 120000;
    const caPath = path.join(dataDir, "tls", "ca.pem");
    while (!(fs.existsSync(caPath) && (await portOpen(port)))) {
      if (serverExited !== null) throw new Error(`gatehouse exited (${serverExited}):\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`gatehouse did not listen on ${listen}:\n${tail()}`);
      await sleep(200);
    }
    const demoRun = spawnSync(bin, ["demo", "--json", "--data-dir", dataDir, "--listen", listen], { encoding: "utf8", cwd: work });
    if (demoRun.status !== 0) throw new Error(`gatehouse demo --json failed (${demoRun.status}): ${demoRun.stderr}\n${demoRun.stdout}`);
    const out = demoRun.stdout.trim();
    const demo = JSON.parse(out.slice(out.indexOf("{")));
    const ca = fs.readFileSync(demo.ca_cert || caPath);
    const url = `https://localhost:${port}/${demo.tenant_id}/v2.0/.well-known/openid-configuration`;
    for (;;) {
      const st = await httpsGet(url, ca);
      if (st === 200) break;
      if (serverExited !== null) throw new Error(`gatehouse exited (${serverExited}):\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`not ready: ${url} -> ${st}\n${tail()}`);
      await sleep(300);
    }
    const bundle = path.join(work, "ca-bundle.pem");
    fs.writeFileSync(bundle, Buffer.concat([fs.readFileSync(SYSTEM_BUNDLE), Buffer.from("\n"), ca]));
    const demoPath = path.join(work, "demo.json");
    fs.writeFileSync(demoPath, JSON.stringify(demo, null, 2));
    log(`gatehouse ready at https://localhost:${port} (log: ${logPath})`);

    let files = process.argv.slice(2);
    if (files.length === 0) files = fs.readdirSync(here).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => path.join(here, f));
    const env = {
      ...process.env,
      NODE_EXTRA_CA_CERTS: bundle, SSL_CERT_FILE: bundle, REQUESTS_CA_BUNDLE: bundle, CURL_CA_BUNDLE: bundle,
      GATEHOUSE_DEMO_JSON: demoPath, GATEHOUSE_BASE: `https://localhost:${port}`, GATEHOUSE_SERVER_LOG: logPath,
    };
    const child = spawn(process.execPath, ["--test", "--test-concurrency=1", ...files], { stdio: "inherit", env, cwd: repoRoot });
    exitCode = await new Promise((resolve) => child.on("exit", (code, sig) => resolve(code ?? (sig ? 1 : 0))));
  } catch (e) {
    log(`ERROR: ${e.stack || e}`);
    exitCode = 1;
  } finally {
    await stopServer();
    fs.closeSync(logFd);
  }
  process.exit(exitCode);
}

main();
