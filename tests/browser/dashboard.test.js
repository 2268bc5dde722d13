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

  test("the unacknowledged count follows live events: a new alert, and an ack from another session", async () => {
    const unacked = async () => (await h.nodeAlerts(node)).filter((a) => a.acked_ms === null).length;
    const { context, page } = await loggedIn();
    try {
      await h.waitLive(page);
      await page.evaluate(() => {
        window.vigilSameDocument = true;
      });
      const summary = page.locator("#inbox-summary");
      const before = await unacked();
      assert.equal(await summary.textContent(), h.unackedSummary(before));
      // A new alert arrives while the page is open: the rows and the count.
      const label = await h.residentWithAFever(node, "Sun Li, flat 2F");
      await h.waitFor(h.alertRow(page, label), (r) => r, `the alert of "${label}" to appear live`);
      await h.waitFor(
        summary.filter({ hasText: h.unackedSummary(before + 1) }),
        (l) => l,
        `the summary to say "${h.unackedSummary(before + 1)}" (it said "${await summary.textContent()}" when the wait began)`,
      );
      // A colleague acknowledges it in her own session: this page follows.
      const other = await loggedIn();
      try {
        await h.alertRow(other.page, label).locator("button", { hasText: "Acknowledge" }).click();
        await h.alertRow(other.page, label).and(other.page.locator("tr.acked")).waitFor();
      } finally {
        await other.context.close();
      }
      await h.waitFor(h.alertRow(page, label).and(page.locator("tr.acked")), (r) => r, `"${label}" acknowledged live`);
      await h.waitFor(
        summary.filter({ hasText: h.unackedSummary(before) }),
        (l) => l,
        `the summary to say "${h.unackedSummary(before)}" (it said "${await summary.textContent()}" when the wait began)`,
      );
      assert.equal(await page.evaluate(() => window.vigilSameDocument), true, "the page was reloaded");
    } finally {
      await context.close();
    }
  });

  test("staff issue a ticket on the Residents page; a device enrols with the sheet's code; revoke", async () => {
    const label = "Chen Jing, flat 5D";
    const { context, page } = await loggedIn();
    try {
      await Promise.all([page.waitForURL((u) => u.pathname === "/residents"), page.click("nav a#nav-residents")]);
      assert.equal(await page.locator("a#nav-residents").getAttribute("aria-current"), "page");
      assert.equal(await page.locator("a#nav-inbox").getAttribute("aria-current"), null);
      assert.equal(await page.locator("input#ticket-days[name=days]").inputValue(), "14", "the default period");
      const id = await h.issueThroughForm(page, label);

      // The sheet: the label, the QR code as an SVG image, the ticket text.
      assert.equal(await page.locator("p#sheet-label").textContent(), `For: ${label}`);
      await h.waitFor(page.locator("div#sheet-qr[role=img] svg"), (l) => l, "the QR code's SVG");
      assert.ok(await page.locator("div#sheet-qr").getAttribute("aria-label"), "the QR code has a text alternative");
      const ticket = (await page.locator("code#sheet-ticket").textContent()).trim();
      assert.match(ticket, /^vigil-ticket1\//);
      assert.equal(await page.locator("section.instructions[lang]").count(), 2, "instructions in both languages");
      assert.equal(await page.locator("p#sheet-no-code").count(), 0);

      // On paper: no navigation, no print button; the code stays.
      await page.emulateMedia({ media: "print" });
      assert.equal(await page.locator("header nav").isVisible(), false, "the nav is hidden in print");
      assert.equal(await page.locator("button#print-sheet").isVisible(), false, "the print button is hidden in print");
      assert.equal(await page.locator("div#sheet-qr svg").isVisible(), true);
      assert.equal(await page.locator("code#sheet-ticket").isVisible(), true);
      await page.emulateMedia({ media: "screen" });
      assert.equal(await page.locator("header nav").isVisible(), true, "the nav is back on screen");

      // Issued, not yet used.
      await page.goto("/residents");
      const row = h.residentRow(page, label);
      assert.equal(await row.getAttribute("id"), `resident-${id.slice(0, 12)}`);
      assert.equal(await row.getAttribute("data-status"), "unused");
      assert.equal(await row.locator("td.state").textContent(), "Unused");

      // The resident's device enrols with the text read from the sheet, syncs.
      const device = await h.enrolDevice(ticket);
      assert.equal(device.label, label);
      await device.vigil("record", "temperature", "36.8");
      await device.vigil("sync");
      await page.reload();
      assert.equal(await row.getAttribute("data-status"), "enrolled");
      assert.equal(await row.locator("td.state").textContent(), "Enrolled");
      assert.doesNotMatch(await row.locator("td").nth(3).textContent(), /Never/, "the sync is its last contact");
      assert.equal(await row.locator("strong.no-contact").count(), 0, "just heard from: not silent");

      // Revoke asks first: cancelling keeps the ticket.
      const asked = [];
      page.once("dialog", (d) => {
        asked.push(d.message());
        return d.dismiss();
      });
      await row.locator("button.revoke").click();
      await page.waitForTimeout(300);
      await page.reload();
      assert.equal(asked.length, 1, "revoking asks for confirmation");
      assert.match(asked[0], /^Revoke the ticket of Chen Jing, flat 5D\?/);
      assert.equal(await row.getAttribute("data-status"), "enrolled", "a cancelled revoke revokes nothing");

      // Confirmed: revoked, and nothing left to revoke.
      page.once("dialog", (d) => d.accept());
      await Promise.all([page.waitForURL((u) => u.pathname === "/residents"), row.locator("button.revoke").click()]);
      await h.waitFor(row.and(page.locator('tr[data-status="revoked"]')), (l) => l, `"${label}" revoked`);
      assert.equal(await row.locator("td.state").textContent(), "Revoked");
      assert.equal(await row.locator("button.revoke").count(), 0);
      // The sheet no longer shows the code, even to who issued it.
      await page.goto(`/residents/${id}/sheet`);
      await page.locator("p#sheet-no-code").waitFor();
      assert.equal(await page.locator("code#sheet-ticket").count(), 0);
    } finally {
      await context.close();
    }
  });

  test("the Node page shows the node's enrolment code and certificate fingerprint", async () => {
    const { context, page } = await loggedIn();
    try {
      await Promise.all([page.waitForURL((u) => u.pathname === "/node"), page.click("nav a#nav-node")]);
      assert.equal(await page.locator("a#nav-node").getAttribute("aria-current"), "page");
      await page.locator("section#node").waitFor();
      // The same code `vigil-node serve` printed when it started.
      assert.ok(node.code, "serve printed an enrolment code");
      assert.equal((await page.locator("dd#node-code").textContent()).trim(), node.code);
      const fp = (await page.locator("dd#node-fingerprint").textContent()).trim();
      assert.match(fp, /^([0-9a-f]{2}:?){32}$/i, "a SHA-256 fingerprint");
      assert.ok(await page.locator("table#node-storage tbody tr").count() >= 5);
      await page.locator("div#node-last-sweep").waitFor();
      assert.match(await page.locator("strong#node-receipts").textContent(), /^\d+$/);
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
    {
      name: "the residents page with unused, enrolled and revoked tickets",
      open: async (opts) => {
        const p = await loggedIn(opts);
        await p.page.goto("/residents");
        await p.page.locator("#resident-rows tr").first().waitFor();
        return p;
      },
    },
    {
      name: "the residents page with a refused ticket",
      open: async (opts) => {
        const p = await loggedIn(opts);
        await p.page.goto("/residents");
        await p.page.fill("#ticket-label", "Ana");
        await p.page.fill("#ticket-days", "999");
        // The browser's own check of max= would stop the form before the node.
        await p.page.locator("#ticket-days").evaluate((i) => i.removeAttribute("max"));
        await p.page.click("#issue-submit");
        await p.page.locator("#issue-error").waitFor();
        return p;
      },
    },
    {
      name: "the enrolment sheet right after issuing (QR code and ticket text)",
      open: async (opts) => {
        const p = await loggedIn(opts);
        await h.issueThroughForm(p.page, "Hana Sato, flat 9E");
        await p.page.locator("div#sheet-qr svg").waitFor();
        return p;
      },
    },
    {
      name: "the enrolment sheet of an earlier ticket (no code)",
      open: async (opts) => {
        const p = await loggedIn(opts);
        await p.page.goto("/residents");
        await Promise.all([p.page.waitForURL(/\/sheet$/), p.page.locator("a.sheet-link").first().click()]);
        await p.page.locator("p#sheet-no-code").waitFor();
        return p;
      },
    },
    {
      name: "the node page",
      open: async (opts) => {
        const p = await loggedIn(opts);
        await p.page.goto("/node");
        await p.page.locator("section#node").waitFor();
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
      // The residents page with every kind of row, made here when this test
      // runs on its own: unused (a fresh ticket), enrolled (the alerts'
      // residents), revoked.
      await h.issueTicket(node, "Omar Haddad, flat 1A");
      await h.revokedTicket(node, "Sara Lind, flat 4B");
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
