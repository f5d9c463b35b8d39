// Drives Debian's Chromium through Palisade's softphone (/phone on the admin listener;
// run by crates/palisade/tests/websocket.rs, which starts the server with a ws:
// listener and a SIPp callee):
//
//   1. two pages (alice, bob) register over ws: with their passwords;
//   2. alice calls bob; bob's page rings and he answers; both are in the call;
//   3. audio flows both ways (getStats: inbound-rtp bytesReceived grows on each page);
//   4. alice hangs up; bob's page shows the call ended;
//   5. alice's offer, spoiled on purpose (a 100-character ICE password), is refused by
//      the shield: her page shows the 488 and its reason, bob's page does not ring;
//   6. alice calls the SIPp callee (CALLEE): the signalling completes; she hangs up.
//
// Chromium's fake devices stand in for the microphones; host candidates are real
// addresses (no mDNS names), so that the two pages' ICE meets on this machine.
// Environment: PHONE_URL, CALLEE, SHOTS_DIR. Prints DONE; exit status 1 with the step
// that failed.
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
const url = need("PHONE_URL");
const callee = need("CALLEE");
const shots = need("SHOTS_DIR");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ],
});
let step = "start";
const wait = (page, what, timeout = 15000) =>
  page.waitForFunction(what, null, { timeout, polling: 100 });

async function open(user) {
  const context = await browser.newContext({ viewport: { width: 960, height: 760 } });
  await context.grantPermissions(["microphone"]);
  const page = await context.newPage();
  page.on("console", (m) => console.error(`[${user} ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[${user} error] ${e.message}`));
  await page.goto(`${url}?user=${user}`, { waitUntil: "domcontentloaded" });
  await wait(page, () => window.phone && window.phone.ready);
  await page.fill("#password", "secret");
  await page.click("#register");
  await wait(page, () => window.phone.registered);
  return page;
}

const media = (page) => page.evaluate(() => window.phone.media());

try {
  step = "alice and bob register over ws:";
  const alice = await open("alice");
  const bob = await open("bob");
  await alice.screenshot({ path: join(shots, "phone-1-registered.png") });

  step = "alice calls bob; bob's page rings";
  await alice.fill("#target", "bob");
  await alice.click("#call");
  await wait(bob, () => window.phone.call === "incoming");
  await bob.screenshot({ path: join(shots, "phone-2-incoming.png") });

  step = "bob answers; both are in the call";
  await bob.click("#answer");
  await wait(bob, () => window.phone.call === "connected");
  await wait(alice, () => window.phone.call === "connected");

  step = "audio flows both ways";
  const deadline = Date.now() + 20000;
  let first = null;
  for (;;) {
    const a = await media(alice);
    const b = await media(bob);
    if (a.received > 0 && b.received > 0) {
      if (!first) first = { a, b };
      else if (a.received > first.a.received && b.received > first.b.received) {
        console.error(`audio: alice received ${first.a.received} then ${a.received} bytes, bob ${first.b.received} then ${b.received}`);
        break;
      }
    }
    if (Date.now() > deadline) throw new Error(`no audio growth: alice ${JSON.stringify(a)}, bob ${JSON.stringify(b)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await alice.waitForTimeout(600); // the page's own media line refreshes
  await alice.screenshot({ path: join(shots, "phone-3-in-call.png") });

  step = "alice hangs up; bob's page shows the call ended";
  await alice.click("#hangup");
  await wait(bob, () => window.phone.call === "ended");
  await wait(alice, () => window.phone.call === "ended");
  await bob.screenshot({ path: join(shots, "phone-4-ended.png") });

  step = "an offer the shield refuses: the page shows the status and the reason";
  await alice.evaluate(() => {
    window.phone.mangle = (sdp) => sdp.replace(/a=ice-pwd:\S+/g, `a=ice-pwd:${"p".repeat(100)}`);
  });
  await alice.click("#call");
  await wait(alice, () => window.phone.call === "failed");
  const reason = await alice.evaluate(() => window.phone.reason);
  console.error(`refused: ${reason}`);
  if (!reason.startsWith("488")) throw new Error(`expected a 488, got ${reason}`);
  if ((await bob.evaluate(() => window.phone.call)) !== "ended") throw new Error("bob's page rang");
  await alice.screenshot({ path: join(shots, "phone-5-refused.png") });
  await alice.evaluate(() => { window.phone.mangle = null; });

  step = `alice calls the SIPp callee ${callee}: the signalling completes`;
  await alice.fill("#target", callee);
  await alice.click("#call");
  await wait(alice, () => window.phone.call === "connected");
  await alice.click("#hangup");
  await wait(alice, () => window.phone.call === "ended");
  console.log("DONE");
} catch (e) {
  console.error(`step failed: ${step}: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
