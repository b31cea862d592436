// A person at the desk during `hotline demo` (the README's second command), in Debian's
// chromium at 1366x768: agent 1001 (password "demo") logs in at the headset station
// 2101, goes ready, takes a real call from the demo's simulated callers, answers it on
// the page and hangs up; the supervisor's wallboard (9001) watches. The demo leaves
// agents 1001-1003 and the headset stations 2101-2103 to people (examples/demo.toml).
//
// Screenshots of the wallboard (as the supervisor logs in) and the desk (mid-call) go to $SHOTS (default
// target/browser): `SHOTS=docs/img npm run demo` retakes docs/img/desk.png and
// docs/img/wallboard.png.
//
// HOTLINE_DEMO="cmd" runs another demo command (it must print the agent desk's URL);
// DEMO_AGENT, DEMO_STATION, DEMO_PASSWORD, DEMO_SUPERVISOR name the seats.

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
const shots = path.resolve(root, process.env.SHOTS || path.join("target", "browser"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const AGENT = process.env.DEMO_AGENT || "1001";
const STATION = process.env.DEMO_STATION || "2101";
const PASSWORD = process.env.DEMO_PASSWORD || "demo";
const SUPERVISOR = process.env.DEMO_SUPERVISOR || "9001";
const WAIT = 15000;
const CALL_WAIT = 120000; // the demo promises a call within a minute of going ready

let server;
let url;
let serverLog = "";
let context;
let userDataDir;
const pages = {};

function startDemo() {
  const cmd = process.env.HOTLINE_DEMO
    ? ["sh", ["-c", process.env.HOTLINE_DEMO]]
    : ["cargo", ["run", "-q", "-p", "hotline", "--", "demo", "--plain", "--duration", "600"]];
  // Its own folder for the store and recordings: the demo's paths are relative.
  server = spawn(cmd[0], cmd[1], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  server.stderr.on("data", (d) => (serverLog += d));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the demo printed no desk URL in 600 s:\n${out}\n${serverLog}`)), 600000);
    server.stdout.on("data", (d) => {
      out += d;
      serverLog += d;
      const m = out.match(/(http:\/\/[^\s/]+)\/agent/);
      if (m && !url) {
        url = m[1];
        clearTimeout(timer);
        resolve();
      }
    });
    server.on("exit", (code) => {
      clearTimeout(timer);
      if (!url) reject(new Error(`the demo exited with ${code} before printing its URL:\n${out}\n${serverLog}`));
    });
  });
}

async function waitText(page, selector, want, what, wait = WAIT) {
  const ok = typeof want === "function" ? want : (t) => t.includes(want);
  const deadline = Date.now() + wait;
  let last = "";
  while (Date.now() < deadline) {
    last = await page
      .locator(selector)
      .first()
      .innerText({ timeout: 1000 })
      .catch(() => "");
    if (ok(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`${what || selector}: expected ${typeof want === "function" ? "a match" : JSON.stringify(want)}, the page shows ${JSON.stringify(last)}`);
}

const exactly = (s) => (t) => t.trim() === s;

async function key(page, k) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press(k);
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  await startDemo();
  userDataDir = mkdtempSync(path.join(tmpdir(), "hotline-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 768 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  if (server) server.kill("SIGTERM");
});

test(`a person logs in at the desk as ${AGENT} during the demo, goes ready, takes a real call and hangs up`, async (t) => {
  try {
    const wall = (pages.wallboard = await context.newPage());
    await wall.goto(`${url}/wallboard`);
    await waitText(wall, "#conn", exactly("connected"), "wallboard connection");
    await wall.fill("#login-user", SUPERVISOR);
    await wall.fill("#login-password", PASSWORD);
    await wall.press("#login-password", "Enter");
    await waitText(wall, "#who", "supervisor", "supervisor logged in");
    await wall.waitForTimeout(4000); // the simulated agents and callers at work
    await wall.screenshot({ path: path.join(shots, "wallboard.png") });

    const desk = (pages.desk = await context.newPage());
    await desk.goto(`${url}/agent`);
    await waitText(desk, "#conn", exactly("connected"), "desk connection");
    assert.equal(await desk.locator("#desk").isVisible(), false, "only the login form before the login");
    await desk.fill("#login-user", AGENT);
    await desk.fill("#login-password", PASSWORD);
    await desk.fill("#login-station", STATION);
    await desk.press("#login-station", "Enter");
    await waitText(desk, "#who", `agent ${AGENT} at station ${STATION}`, "logged in at the desk");
    await desk.click("#ready-button");
    await waitText(desk, "#agent-state", exactly("ready"), "ready");
    await waitText(wall, `tr[data-agent="${AGENT}"] .agent-state`, "ready", "the wallboard sees the person ready");

    // A simulated caller reaches the person: the pop, then Answer on the page (a headset).
    await waitText(desk, "#calls-body", "alerting", "a call rings at the desk", CALL_WAIT);
    await waitText(desk, "#pop", "Caller", "the screen pop");
    await desk.click("#answer-button");
    await waitText(desk, "#calls-body", "connected", "answered");
    await waitText(wall, `tr[data-agent="${AGENT}"] .agent-state`, "busy", "the wallboard sees the person busy");
    await desk.waitForTimeout(3000); // talk a little; durations tick
    await wall.waitForTimeout(1500); // a Stats push with the answer counted
    await desk.screenshot({ path: path.join(shots, "desk.png") });

    // Hang up by key: the call leaves the desk.
    await key(desk, "h");
    await waitText(desk, "#no-calls", "No calls.", "hung up", WAIT);
    await waitText(wall, `tr[data-agent="${AGENT}"] .agent-state`, (s) => !s.includes("busy"), "no longer busy on the wallboard");
  } catch (e) {
    for (const [who, page] of Object.entries(pages)) {
      await page.screenshot({ path: path.join(shots, `demo-failed-${who}.png`), fullPage: true }).catch(() => {});
    }
    t.diagnostic(`demo output:\n${serverLog.slice(-4000)}`);
    throw e;
  }
});
