// The agent desktop and the supervisor wallboard in a real browser (Debian's chromium
// driven by playwright-core): an agent logs in, a simulated call arrives, the pop shows
// the caller, the agent answers and transfers; a supervisor on a second page sees the
// agent's states change. Assertions are on visible text. On failure each page's
// screenshot goes to target/browser/.
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

before(async () => {
  mkdirSync(shots, { recursive: true });
  await startServer();
  userDataDir = mkdtempSync(path.join(tmpdir(), "hotline-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
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

    // A wrong password is refused, and the refusal is shown.
    await agent.goto(`${url}/agent`);
    await waitText(agent, "#conn", exactly("connected"), "desktop connection");
    await agent.fill("#login-user", "1001");
    await agent.fill("#login-password", "wrong");
    await agent.fill("#login-station", "2001");
    await agent.click("#login-button");
    await waitText(agent, "#messages", "Login refused: wrong user or password", "refusal of a wrong password");

    await agent.fill("#login-password", "lw-secret");
    await agent.click("#login-button");
    await waitText(agent, "#who", "agent 1001 at station 2001", "agent logged in");
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
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "ringing", "wallboard: 1001 ringing");
    await waitText(wall, "#live-body", "13800138000", "wallboard: live call");

    await agent.click("#answer-button");
    await waitText(agent, "#calls-body", "connected", "call connected");
    await waitText(wall, 'tr[data-agent="1001"] .agent-state', "busy", "wallboard: 1001 busy");

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
  } catch (e) {
    await screenshotAll("transfer");
    t.diagnostic(`server log:\n${serverLog.slice(-4000)}`);
    throw e;
  }
});
