// Helpers for the browser tests of the staff dashboard: a real
// `vigil-node serve --http` process, staff accounts and tickets from the
// `vigil-node` CLI, a resident's device as real `vigil` CLI processes, and
// Debian's chromium driven by playwright-core (never a browser Playwright
// downloads: the machine has no internet). Every node started here is
// killed when the test process ends, whatever the outcome.
"use strict";

const assert = require("node:assert/strict");
const { spawn, execFile } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const readline = require("node:readline");
const { chromium } = require("playwright-core");

/** Every wait in these tests: long enough for a debug build on a busy machine. */
const PATIENCE_MS = 20_000;
const MIN_MS = 60_000;
const DAY_MS = 24 * 60 * MIN_MS;

const ROOT = path.resolve(__dirname, "..", "..");
// Cargo reads a relative CARGO_TARGET_DIR from where it runs: the root here.
const TARGET = path.resolve(ROOT, process.env.CARGO_TARGET_DIR || "target");
/** The programs tests/browser/run built (debug profile). */
const BIN = {
  vigil: path.join(TARGET, "debug", "vigil"),
  node: path.join(TARGET, "debug", "vigil-node"),
};

const CHROMIUM = process.env.VIGIL_CHROMIUM || "/usr/bin/chromium";
/** Screenshots for the README, only when asked (normal runs leave the tree clean). */
const SCREENSHOTS = process.env.VIGIL_SCREENSHOTS === "1";
const SCREENSHOT_DIR = path.join(ROOT, "docs", "screenshots");

// ------------------------------------------------------------ processes

/** Children still running, killed on any exit of this test process. */
const children = new Set();
function killAll() {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  children.clear();
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAll();
    process.exit(128 + os.constants.signals[sig]);
  });
}

/** A temporary directory, removed when the process exits. */
function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `vigil-browser-${prefix}-`));
  process.on("exit", () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Runs a program to completion (with a deadline); its stdout, or a clear failure. */
function run(bin, args, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      args,
      { timeout: PATIENCE_MS, env: { ...cleanEnv(), ...env } },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new Error(
              `${path.basename(bin)} ${args.join(" ")} failed (${err.code ?? err.signal}): ${stderr}`,
            ),
          );
        } else {
          resolve(stdout);
        }
      },
    );
    if (input !== undefined) child.stdin.end(input);
  });
}

/** Our environment without the variables Vigil's programs read. */
function cleanEnv() {
  const env = { ...process.env };
  for (const v of ["RUST_LOG", "VIGIL_VAULT", "VIGIL_KEY_FILE", "VIGIL_NOW", "VIGIL_LOG"]) {
    delete env[v];
  }
  return env;
}

// ------------------------------------------------------------ the node

/**
 * `vigil-node serve` on loopback with the dashboard, both on ports the
 * system picks: the node prints them on its ready lines ("vigil-node
 * listening on ...", "staff dashboard on http://.../"). Returns
 * { url, data, code, log, stop() }.
 */
async function startNode({ data = path.join(tempDir("node"), "node"), extraArgs = [] } = {}) {
  const log = `${data}.serve.log`;
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const errFd = fs.openSync(log, "w");
  const child = spawn(
    BIN.node,
    ["serve", "--data", data, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", ...extraArgs],
    { env: cleanEnv(), stdio: ["ignore", "pipe", errFd] },
  );
  fs.closeSync(errFd);
  children.add(child);
  child.on("exit", () => children.delete(child));

  const ready = new Promise((resolve, reject) => {
    let code = null;
    const lines = readline.createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      if (line.startsWith("enrolment code: ")) code = line.slice("enrolment code: ".length);
      const m = line.match(/^staff dashboard on (http:\/\/[^ ]+)\/$/);
      if (m) resolve({ url: m[1], code });
    });
    child.on("exit", (status, signal) =>
      reject(new Error(`vigil-node serve exited (${status ?? signal}) before it was ready`)),
    );
    child.on("error", reject);
  });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`vigil-node serve printed no dashboard address in ${PATIENCE_MS} ms`)),
      PATIENCE_MS,
    );
  });
  let started;
  try {
    started = await Promise.race([ready, timeout]);
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`${e.message}; its log (${log}):\n${fs.readFileSync(log, "utf8")}`);
  } finally {
    clearTimeout(timer);
  }
  return {
    ...started,
    data,
    log,
    /** SIGTERM, then SIGKILL if it has not stopped within the patience. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), PATIENCE_MS);
      await gone;
      clearTimeout(t);
    },
  };
}

/** `vigil-node staff add NAME --password-stdin`. */
async function addStaff(node, name, password) {
  await run(BIN.node, ["staff", "add", name, "--password-stdin", "--data", node.data], {
    input: `${password}\n`,
  });
}

/** `vigil-node residents add`: a one-time ticket for a resident called `label`. */
async function issueTicket(node, label) {
  const out = await run(BIN.node, [
    "residents",
    "add",
    "--label",
    label,
    "--period-end",
    "7d",
    "--json",
    "--data",
    node.data,
  ]);
  const ticket = JSON.parse(out).ticket;
  assert.match(ticket, /^vigil-ticket1\//, out);
  return ticket;
}

/** A ticket issued for `label` and revoked at once (`vigil-node residents revoke`). */
async function revokedTicket(node, label) {
  const added = JSON.parse(
    await run(BIN.node, ["residents", "add", "--label", label, "--period-end", "7d", "--json", "--data", node.data]),
  );
  await run(BIN.node, ["residents", "revoke", added.id, "--data", node.data]);
}

/** `vigil-node alerts --json`. */
async function nodeAlerts(node) {
  return JSON.parse(await run(BIN.node, ["alerts", "--json", "--data", node.data]));
}

// ------------------------------------------------------------ a resident

const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * A resident's phone, as the `vigil` CLI: a vault whose period began two
 * days ago (the node checks periods against its real clock), enrolled with
 * `ticket` (the text staff gave them). Returns `vigil(...args)`, which runs
 * the CLI on that vault, and the label `vigil enrol` showed.
 */
async function enrolDevice(ticket) {
  const vault = path.join(tempDir("phone"), "phone");
  const vigil = (...args) => run(BIN.vigil, ["--vault", vault, ...args]);
  const now = Date.now();
  const start = now - (now % DAY_MS) - 2 * DAY_MS;
  await vigil("init", "--start", iso(start));
  const enrolled = JSON.parse(await vigil("--json", "enrol", ticket));
  return { vigil, label: enrolled.label };
}

/**
 * A resident's phone (see enrolDevice) with a ticket staff issued for
 * `label`, two readings of 38.4 and 38.6 °C five minutes apart (a fever by
 * the default rule), then `vigil sync`, which delivers the alert. Returns
 * the alert's label.
 */
async function residentWithAFever(node, label) {
  const ticket = await issueTicket(node, label);
  const { vigil, label: shown } = await enrolDevice(ticket);
  assert.equal(shown, label);
  const now = Date.now();
  await vigil("record", "temperature", "38.4", "--at", iso(now - 9 * MIN_MS));
  const second = await vigil("record", "temperature", "38.6", "--at", iso(now - 4 * MIN_MS));
  assert.match(second, /fever alert is queued/, second);
  const sync = JSON.parse(await vigil("--json", "sync"));
  assert.equal(sync.alerts_delivered, 1, JSON.stringify(sync));
  return label;
}

// ------------------------------------------------------------ the browser

/**
 * Debian's chromium, headless, with nothing that reaches the network on its
 * own. Playwright gives each launch a fresh temporary profile
 * (--user-data-dir) and removes it on close.
 */
async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: PATIENCE_MS,
  });
}

/**
 * A fresh browser context (its own cookies) on `node`'s dashboard, English
 * by default. `bypassCSP` only so that axe-core can be injected: the
 * dashboard's CSP (script-src 'self') rightly refuses inline scripts.
 */
async function newPage(browser, node, { locale = "en-GB", viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({
    baseURL: node.url,
    locale,
    viewport,
    bypassCSP: true,
  });
  context.setDefaultTimeout(PATIENCE_MS);
  context.setDefaultNavigationTimeout(PATIENCE_MS);
  const page = await context.newPage();
  return { context, page };
}

/** Logs in through the form as a person would, and waits for the inbox. */
async function login(page, name, password) {
  await page.goto("/login");
  await page.fill("#login-name", name);
  await page.fill("#login-password", password);
  await Promise.all([page.waitForURL((u) => u.pathname === "/"), page.click("#login-submit")]);
  await page.locator("#inbox-table").waitFor();
}

/** Waits until the inbox page's event stream is open. */
async function waitLive(page) {
  const status = page.locator("#live-status");
  const on = await status.getAttribute("data-connected");
  await waitFor(status, (l) => l.filter({ hasText: on }), "the live-update status to say it is connected");
}

/** Waits for `pick(locator)` to be visible, failing with `what` on timeout. */
async function waitFor(locator, pick, what) {
  try {
    await pick(locator).first().waitFor({ state: "visible", timeout: PATIENCE_MS });
  } catch (e) {
    throw new Error(`timed out after ${PATIENCE_MS} ms waiting for ${what}: ${e.message.split("\n")[0]}`);
  }
}

/** The inbox row of the alert whose resident is `label`. */
function alertRow(page, label) {
  return page.locator("#inbox-rows tr", { has: page.locator("td.label", { hasText: label }) });
}

// ------------------------------------------------------------ accessibility

const AXE = require.resolve("axe-core/axe.min.js");

/**
 * Runs axe-core in the page; fails listing every violation of impact
 * serious or critical (rule, help, the elements), so the message says what
 * to fix.
 */
async function assertAccessible(page, what) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const text = bad
    .map(
      (v) =>
        `- ${v.id} (${v.impact}): ${v.help}\n` +
        v.nodes.map((n) => `    ${n.target.join(" ")}: ${n.failureSummary.replace(/\n/g, " ")}`).join("\n"),
    )
    .join("\n");
  assert.equal(bad.length, 0, `axe-core on ${what} (${page.url()}):\n${text}`);
}

/**
 * Saves a screenshot for the README, only with VIGIL_SCREENSHOTS=1;
 * `fullPage` for a page taller than the window (the enrolment sheet).
 */
async function screenshot(page, name, { fullPage = false } = {}) {
  if (!SCREENSHOTS) return;
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, name), fullPage });
}

/**
 * The inbox's summary line for `n` unacknowledged alerts, in English, as
 * the catalogue words it (crates/vigil-web/i18n/en.ftl, inbox-unacked).
 */
function unackedSummary(n) {
  return n === 1 ? "One alert not acknowledged yet." : `${n} alerts not acknowledged yet.`;
}

/**
 * Issues a ticket through the Residents page's form as staff do, and waits
 * for the enrolment sheet it opens. Returns the sheet's ticket id (from
 * its address).
 */
async function issueThroughForm(page, label, days) {
  await page.goto("/residents");
  await page.fill("#ticket-label", label);
  if (days !== undefined) await page.fill("#ticket-days", String(days));
  await Promise.all([
    page.waitForURL((u) => /^\/residents\/[0-9a-f]{32}\/sheet$/.test(u.pathname)),
    page.click("#issue-submit"),
  ]);
  await page.locator("article#sheet").waitFor();
  return new URL(page.url()).pathname.split("/")[2];
}

/** The Residents page's row of the resident whose label is `label`. */
function residentRow(page, label) {
  return page.locator("#resident-rows tr", { has: page.locator(`td.label[title="${label}"]`) });
}

module.exports = {
  PATIENCE_MS,
  SCREENSHOTS,
  addStaff,
  alertRow,
  assertAccessible,
  enrolDevice,
  issueThroughForm,
  issueTicket,
  launchBrowser,
  login,
  newPage,
  nodeAlerts,
  residentRow,
  revokedTicket,
  residentWithAFever,
  screenshot,
  startNode,
  tempDir,
  unackedSummary,
  waitFor,
  waitLive,
};
