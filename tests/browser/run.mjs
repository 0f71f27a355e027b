// The service in a real browser: Debian's chromium, headless, driven by playwright-core.
//
//   node tests/browser/run.mjs            # after `cargo build -p candidates-server`
//
// Starts the real candidate-server (memory store, an API key file, CORS for one origin) and two
// static pages on other 127.0.0.1 ports (tests/browser/page/), then:
//   1. the page on the allowed origin calls REST with fetch (GET, POST, DELETE with custom headers,
//      so the browser sends preflights) and reads statuses, bodies and exposed headers;
//   2. the same page on an origin not allowed: every call fails (TypeError) and nothing is written;
//   3. gRPC-Web from that page, binary and text, GetCandidate and PutCandidate, hand-framed;
//   4. the API explorer at /docs loads with no console error, page error or CSP violation, lists
//      the operations of /openapi.json, and "Try it out" on GET /candidate/{name} shows the
//      candidate; a screenshot is saved (target/browser-artifacts/explorer.png).
// Everything talks to 127.0.0.1 only and every wait is bounded; the whole run stops itself after
// TOTAL_MS. Environment: BIN (default target/debug/candidate-server), CHROMIUM (/usr/bin/chromium),
// ARTIFACTS (target/browser-artifacts).
import { spawn } from "node:child_process";
import { randomBytes, createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const BIN = path.resolve(ROOT, process.env.BIN ?? "target/debug/candidate-server");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = path.resolve(ROOT, process.env.ARTIFACTS ?? "target/browser-artifacts");
const TOTAL_MS = 110_000;
const CASE_MS = 30_000;
const WAIT_MS = 15_000;

// --- a tiny runner -----------------------------------------------------------------------------

const outcomes = [];

function assert(condition, message, detail) {
  if (!condition) throw new Error(message + (detail === undefined ? "" : ": " + JSON.stringify(detail)));
}

function equal(actual, expected, message) {
  const same = JSON.stringify(actual) === JSON.stringify(expected);
  assert(same, `${message}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function run(name, body) {
  const started = Date.now();
  try {
    await withTimeout(body(), CASE_MS, name);
    outcomes.push({ name, status: "passed" });
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    outcomes.push({ name, status: "failed" });
    console.log(`FAIL - ${name}: ${error.stack ?? error}`);
  }
}

// --- what the test starts ----------------------------------------------------------------------

const cleanups = [];
async function cleanUp() {
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch (_) {}
  }
}

/// A static server for tests/browser/page/ on a free 127.0.0.1 port; resolves to its origin.
function servePage() {
  const files = { "/": ["index.html", "text/html; charset=utf-8"], "/page.js": ["page.js", "text/javascript"] };
  const server = http.createServer((request, response) => {
    const file = files[new URL(request.url, "http://x").pathname];
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": file[1], "cache-control": "no-store" });
    response.end(readFileSync(path.join(HERE, "page", file[0])));
  });
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

/// A key in the server's format (docs/security.md): `cand_` and 43 URL-safe base64 characters; the
/// file holds its SHA-256 digest, its scopes and a name.
function mintKey(dir) {
  const key = "cand_" + randomBytes(32).toString("base64url");
  const digest = createHash("sha256").update(key).digest("hex");
  const file = path.join(dir, "keys");
  writeFileSync(file, `${digest} candidates.read,candidates.write browser-test\n`, { mode: 0o600 });
  return { key, file };
}

/// Starts the server on port 0 and learns its REST address from its JSON "listening" line.
function startServer(dir, args) {
  const child = spawn(
    BIN,
    [
      "--http-addr", "127.0.0.1:0",
      "--grpc-addr", "127.0.0.1:0",
      "--store", "memory",
      "--data-dir", path.join(dir, "data"),
      "--log-format", "json",
      "--drain-period", "0s",
      "--shutdown-grace", "2s",
      ...args,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_PROXY: "127.0.0.1", no_proxy: "127.0.0.1" } },
  );
  const log = [];
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    writeFileSync(path.join(ARTIFACTS, "server.log"), log.join("\n") + "\n");
  });
  return withTimeout(
    new Promise((resolve, reject) => {
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on("line", (line) => {
          log.push(line);
          try {
            const entry = JSON.parse(line);
            if (entry.message === "listening") resolve(`http://${entry.http_addr}`);
          } catch (_) {}
        });
      }
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`${BIN} exited (${code}) before listening:\n${log.join("\n")}`)));
    }),
    20_000,
    `starting ${BIN}`,
  );
}

// --- the cases ---------------------------------------------------------------------------------

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), "candidates-browser-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

  const allowed = await servePage();
  const other = await servePage();
  const { key, file } = mintKey(dir);
  // Keys configured: writes need candidates.write, reads stay open (the default policy). Preflight
  // answers are not cached (max-age 0), so each call with custom headers brings its own.
  const api = await startServer(dir, ["--cors-allow-origins", allowed, "--cors-max-age", "0s", "--api-keys-file", file]);
  console.log(`server ${api}; pages on ${allowed} (allowed) and ${other} (not allowed); ${CHROMIUM}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: WAIT_MS,
    args: [
      // No name resolves: the browser reaches 127.0.0.1 and nothing else, even in the background.
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
      // Root (CI, containers) cannot use Chromium's sandbox.
      ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
    ],
  });
  cleanups.push(() => browser.close());
  console.log(`chromium ${browser.version()}`);

  const name = "Ada Lovelace";

  await run("REST from an allowed origin: GET, POST and DELETE with custom headers, after preflights", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
    // The preflights, as the browser reports them (OPTIONS requests it makes before the calls).
    const cdp = await page.context().newCDPSession(page);
    const preflights = [];
    cdp.on("Network.requestWillBeSent", (event) => {
      const headers = Object.fromEntries(Object.entries(event.request.headers).map(([k, v]) => [k.toLowerCase(), v]));
      if (event.request.method === "OPTIONS") preflights.push(headers["access-control-request-method"]);
    });
    await cdp.send("Network.enable");
    await page.goto(allowed + "/");
    const r = await page.evaluate(([api, key, name]) => window.restCalls(api, key, name, "Scratch Pad"), [api, key, name]);
    equal([r.post.status, r.post.body], [200, { CandidateName: name }], "POST");
    equal(r.post.requestId, "browser-post", "POST's x-request-id (an exposed header)");
    equal([r.get.status, r.get.body, r.get.requestId], [200, { CandidateName: name }, "browser-get"], "GET");
    equal(r.postScratch.status, 200, "POST of the scratch candidate");
    equal([r.deleteScratch.status, r.deleteScratch.body], [200, { CandidateName: "Scratch Pad" }], "DELETE");
    equal(r.deleteScratch.requestId, "browser-delete", "DELETE's x-request-id");
    equal([r.getDeleted.status, r.getDeleted.body.code], [404, 5], "GET after DELETE");
    // A refusal is readable too: status and challenge.
    equal(r.deleteWithoutKey.status, 401, "DELETE without a key");
    assert(r.deleteWithoutKey.wwwAuthenticate?.startsWith("Bearer"), "the 401's WWW-Authenticate", r.deleteWithoutKey);
    // A header the server does not allow: the preflight refuses it, the browser never sends the call.
    equal(r.notAllowedHeader.error, "TypeError", "a header outside the allowed list");
    for (const method of ["GET", "POST", "DELETE"]) {
      assert(preflights.includes(method), `the browser sent a preflight for ${method}`, preflights);
    }
    await page.close();
  });

  await run("REST from an origin not allowed: every call fails and nothing is written", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(other + "/");
    const r = await page.evaluate(([api, key]) => window.restCalls(api, key, "Mallory", "Mallory Two"), [api, key]);
    for (const [call, result] of Object.entries(r)) {
      equal(result.error, "TypeError", `${call} from ${other}`);
    }
    // The writes never reached the service: their preflight was refused.
    for (const candidate of ["Mallory", "Mallory Two"]) {
      const response = await fetch(`${api}/candidate/${encodeURIComponent(candidate)}`);
      equal(response.status, 404, `${candidate} was not written`);
    }
    // While the allowed origin still works (the same page, the same server).
    const response = await fetch(`${api}/candidate/${encodeURIComponent(name)}`, { headers: { origin: allowed } });
    equal(response.headers.get("access-control-allow-origin"), allowed, "the allowed origin's answer");
    await page.close();
  });

  await run("gRPC-Web from an allowed origin: GetCandidate and PutCandidate, binary and text", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(allowed + "/");
    const call = (method, candidate, mode, withKey) =>
      page.evaluate(([api, method, candidate, mode, key]) => window.grpcWebCall(api, method, candidate, mode, key), [
        api,
        method,
        candidate,
        mode,
        withKey ? key : null,
      ]);
    for (const mode of ["binary", "text"]) {
      const got = await call("GetCandidate", name, mode, false);
      equal([got.http, got.grpcStatus, got.messages, got.leftover], [200, "0", [name], 0], `${mode} GetCandidate`);
      const type = mode === "text" ? "application/grpc-web-text" : "application/grpc-web";
      assert(got.contentType?.startsWith(type), `${mode} answer's content type`, got.contentType);

      const written = `Grace Hopper (${mode})`;
      const put = await call("PutCandidate", written, mode, true);
      equal([put.http, put.grpcStatus, put.messages], [200, "0", [written]], `${mode} PutCandidate`);
      const rest = await fetch(`${api}/candidate/${encodeURIComponent(written)}`);
      equal(await rest.json(), { CandidateName: written }, `${mode} PutCandidate's candidate over REST`);

      const missing = await call("GetCandidate", "Nobody", mode, false);
      equal([missing.http, missing.grpcStatus, missing.messages], [200, "5", []], `${mode} GetCandidate of nobody`);
      const refused = await call("PutCandidate", "Eve", mode, false);
      equal(refused.grpcStatus, "16", `${mode} PutCandidate without a key (UNAUTHENTICATED)`);
    }
    await page.close();
  });

  await run("the API explorer: no console error, the operations of /openapi.json, Try it out", async () => {
    const document = await (await fetch(`${api}/openapi.json`)).json();
    const declared = Object.entries(document.paths)
      .flatMap(([route, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${route}`))
      .sort();
    equal(
      declared,
      ["DELETE /candidate/{name}", "GET /candidate/{name}", "GET /candidates", "GET /gtg", "POST /candidate/{name}"],
      "the operations /openapi.json declares",
    );

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(WAIT_MS);
    const problems = [];
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") {
        problems.push(`console ${message.type()}: ${message.text()}`);
      }
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    // CSP violations, as the page sees them (also logged to the console by Chromium).
    await page.addInitScript(() => {
      window.__violations = [];
      document.addEventListener("securitypolicyviolation", (e) =>
        window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`),
      );
    });
    const response = await page.goto(`${api}/docs`);
    equal(response.status(), 200, "/docs");
    assert(response.headers()["content-security-policy"]?.includes("script-src 'self'"), "the page's CSP");

    await page.locator(".opblock").nth(4).waitFor();
    const listed = (
      await page
        .locator(".opblock")
        .evaluateAll((blocks) =>
          blocks.map(
            (b) =>
              `${b.querySelector(".opblock-summary-method").textContent.trim()} ${b.querySelector(".opblock-summary-path").getAttribute("data-path")}`,
          ),
        )
    ).sort();
    equal(listed, declared, "the operations the explorer lists");

    // Try it out on GET /candidate/{name} (tryItOutEnabled: the form is editable at once).
    const operation = page.locator("#operations-CandidateService-GetCandidate");
    await operation.locator(".opblock-summary").click();
    const tryIt = operation.locator("button.try-out__btn");
    if ((await tryIt.textContent())?.trim() === "Try it out") await tryIt.click();
    await operation.locator('input[placeholder="name"]').fill(name);
    await operation.locator("button.execute").click();
    const live = operation.locator(".live-responses-table .response");
    await live.first().waitFor();
    const status = (await live.first().locator(".response-col_status").textContent()).trim();
    const body = await live.first().locator(".response-col_description").textContent();
    equal(status, "200", "Try it out's status");
    assert(body.includes('"CandidateName"') && body.includes(name), "Try it out's body shows the candidate", body);
    const url = await operation.locator(".request-url pre").textContent();
    equal(url.trim(), `${api}/candidate/Ada%20Lovelace`, "the request Try it out made (same origin)");

    const violations = await page.evaluate(() => window.__violations);
    equal(violations, [], "CSP violations");
    equal(problems, [], "console errors and warnings, page errors, failed requests");

    const screenshot = path.join(ARTIFACTS, "explorer.png");
    await operation.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);

    // The control: an inline script is refused, and the refusal is seen by both watchers above.
    await page.evaluate(() => {
      const script = document.createElement("script");
      script.textContent = "window.__inline = true";
      document.body.append(script);
    });
    await page.waitForFunction(() => window.__violations.length > 0);
    const control = await page.evaluate(() => [window.__inline === true, window.__violations]);
    assert(!control[0] && control[1][0].startsWith("script-src"), "an inline script is refused", control);
    await page.waitForTimeout(200);
    assert(problems.some((p) => p.includes("Content Security Policy")), "the console shows the refusal", problems);
    await page.close();
  });
}

const watchdog = setTimeout(async () => {
  console.log(`FAIL - the browser tests did not finish within ${TOTAL_MS} ms`);
  await cleanUp();
  process.exit(1);
}, TOTAL_MS);

try {
  await main();
} catch (error) {
  outcomes.push({ name: "setup", status: "failed" });
  console.log(`FAIL - setup: ${error.stack ?? error}`);
} finally {
  await cleanUp();
  clearTimeout(watchdog);
}
const count = (status) => outcomes.filter((o) => o.status === status).length;
console.log(`browser: ${count("passed")} passed, ${count("failed")} failed`);
process.exit(count("failed") > 0 ? 1 : 0);
