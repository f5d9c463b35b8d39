// Drives Debian's Chromium through Palisade's admin dashboard (run by
// crates/palisade/tests/dashboard.rs, which starts the server and a SIPp phone):
//
//   1. a wrong token is refused on the login form;
//   2. the right token opens the dashboard; prints READY (the Rust test then registers
//      a phone);
//   3. the phone's registration appears without reloading the page;
//   4. the block the Rust test added through the API is listed; its Lift button is
//      clicked and the row disappears.
//
// Environment: PALISADE_URL, PALISADE_TOKEN, EXPECT_AOR, BLOCK_ID, SHOTS_DIR.
// Exit status 0 when every step was seen; otherwise 1 with the step that failed.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const need = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`missing ${k}`);
    process.exit(2);
  }
  return v;
};
const url = need("PALISADE_URL");
const token = need("PALISADE_TOKEN");
const aor = need("EXPECT_AOR");
const blockId = need("BLOCK_ID");
const shots = need("SHOTS_DIR");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let step = "start";
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("console", (m) => console.error(`[page ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));

  step = "open the page";
  await page.goto(url, { waitUntil: "domcontentloaded" });

  step = "a wrong token is refused";
  await page.fill("#token", "not-the-token");
  await page.click("#login-btn");
  await page.waitForFunction(
    () => document.getElementById("login-error").textContent.includes("refused"),
    null, { timeout: 10000 });
  if (await page.isVisible("#app")) throw new Error("the dashboard opened with a wrong token");

  step = "log in";
  await page.fill("#token", token);
  await page.click("#login-btn");
  await page.waitForSelector("#app:not(.hidden)", { timeout: 10000 });
  await page.waitForFunction(
    () => document.getElementById("status").textContent.startsWith("updated"),
    null, { timeout: 10000 });
  await page.screenshot({ path: join(shots, "1-logged-in.png"), fullPage: true });
  console.log("READY");

  step = `the registration of ${aor} appears`;
  const row = `#registrations tr[data-aor="${aor}"]`;
  await page.waitForSelector(row, { timeout: 30000 });
  const regs = await page.textContent("#t-registrations");
  if (Number(regs.replace(/,/g, "")) < 1) throw new Error(`registrations tile shows ${regs}`);
  await page.screenshot({ path: join(shots, "2-registration.png"), fullPage: true });

  step = `block ${blockId} is listed and lifted`;
  const blockRow = `#blocks tr[data-block-id="${blockId}"]`;
  await page.waitForSelector(blockRow, { timeout: 10000 });
  await page.screenshot({ path: join(shots, "3-block-listed.png"), fullPage: true });
  await page.click(`${blockRow} button.lift`);
  await page.waitForSelector(blockRow, { state: "detached", timeout: 10000 });
  await page.screenshot({ path: join(shots, "4-block-lifted.png"), fullPage: true });
  console.log("DONE");
} catch (e) {
  console.error(`dashboard test failed at step "${step}": ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
