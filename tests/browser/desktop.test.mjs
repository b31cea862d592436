// The agent desktop and the supervisor wallboard in a real browser (Debian's chromium
// driven by playwright-core, at 1366x768): an agent logs in, a simulated call arrives,
// the pop shows the caller, the agent answers (by key) and transfers; a supervisor on a
// second page sees the agent's states change and the queue's figures. A second agent at
// an analog phone gets a call through the IVR: the pop shows the flow's labels, Answer
// is refused with what to do, and the page fits a tablet. Assertions are on visible
// text. On failure each page's screenshot goes to target/browser/.
//
// The server is the web fixture (cti-core/examples/web_fixture.rs: `hotline serve`'s
// runtime, serve::start, on tests/browser/center.toml, plus a caller on each "call" line
// on stdin), or whatever HOTLINE_SERVER names: a command that prints its
// http://host:port URL on the first line of stdout and makes a caller arrive on each
// "call" line on stdin.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const shots = path.join(root, "target", "browser");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15000; // ms for any one thing to show up

let server; // child process
let url; // http://127.0.0.1:PORT
let serverLog = "";
let context;
let userDataDir;
const pages = {};

function startServer() {
  const cmd = process.env.HOTLINE_SERVER
    ? ["sh", ["-c", process.env.HOTLINE_SERVER]]
    : [
        "cargo",
        ["run", "-q", "-p", "hotline-cti", "--example", "web_fixture", "--", "--config", "tests/browser/center.toml", "--http", "127.0.0.1:0", "--print-addr"],
      ];
  server = spawn(cmd[0], cmd[1], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  server.stderr.on("data", (d) => (serverLog += d));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the server printed no URL in 300 s:\n${serverLog}`)), 300000);
    server.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/(http:\/\/[^\s/]+)/);
      if (m && !url) {
        url = m[1];
        clearTimeout(timer);
        resolve();
      }
    });
    server.on("exit", (code) => {
      clearTimeout(timer);
      if (!url) reject(new Error(`the server exited with ${code} before printing its URL:\n${serverLog}`));
    });
  });
}

function call(ani, dnis) {
  server.stdin.write(`call ${ani} ${dnis}\n`);
}

// Wait until `selector`'s visible text satisfies `want` (a string it must contain, or
// a predicate); fail with what it showed instead.
async function waitText(page, selector, want, what) {
  const ok = typeof want === "function" ? want : (t) => t.includes(want);
  const deadline = Date.now() + WAIT;
  let last = "";
  while (Date.now() < deadline) {
    last = await page
      .locator(selector)
      .first()
      .innerText({ timeout: 1000 })
      .catch(() => "");
    if (ok(last)) return last;
    await page.waitForTimeout(100);
  }
  throw new Error(`${what || selector}: expected ${typeof want === "function" ? "a match" : JSON.stringify(want)}, the page shows ${JSON.stringify(last)}`);
}

const exactly = (s) => (t) => t.trim() === s;
const mss = /^\d+:\d\d$/; // a duration as m:ss

// Wait until `selector` matches nothing visible.
async function waitGone(page, selector, what) {
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline) {
    if ((await page.locator(selector).count()) === 0) return;
    await page.waitForTimeout(100);
  }
  const left = await page.locator(selector).allInnerTexts();
  throw new Error(`${what || selector}: still shown: ${JSON.stringify(left)}`);
}

// Nothing wider than the window (no sideways scrolling).
async function fitsWidth(page, what) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= inner, `${what}: the page is ${scroll} px wide in a ${inner} px window`);
}

// A key press with the focus on the page, not in a text box.
async function key(page, k) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press(k);
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  await startServer();
  userDataDir = mkdtempSync(path.join(tmpdir(), "hotline-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 768 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  if (server) server.kill("SIGTERM");
});

async function screenshotAll(name) {
  for (const [who, page] of Object.entries(pages)) {
    await page.screenshot({ path: path.join(shots, `${name}-${who}.png`), fullPage: true }).catch(() => {});
  }
}

test("an agent logs in, takes a VIP call with a screen pop and transfers it while the supervisor watches", async (t) => {
  try {
    const agent = (pages.agent = await context.newPage());
    const wall = (pages.wallboard = await context.newPage());

    // The supervisor's wallboard first, so it sees every change.
    await wall.goto(`${url}/wallboard`);
    await waitText(wall, "#conn", exactly("connected"), "wallboard connection");
    await wall.fill("#login-user", "9001");
    await wall.fill("#login-password", "cj-secret");
    await wall.click("#login-button");
    await waitText(wall, "#who", "Chen Jie", "supervisor logged in");
    await waitText(wall, "#agents-body", "1001", "agent 1001 listed");
    // Agents only (the supervisor is not one), grouped by queue, or by agent group.
    assert.equal(await wall.locator('tr[data-agent="9001"]').count(), 0, "the supervisor is not listed as an agent");
    await waitText(wall, 'tr.group-head[data-group="sales"]', "Queue sales · 8001", "grouped by queue");
    await waitText(wall, 'tr.group-head[data-group="support"]', "Queue support · 8002", "grouped by queue");
    await wall.selectOption("#group-by", "group");
    await waitText(wall, 'tr.group-head[data-group="evening"]', "Group evening", "grouped by agent group");
    await waitText(wall, "#agents-body", (t) => t.indexOf("Group day") < t.indexOf("1001") && t.indexOf("1001") < t.indexOf("Group evening"), "1001 in the day group");
    await wall.selectOption("#group-by", "queue");
    await waitText(wall, 'tr.group-head[data-group="sales"]', "Queue sales", "grouped by queue again");
    // Today's figures per queue, the service level against its target, access numbers.
    await waitText(wall, 'tr[data-queue="support"] .q-sl', "/ 90%", "support's service-level target");
    await waitText(wall, 'tr[data-queue="sales"] .q-sl', "/ 80%", "sales' default target");
    await waitText(wall, "#access-list", "4008001234 open", "the sales number is open (no schedule)");
    await fitsWidth(wall, "wallboard at 1366x768");

    // A wrong password is refused, and the refusal is shown with what to do.
    await agent.goto(`${url}/agent`);
    await waitText(agent, "#conn", exactly("connected"), "desktop connection");
    // Before the login only the login form shows.
    assert.equal(await agent.locator("#login-panel").isVisible(), true, "the login form shows");
    assert.equal(await agent.locator("#desk").isVisible(), false, "the desk is hidden until the login succeeds");
    assert.equal(await agent.locator("#calls-panel").isVisible(), false, "no call panel under the login form");
    await agent.fill("#login-user", "1001");
    await agent.fill("#login-password", "wrong");
    await agent.fill("#login-station", "2001");
    await agent.click("#login-button");
    await waitText(agent, "#messages", "Login refused: wrong user or password", "refusal of a wrong password");
    await waitText(agent, "#messages", "Check your id and password", "what to do about it");

    await agent.fill("#login-password", "lw-secret");
    await agent.click("#login-button");
    await waitText(agent, "#who", "agent 1001 at station 2001", "agent logged in");
    // The refusal is gone once the login succeeded; the login form too.
    await waitGone(agent, "#messages .message.error", "the earlier refusal");
    assert.equal(await agent.locator("#login-panel").isVisible(), false, "the login form is gone");
    // The not-ready reasons of the configuration fill the list.
    assert.deepEqual(await agent.locator("#reason-select option").allInnerTexts(), ["lunch", "training"]);
    assert.equal(await agent.locator("#reason-input").isVisible(), false, "no free-text reason when the list is configured");
    // Keys are shown on the buttons and in the key line.
    await waitText(agent, "#answer-button kbd", exactly("A"), "Answer's key");
    await waitText(agent, "#hangup-button kbd", exactly("H"), "Hang up's key");
    await waitText(agent, "#keys", "hold / retrieve", "the key line");
    await key(agent, "n");
    await waitText(agent, "#agent-state", exactly("not ready"), "N: not ready");
    await waitText(agent, "#agent-reason", "lunch", "with the first reason of the list");
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "not ready lunch", "wallboard: 1001 not ready, lunch");
    await agent.click("#ready-button");
    await waitText(agent, "#agent-state", exactly("ready"), "agent ready");
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "ready", "wallboard: 1001 ready");

    // A VIP caller from Beijing dials the sales number.
    call("13800138000", "4008001234");
    await waitText(agent, "#pop", "13800138000", "screen pop caller");
    await waitText(agent, "#pop", "VIP", "screen pop VIP flag");
    await waitText(agent, "#pop", "Beijing mobile", "screen pop location");
    await waitText(agent, "#pop", "4008001234", "screen pop access number");
    await waitText(agent, "#calls-body", "alerting", "call alerting at the desktop");
    assert.equal(await agent.locator("#pop").innerText().then((t) => t.includes("CRM")), false, "no CRM part without a CRM");
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "ringing", "wallboard: 1001 ringing");
    await waitText(wall, "#live-body", "13800138000", "wallboard: live call");
    // The caller waits (ringing the agent) and the supervisor sees the number.
    await waitText(wall, "#callers-body", "13800138000", "wallboard: the waiting caller's number");
    await waitText(wall, 'tr[data-queue="sales"] .q-offered', exactly("1"), "sales offered 1");

    await key(agent, "a");
    await waitText(agent, "#calls-body", "connected", "A: call connected");
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "busy", "wallboard: 1001 busy");
    // Answered: counted, within the target, no stale queue party, nobody waiting.
    await waitText(wall, 'tr[data-queue="sales"] .q-answered', exactly("1"), "sales answered 1");
    await waitText(wall, 'tr[data-queue="sales"] .q-sl', "100% / 80%", "sales service level");
    assert.equal(await wall.locator('tr[data-queue="sales"] .q-sl .sl.good').count(), 1, "coloured good against its target");
    await waitText(wall, 'tr[data-queue="sales"] .q-asa', (t) => mss.test(t.trim()), "sales ASA as m:ss");
    await waitText(wall, 'tr[data-queue="sales"] .q-late', exactly("0"), "no answer after 15 s");
    await waitText(wall, "#live-body", (t) => t.includes("Li Wei · station 2001 connected") && !t.includes("queue"), "wallboard: answered call without its queue");
    await waitText(wall, "#no-callers", "Nobody is waiting", "wallboard: nobody waiting");
    await waitText(wall, "#t-on-call", exactly("1"), "wallboard: one agent on a call");
    // How the desk looks mid-call (the demo test takes the docs' pictures).
    await agent.screenshot({ path: path.join(shots, "desk-mid-call.png") });

    // Transfer to agent 1002's extension: the call leaves this desktop.
    await agent.selectOption("#transfer-kind", "agent");
    await agent.fill("#transfer-target", "2002");
    await agent.click("#transfer-button");
    await waitText(agent, "#messages", "transferred", "transfer confirmed");
    await waitText(agent, "#no-calls", "No calls.", "no calls left at the desktop");
    await waitText(wall, "#live-body", "station 2002 alerting", "wallboard: call alerting at 2002");
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "ready", "wallboard: 1001 ready again");

    // The supervisor forces the agent not ready; the desktop follows.
    await wall.click('tr[data-agent="1001"] .force-not-ready');
    await waitText(agent, "#agent-state", exactly("not ready"), "desktop: forced not ready");
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "not ready", "wallboard: 1001 not ready");
    await fitsWidth(agent, "desk at 1366x768");

    // A system alarm (the server's SystemAlarm event, docs/protocol.md) is a banner
    // until it clears. Fed to the page's link as the server would send it.
    const alarm = { event: "SystemAlarm", time: new Date().toISOString(), alarm: "disk_full", severity: "major", text: "Recording disk 95% full" };
    await wall.evaluate((m) => link.receive(JSON.stringify(m)), { ...alarm, state: "raised" });
    await waitText(wall, '#alarms .alarm[data-alarm="disk_full"]', "Recording disk 95% full", "alarm banner");
    await waitText(wall, '#alarms .alarm[data-alarm="disk_full"] .alarm-severity', (t) => t.trim().toLowerCase() === "major", "alarm severity");
    await wall.evaluate((m) => link.receive(JSON.stringify(m)), { ...alarm, state: "cleared" });
    await waitGone(wall, "#alarms .alarm", "the cleared alarm's banner");
  } catch (e) {
    await screenshotAll("transfer");
    t.diagnostic(`server log:\n${serverLog.slice(-4000)}`);
    throw e;
  }
});

test("an agent at an analog phone gets an IVR caller: labelled IVR data, Answer refused with what to do, tablet layout", async (t) => {
  try {
    const agent = (pages.analog = await context.newPage());
    const wall = pages.wallboard;
    await agent.goto(`${url}/agent`);
    await waitText(agent, "#conn", exactly("connected"), "desktop connection");
    await agent.fill("#login-user", "1004");
    await agent.fill("#login-password", "zl-secret");
    await agent.fill("#login-station", "2005");
    await agent.press("#login-station", "Enter");
    await waitText(agent, "#who", "agent 1004 at station 2005", "agent 1004 logged in");
    await key(agent, "r");
    await waitText(agent, "#agent-state", exactly("ready"), "R: ready");

    // Through the IVR (which looks the account up) to the support queue.
    call("13900139000", "4008005678");
    await waitText(agent, "#pop", "13900139000", "screen pop caller");
    await waitText(agent, "#pop", "Account number", "the IVR variable under its flow's label");
    await waitText(agent, "#pop", "778812", "the IVR variable's value");
    await waitText(agent, "#pop", "Other IVR variables", "the flow's internal variables folded away");
    const popText = await agent.locator("#pop").innerText();
    assert.ok(!/\b(ani|dnis|account)\b/.test(popText), `no raw IVR keys shown: ${JSON.stringify(popText)}`);
    await waitText(wall, "#callers-body", "13900139000", "wallboard: the waiting caller's number");
    await waitText(wall, "#live-body", (t) => t.includes("13900139000") && t.includes("waiting in queue support") && !t.includes("IVR"), "wallboard: queued, no stale IVR party");

    // Answer from the screen on an analog phone: refused, and told to lift the handset.
    await waitText(agent, "#calls-body", "alerting", "ringing at 2005");
    await key(agent, "a");
    await waitText(agent, "#messages", "lift the handset", "what to do on an analog phone");

    // A supervisor without a station cannot whisper: said in words.
    await wall.click('tr[data-agent="1004"] .sup-whisper');
    await waitText(wall, "#messages", "Whispering to agent 1004 refused", "the supervise refusal");
    const sup = await wall.locator("#messages .message.error").first().innerText();
    assert.ok(!/invalid_|privilege_violation|service_not_supported/.test(sup), `in words, not codes: ${sup}`);

    // A tablet: the desk fits the width and the call buttons are on screen.
    await agent.setViewportSize({ width: 768, height: 1024 });
    await fitsWidth(agent, "desk on a tablet (768x1024)");
    assert.ok(await agent.locator("#hangup-button").isVisible(), "hang up visible on a tablet");
    await wall.setViewportSize({ width: 1024, height: 768 });
    await fitsWidth(wall, "wallboard on a tablet (1024x768)");
    await wall.setViewportSize({ width: 1366, height: 768 });

  } catch (e) {
    await screenshotAll("analog");
    t.diagnostic(`server log:\n${serverLog.slice(-4000)}`);
    throw e;
  }
});
