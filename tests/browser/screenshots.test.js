// The README's screenshots of the dashboard (1280x800; the enrolment sheet
// A4-wide and whole), each from a node in
// a known state. The scenes run in every test run (so they keep working);
// the PNGs are written to docs/screenshots/ only with VIGIL_SCREENSHOTS=1.
// Another page's screenshot is one more test here: set up its state with
// the helpers in lib.js, open the page, h.screenshot(page, "name.png").
"use strict";

const assert = require("node:assert/strict");
const { after, before, describe, test } = require("node:test");
const h = require("./lib");

const STAFF = "Mei";
const PASSWORD = "correct horse battery";

describe("screenshots", () => {
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

  test("inbox.png: one new alert and one acknowledged", async () => {
    const older = await h.residentWithAFever(node, "Wei Zhang, flat 3A");
    const newer = await h.residentWithAFever(node, "Ana Costa, flat 12B");
    const { context, page } = await h.newPage(browser, node, { viewport: { width: 1280, height: 800 } });
    try {
      await h.login(page, STAFF, PASSWORD);
      await h.alertRow(page, older).locator("button").click();
      await h.waitFor(h.alertRow(page, older).and(page.locator("tr.acked")), (l) => l, `"${older}" acknowledged`);
      await h.waitLive(page);
      assert.equal(await h.alertRow(page, newer).getAttribute("class"), "unacked");
      assert.match(await page.locator("#inbox-summary").textContent(), /^One alert not acknowledged yet\.$/);
      await h.screenshot(page, "inbox.png");
    } finally {
      await context.close();
    }
  });

  test("enrolment-sheet.png: the printable sheet right after issuing, as it prints", async () => {
    const label = "Ana Costa, flat 12B";
    // A4's width at 96 px per inch: the sheet as it lays out on paper.
    const { context, page } = await h.newPage(browser, node, { viewport: { width: 794, height: 1123 } });
    try {
      await h.login(page, STAFF, PASSWORD);
      await h.issueThroughForm(page, label);
      await page.locator("div#sheet-qr svg").waitFor();
      assert.match(await page.locator("code#sheet-ticket").textContent(), /^vigil-ticket1\//);
      // What goes on paper (no navigation, no print button), the whole sheet:
      // both languages' instructions are below the fold of any window.
      await page.emulateMedia({ media: "print" });
      assert.equal(await page.locator("header").isVisible(), false);
      // A screenshot has no paper margin: this stands in for the printer's.
      await page.addStyleTag({ content: "body { padding: 1.5cm; }" });
      await h.screenshot(page, "enrolment-sheet.png", { fullPage: true });
    } finally {
      await context.close();
    }
  });
});
