//! `hotline demo --fast` and `hotline flow try` on the demo's files, as a newcomer
//! runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn hotline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-cli-demo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// examples/demo.toml with its files under `dir` and prompts as tones.
fn demo_in(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("examples/demo.toml")).unwrap();
    let flows = repo().join("examples/flows/demo.toml").canonicalize().unwrap();
    let text = text
        .replace("\"examples/flows/demo.toml\"", &format!("{:?}", flows.display().to_string()))
        .replace("\"var/", &format!("\"{}/var/", dir.display()))
        .replace("prompt_dir =", "voice = \"tones\"\nprompt_dir =");
    let path = dir.join("demo.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn demo_fast_runs_the_day_in_virtual_time_and_prints_its_reports() {
    let dir = scratch("fast");
    let cfg = demo_in(&dir);
    let out = hotline()
        .args(["demo", "--fast", "--duration", "1800", "--config"])
        .arg(&cfg)
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "the day in virtual time",
        "9 simulated agents",
        "== Queues",
        "== Agents",
        "== Missed calls",
        "== IVR",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    // Calls were offered and answered; the simulated agents (not the people's) took them.
    let calls: u64 = stdout
        .lines()
        .find_map(|l| l.split_once(" calls, 9 simulated agents").map(|(n, _)| n.trim().parse().unwrap()))
        .expect("the calls line");
    assert!((100..400).contains(&calls), "{calls} calls in half an hour:\n{stdout}");
    let agents = stdout.split("== Agents").nth(1).unwrap().split("== Missed").next().unwrap();
    assert!(agents.contains("1004") && agents.contains("1012"), "{agents}");
    assert!(!agents.contains("1001 "), "the people's agents stay logged out:\n{agents}");
    // The after-hours line's callers went through its flow.
    let ivr = stdout.split("== IVR").nth(1).unwrap();
    assert!(ivr.contains("after_hours"), "{ivr}");
    assert!(dir.join("var/demo/hotline-day.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flow_try_uses_the_installations_time_zone_and_says_which_time_rule_it_took() {
    let dir = scratch("time");
    let flow = dir.join("hours.toml");
    std::fs::write(
        &flow,
        "[flow.main]\nstart = \"hours\"\n\n[flow.main.hours]\ntype = \"time\"\n\
         rules = [{ days = [\"mon-fri\"], hours = [\"09:00-18:00\"], next = \"open\" }]\ndefault = \"closed\"\n\n\
         [flow.main.open]\ntype = \"hangup\"\ncause = 16\n\n[flow.main.closed]\ntype = \"hangup\"\ncause = 17\n",
    )
    .unwrap();
    let config = repo().join("examples/demo.toml");
    let run = |at: &str| {
        let out = hotline()
            .args(["flow", "try"])
            .arg(&flow)
            .arg("--config")
            .arg(&config)
            .args(["--at", at])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // Thursday 10:00 in the demo's time zone (+08:00): open.
    let out = run("2026-12-03 10:00");
    assert!(out.contains("clock: 2026-12-03 10:00:00 UTC+08:00"), "{out}");
    assert!(
        out.contains("main.hours at Thu 10:00: rule 1 (mon,tue,wed,thu,fri 09:00-18:00) -> open"),
        "{out}"
    );
    assert!(out.contains("path: hours -> open"), "{out}");
    // Saturday: no rule open, the default.
    let out = run("2026-12-05 10:00");
    assert!(out.contains("main.hours at Sat 10:00: no rule open -> default closed"), "{out}");
    assert!(out.contains("path: hours -> closed"), "{out}");
    // Without --config the clock is UTC, as serve's without [engine] utc_offset.
    let out = hotline().args(["flow", "try"]).arg(&flow).args(["--at", "2026-12-03 20:00"]).output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("UTC+00:00 (UTC: no --config"), "{out}");
    assert!(out.contains("main.hours at Thu 20:00: no rule open -> default closed"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
