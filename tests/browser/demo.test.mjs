// A person at the desk during `hotline demo` (the README's second command), in Debian's
// chromium at 1366x768: agent 1001 (password "demo") logs in at the headset station
// 2101, goes ready, takes a real call from the demo's simulated callers, answers it on
// the page and hangs up; the supervisor's wallboard (9001) watches. The demo leaves
// agents 1001-1003 and the headset stations 2101-2103 to people (examples/demo.toml).
//
// Screenshots of the desk and the wallboard, both while the person is on the call, go to
// $SHOTS (default target/browser): `SHOTS=docs/img npm run demo` retakes
// docs/img/desk.png and docs/img/wallboard.png (with SHOTS set the person logs in once
// the wallboard shows a handling time, about a minute into the demo).
//
// The demo is the release binary: `cargo build --release -p hotline` runs first (quick
// when it is up to date; CARGO_TARGET_DIR is honoured), then
// `target/release/hotline demo --plain` from the repository root (the demo reads
// examples/ and keeps its store in var/demo/). HOTLINE_DEMO="cmd" runs another demo
// command instead (it must print the agent desk's URL); DEMO_AGENT, DEMO_STATION,
// DEMO_PASSWORD, DEMO_SUPERVISOR name the seats.
//
// Bounded: the demo gets 60 s to print its URL, the test 100 s, a call 60 s after the
// person goes ready (what the demo promises); the demo runs in its own process group,
// which is killed on every way out (pass, failure, timeout, Ctrl-C), and it stops by
// itself after --duration 240 s should everything else fail.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
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
const START_WAIT = 60000;
const TEST_WAIT = process.env.SHOTS ? 200000 : 100000;
const CALL_WAIT = 60000; // the demo promises a call within a minute of going ready

let server;
let url;
let serverLog = "";
let context;
let userDataDir;
const pages = {};

// The whole process group: `sh -c` and whatever it started.
function stopDemo() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  try {
    process.kill(-server.pid, "SIGKILL");
  } catch {
    // already gone
  }
}
process.on("exit", stopDemo);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    stopDemo();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    process.exit(130);
  });
}

function demoCommand() {
  if (process.env.HOTLINE_DEMO) return ["sh", ["-c", process.env.HOTLINE_DEMO]];
  const build = spawnSync("cargo", ["build", "-q", "--release", "-p", "hotline"], { cwd: root, stdio: "inherit" });
  if (build.status !== 0) throw new Error(`cargo build --release -p hotline failed (${build.status ?? build.signal})`);
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
  const bin = path.join(target, "release", "hotline");
  if (!existsSync(bin)) throw new Error(`no ${bin} after the build`);
  return [bin, ["demo", "--plain", "--duration", "240"]];
}

function startDemo() {
  const cmd = demoCommand();
  // Its own process group (detached), so stopDemo reaches every process it started.
  server = spawn(cmd[0], cmd[1], { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true });
  server.stderr.on("data", (d) => (serverLog += d));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the demo printed no desk URL in ${START_WAIT / 1000} s:\n${serverLog}`)), START_WAIT);
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
    server.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start the demo (${cmd[0]}): ${e.message}`));
    });
    server.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (!url) reject(new Error(`the demo exited (${code ?? signal}) before printing its URL:\n${serverLog}`));
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

// SIGTERM first (the demo ends its calls and closes its store), SIGKILL after 5 s.
async function stopDemoGently() {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolve) => server.once("exit", resolve));
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {
    return;
  }
  let timer;
  await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
  clearTimeout(timer);
  stopDemo();
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  await startDemo();
  userDataDir = mkdtempSync(path.join(tmpdir(), "hotline-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 768 },
    timeout: 30000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await stopDemoGently();
});

test(`a person logs in at the desk as ${AGENT} during the demo, goes ready, takes a real call and hangs up`, { timeout: TEST_WAIT }, async (t) => {
  const started = Date.now();
  try {
    const wall = (pages.wallboard = await context.newPage());
    await wall.goto(`${url}/wallboard`, { timeout: WAIT });
    await waitText(wall, "#conn", exactly("connected"), "wallboard connection");
    await wall.fill("#login-user", SUPERVISOR);
    await wall.fill("#login-password", PASSWORD);
    await wall.press("#login-password", "Enter");
    await waitText(wall, "#who", "supervisor", "supervisor logged in");
    if (process.env.SHOTS) {
      // Retaking the README's pictures: let the demo handle a few calls first, so the
      // wallboard has handling times to show (the test proper does not wait).
      const handled = (t) => /\d/.test(t);
      await waitText(wall, "#queues-body .q-aht", handled, "a handling time on the wallboard", 90000).catch((e) => t.diagnostic(String(e.message)));
    }

    const desk = (pages.desk = await context.newPage());
    await desk.goto(`${url}/agent`, { timeout: WAIT });
    await waitText(desk, "#conn", exactly("connected"), "desk connection");
    assert.equal(await desk.locator("#desk").isVisible(), false, "only the login form before the login");
    await desk.fill("#login-user", AGENT);
    await desk.fill("#login-password", PASSWORD);
    await desk.fill("#login-station", STATION);
    await desk.press("#login-station", "Enter");
    await waitText(desk, "#who", `agent ${AGENT} at station ${STATION}`, "logged in at the desk");
    await desk.click("#ready-button", { timeout: WAIT });
    await waitText(desk, "#agent-state", exactly("ready"), "ready");
    await waitText(wall, `tr[data-agent="${AGENT}"] .agent-state`, "ready", "the wallboard sees the person ready");
    const ready = Date.now();

    // A simulated caller reaches the person: the pop, then Answer on the page (a headset).
    await waitText(desk, "#calls-body", "alerting", "a call rings at the desk within a minute of going ready", CALL_WAIT);
    t.diagnostic(`the call rang ${((Date.now() - ready) / 1000).toFixed(1)} s after going ready`);
    await waitText(desk, "#pop", "Caller", "the screen pop");
    await desk.click("#answer-button", { timeout: WAIT });
    await waitText(desk, "#calls-body", "connected", "answered");
    await waitText(desk, "#agent-state", exactly("busy"), "busy at the desk");
    await waitText(wall, `tr[data-agent="${AGENT}"] .agent-state`, "busy", "the wallboard sees the person busy");
    // The live call on the wallboard is with the person's station.
    await waitText(wall, "#live-body", `station ${STATION}`, "the wallboard's live calls show the person's call");
    await desk.waitForTimeout(6000); // talk a little: durations tick, Stats pushes count the answer, more callers come
    await desk.screenshot({ path: path.join(shots, "desk.png") });
    await wall.screenshot({ path: path.join(shots, "wallboard.png") });

    // Hang up by key: the call leaves the desk.
    await key(desk, "h");
    await waitText(desk, "#no-calls", "No calls.", "hung up", WAIT);
    await waitText(wall, `tr[data-agent="${AGENT}"] .agent-state`, (s) => !s.includes("busy"), "no longer busy on the wallboard");
    t.diagnostic(`the browser part took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    for (const [who, page] of Object.entries(pages)) {
      await page.screenshot({ path: path.join(shots, `demo-failed-${who}.png`), fullPage: true, timeout: 5000 }).catch(() => {});
    }
    t.diagnostic(`demo output:\n${serverLog.slice(-4000)}`);
    throw e;
  }
});
