// The staff dashboard as a person uses it, in Debian's chromium: log in, a
// resident's fever alert appearing live, one-click acknowledgement, the
// language switch, logging out; the refusals (a POST without the CSRF
// token, a wrong password); and axe-core on every page staff can reach.
// One node for the file (a real `vigil-node serve --http` process), a fresh
// browser context (own cookies) per test.
"use strict";

const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");
const h = require("./lib");

const STAFF = "Mei";
const PASSWORD = "correct horse battery";

describe("staff dashboard in a browser", () => {
  let node;
  let browser;

  before(async () => {
    node = await h.startNode();
    await h.addStaff(node, STAFF, PASSWORD);
    browser = await h.launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  /** A logged-in page on a fresh context; closed by the caller. */
  async function loggedIn(opts) {
    const p = await h.newPage(browser, node, opts);
    await h.login(p.page, STAFF, PASSWORD);
    return p;
  }

  test("staff log in with the form and reach the inbox", async () => {
    const { context, page } = await h.newPage(browser, node);
    try {
      // Nothing without a session: the inbox sends a person to the login page.
      await page.goto("/");
      assert.equal(new URL(page.url()).pathname, "/login");
      await h.login(page, STAFF, PASSWORD);
      assert.equal(await page.locator("h1").textContent(), "Fever alerts");
      assert.match(await page.locator("#whoami").textContent(), /Signed in as Mei/);
      await h.waitLive(page);
    } finally {
      await context.close();
    }
  });

  test("a resident's fever alert appears on the open inbox without reloading", async () => {
    const { context, page } = await loggedIn();
    try {
      await h.waitLive(page);
      // A mark on this very document: a reload or navigation would drop it.
      await page.evaluate(() => {
        window.vigilSameDocument = true;
      });
      const label = await h.residentWithAFever(node, "Ana Costa, flat 12B");
      const row = h.alertRow(page, label);
      await h.waitFor(row, (r) => r, `the alert of "${label}" to appear live in the open inbox`);
      assert.equal(
        await page.evaluate(() => window.vigilSameDocument),
        true,
        "the page was reloaded: the alert must arrive over the event stream",
      );
      // Unacknowledged, and it stands out.
      assert.equal(await row.getAttribute("class"), "unacked");
      assert.equal(await row.locator("td.status").textContent(), "New");
      assert.equal(await row.locator("td.what").textContent(), "Fever started");
      const bg = await row.evaluate((tr) => getComputedStyle(tr).backgroundColor);
      assert.equal(bg, "rgb(255, 241, 240)", "an unacknowledged alert is highlighted");
      assert.equal(await row.locator("button", { hasText: "Acknowledge" }).count(), 1);
    } finally {
      await context.close();
    }
  });

  test("one click acknowledges an alert and the row names the staff member", async () => {
    const label = await h.residentWithAFever(node, "Wei Zhang, flat 3A");
    const { context, page } = await loggedIn();
    try {
      const row = h.alertRow(page, label);
      await h.waitFor(row.filter({ has: page.locator("button") }), (r) => r, `the alert of "${label}"`);
      await row.locator("button", { hasText: "Acknowledge" }).click();
      await h.waitFor(
        row.filter({ hasText: `Acknowledged by ${STAFF}` }),
        (r) => r,
        `the row of "${label}" to say who acknowledged it`,
      );
      assert.equal(await row.getAttribute("class"), "acked");
      assert.equal(await row.locator("button").count(), 0, "no second acknowledgement");
      // The node recorded it under her name (what `vigil-node alerts` shows).
      const alert = (await h.nodeAlerts(node)).find((a) => a.label === label);
      assert.ok(alert.acked_ms, JSON.stringify(alert));
      assert.equal(alert.acked_by, STAFF);
    } finally {
      await context.close();
    }
  });

  test("the language switch shows the pages in Chinese and back in English", async () => {
    const { context, page } = await loggedIn();
    try {
      await page.click("#lang-zh");
      await h.waitFor(page.locator("h1", { hasText: "发热警报" }), (l) => l, "the Chinese inbox title");
      assert.equal(await page.locator("html").getAttribute("lang"), "zh-CN");
      assert.equal(await page.locator("#logout").textContent(), "退出登录");
      await page.click("#lang-en");
      await h.waitFor(page.locator("h1", { hasText: "Fever alerts" }), (l) => l, "the English inbox title");
      assert.equal(await page.locator("html").getAttribute("lang"), "en");
    } finally {
      await context.close();
    }
  });

  test("logging out ends the session: the inbox sends the person to the login page", async () => {
    const { context, page } = await loggedIn();
    try {
      const session = (await context.cookies()).find((c) => c.name === "vigil_session");
      assert.ok(session, "a session cookie after login");
      await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click("#logout")]);
      await page.goto("/");
      assert.equal(new URL(page.url()).pathname, "/login");
      // The old cookie itself is dead on the node, not only dropped by the browser.
      const r = await context.request.get("/", {
        headers: { cookie: `vigil_session=${session.value}` },
        maxRedirects: 0,
      });
      assert.equal(r.status(), 303);
      assert.equal(r.headers().location, "/login");
    } finally {
      await context.close();
    }
  });

  test("a POST to acknowledge without the CSRF token is refused with 403", async () => {
    const label = await h.residentWithAFever(node, "Lin Hui, flat 7C");
    const { context, page } = await loggedIn();
    try {
      const row = h.alertRow(page, label);
      await h.waitFor(row, (r) => r, `the alert of "${label}"`);
      const action = await row.locator("form.ack").getAttribute("action");
      assert.match(action, /^\/alerts\/[0-9a-f]{12}\/ack$/);
      // With the session cookie (page.request shares the context's cookies)
      // but no token, or a wrong one: refused.
      const none = await page.request.post(action, { form: {}, maxRedirects: 0 });
      assert.equal(none.status(), 403, "a POST without the CSRF token");
      const wrong = await page.request.post(action, { form: { csrf: "0".repeat(64) }, maxRedirects: 0 });
      assert.equal(wrong.status(), 403, "a POST with a wrong CSRF token");
      // The same from a script in the page (same origin, cookie sent).
      const fromPage = await page.evaluate(
        (url) => fetch(url, { method: "POST", body: new URLSearchParams(), redirect: "manual" }).then((r) => r.status),
        action,
      );
      assert.equal(fromPage, 403, "a fetch without the CSRF token");
      let alert = (await h.nodeAlerts(node)).find((a) => a.label === label);
      assert.equal(alert.acked_ms, null, "the refused POSTs acknowledged nothing");
      // The control: with the page's token the same POST goes through.
      const csrf = await row.locator('form.ack input[name="csrf"]').inputValue();
      const ok = await page.request.post(action, { form: { csrf }, maxRedirects: 0 });
      assert.equal(ok.status(), 303);
      alert = (await h.nodeAlerts(node)).find((a) => a.label === label);
      assert.ok(alert.acked_ms);
    } finally {
      await context.close();
    }
  });

  test("a wrong password shows an error and opens no session", async () => {
    const { context, page } = await h.newPage(browser, node);
    try {
      await page.goto("/login");
      await page.fill("#login-name", STAFF);
      await page.fill("#login-password", "not her password");
      await page.click("#login-submit");
      const error = page.locator("#login-error");
      await h.waitFor(error, (l) => l, "the login error");
      assert.equal(await error.textContent(), "Wrong name or password.");
      assert.equal(new URL(page.url()).pathname, "/login");
      const cookies = await context.cookies();
      assert.equal(
        cookies.find((c) => c.name === "vigil_session"),
        undefined,
        "no session cookie after a wrong password",
      );
      await page.goto("/");
      assert.equal(new URL(page.url()).pathname, "/login");
    } finally {
      await context.close();
    }
  });

  // Every page staff can reach, opened with a fresh context whose browser
  // asks for `opts.locale` (Accept-Language). Later pages add an entry here.
  const PAGES = [
    {
      name: "the login page",
      open: async (opts) => {
        const p = await h.newPage(browser, node, opts);
        await p.page.goto("/login");
        return p;
      },
    },
    {
      name: "the login page with an error",
      open: async (opts) => {
        const p = await h.newPage(browser, node, opts);
        await p.page.goto("/login");
        await p.page.fill("#login-name", STAFF);
        await p.page.fill("#login-password", "not her password");
        await p.page.click("#login-submit");
        await p.page.locator("#login-error").waitFor();
        return p;
      },
    },
    {
      name: "the inbox with new and acknowledged alerts",
      open: async (opts) => {
        const p = await loggedIn(opts);
        await h.waitLive(p.page);
        await p.page.locator("#inbox-rows tr.unacked").first().waitFor();
        await p.page.locator("#inbox-rows tr.acked").first().waitFor();
        return p;
      },
    },
  ];

  for (const locale of ["en-GB", "zh-CN"]) {
    test(`axe-core finds no serious or critical violations on any page (${locale})`, async () => {
      // The inbox is checked with both kinds of alert in it: made here when
      // this test runs on its own.
      const alerts = await h.nodeAlerts(node);
      if (!alerts.some((a) => a.acked_ms === null)) await h.residentWithAFever(node, "Ana Costa, flat 12B");
      if (!alerts.some((a) => a.acked_ms !== null)) {
        const label = await h.residentWithAFever(node, "Wei Zhang, flat 3A");
        const p = await loggedIn();
        await h.alertRow(p.page, label).locator("button").click();
        await h.alertRow(p.page, label).and(p.page.locator("tr.acked")).waitFor();
        await p.context.close();
      }
      for (const { name, open } of PAGES) {
        const { context, page } = await open({ locale });
        try {
          assert.equal(await page.locator("html").getAttribute("lang"), locale === "en-GB" ? "en" : "zh-CN");
          await h.assertAccessible(page, `${name} (${locale})`);
        } finally {
          await context.close();
        }
      }
    });
  }
});
