//! `kill -9` of a running center loses nothing, end to end with a real process.
//!
//! The test re-runs its own binary as the child (the ignored test
//! `child_runs_the_center_until_killed`, selected by an environment variable): the child
//! runs `serve::start` on an installation file in a temp dir, with the card simulator in
//! audio mode, simulated agents at the desktops and scripted callers. Two short calls end
//! before the kill; two long calls are being talked (and recorded) when the test sends
//! SIGKILL. The installation is then started again in-process, which runs the store's
//! recovery and the recorder's crash repair, and the store's read API and the WAV files
//! are checked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotline_cti::serve::{self, ServeOptions};
use hotline_cti::store::{CallFilter, CallRow, RecordingFilter, RecordingRow, Store};
use hotline_drivers::dsp::wav::read_wav_file;
use hotline_drivers::SAMPLE_RATE;
use hotline_tests::{no_link, two_phone_center, with_store};

/// The environment variable that makes the child test run the center.
const CHILD_DIR: &str = "HOTLINE_CRASH_CHILD_DIR";

/// Two short calls that end before the kill, two long ones in progress at the kill.
/// The simulated agents are ready by 2 s.
const CALLERS: &str = r#"
[[simulator.inbound]]
at_s = 3
trunk = "1/1"
ani = "13800000001"
dnis = "4008001000"
caller = { patience_s = 30, script = ["wait_agent", "talk 3", "hang_up"] }

[[simulator.inbound]]
at_s = 3.5
trunk = "1/1"
ani = "13800000002"
dnis = "4008001000"
caller = { patience_s = 30, script = ["wait_agent", "talk 4", "hang_up"] }

[[simulator.inbound]]
at_s = 11
trunk = "1/1"
ani = "13900000003"
dnis = "4008001000"
caller = { patience_s = 30, script = ["wait_agent", "talk 300", "hang_up"] }

[[simulator.inbound]]
at_s = 11.5
trunk = "1/1"
ani = "13900000004"
dnis = "4008001000"
caller = { patience_s = 30, script = ["wait_agent", "talk 300", "hang_up"] }
"#;

const ENDED: [&str; 2] = ["13800000001", "13800000002"];
const LONG: [&str; 2] = ["13900000003", "13900000004"];

fn installation(dir: &Path, callers: bool) -> String {
    let center = two_phone_center(11) + if callers { CALLERS } else { "" };
    with_store(&center, &dir.join("hotline.db"), &dir.join("recordings"))
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("the clock is after 1970")
}

/// The child: run the center until killed (bounded, so a lost child ends by itself).
#[test]
#[ignore = "the child process of the kill -9 test; it runs only when that test starts it"]
fn child_runs_the_center_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let dir = PathBuf::from(dir);
    let mut opts = ServeOptions::new(installation(&dir, true), "center.toml".into(), wall_ms());
    opts.sim_agents = true;
    opts.link_override = Some(no_link);
    let running = serve::start(opts).expect("the child's center starts");
    std::thread::sleep(Duration::from_secs(120));
    // Not killed in time: the parent has failed; end without a clean stop either.
    drop(running);
    std::process::exit(3);
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The store as another process sees it; `None` while the child has not created it.
fn open_store(path: &Path) -> Option<Store> {
    if !path.exists() {
        return None;
    }
    Store::open(path).ok()
}

fn calls_of(store: &Store, caller: &str) -> Vec<CallRow> {
    let f = CallFilter { caller: Some(caller.into()), ..CallFilter::default() };
    store.calls(&f).expect("calls")
}

fn recordings_of(store: &Store, caller: &str) -> Vec<RecordingRow> {
    let f = RecordingFilter { caller: Some(caller.into()), ..RecordingFilter::default() };
    store.recordings(&f).expect("recordings")
}

/// What the parent waits for before the kill: the short calls closed with their
/// recordings indexed as finished, the long calls answered and their recordings a few
/// seconds into the file.
fn ready_to_kill(store: &Store) -> Result<(), String> {
    for c in ENDED {
        let calls = calls_of(store, c);
        if calls.first().map(|r| r.state.as_str()) != Some("closed") {
            return Err(format!("the call from {c} is not closed yet: {calls:?}"));
        }
        let recs = recordings_of(store, c);
        if recs.is_empty() || !recs.iter().all(|r| r.finished) {
            return Err(format!("the recording of {c} is not finished yet: {recs:?}"));
        }
    }
    for c in LONG {
        let calls = calls_of(store, c);
        let Some(call) = calls.first() else { return Err(format!("no call from {c} yet")) };
        let events = store.call_events(call.key()).expect("events");
        if !events.iter().any(|e| e.kind == "answered") {
            return Err(format!("the call from {c} is not answered yet: {events:?}"));
        }
        let recs = recordings_of(store, c);
        let Some(rec) = recs.first() else { return Err(format!("no recording of {c} yet")) };
        let part = PathBuf::from(format!("{}.part", rec.path));
        // Header and at least two seconds of stereo PCM16 checkpointed to the file.
        let len = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if len < 44 + 2 * 4 * u64::from(SAMPLE_RATE) {
            return Err(format!("{} holds {len} bytes so far", part.display()));
        }
    }
    Ok(())
}

/// Reads a recording and checks it is stereo, has sound on both sides and lasts
/// about `expect_s` (when given). Returns its length in seconds.
fn check_playable(path: &str, expect_s: Option<f64>) -> f64 {
    let (spec, samples) =
        read_wav_file(path).unwrap_or_else(|e| panic!("{path} does not read as a WAV file: {e}"));
    assert_eq!(spec.channels, 2, "{path}: stereo (caller left, agent right)");
    assert_eq!(spec.sample_rate, SAMPLE_RATE, "{path}");
    let secs = samples.len() as f64 / 2.0 / f64::from(SAMPLE_RATE);
    let loud = |side: usize| samples.iter().skip(side).step_by(2).filter(|s| s.unsigned_abs() > 300).count();
    assert!(loud(0) > 800, "{path}: the caller's side (left) has sound ({} loud samples)", loud(0));
    assert!(loud(1) > 800, "{path}: the agent's side (right) has sound ({} loud samples)", loud(1));
    if let Some(expect) = expect_s {
        assert!((secs - expect).abs() <= 1.0, "{path}: {secs:.2} s of audio for {expect:.2} s of talk");
    }
    secs
}

#[test]
fn a_center_killed_with_sigkill_keeps_every_ended_call_and_repairs_what_was_in_progress() {
    let dir = std::env::temp_dir().join(format!("hotline-crash-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("hotline.db");

    let exe = std::env::current_exe().expect("the test binary");
    let child = Command::new(exe)
        .args([
            "child_runs_the_center_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, &dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("the child starts");
    let mut child = Killed(child);

    // Wait (bounded) until the short calls are stored as ended and the long ones run.
    let end = Instant::now() + Duration::from_secs(40);
    let mut last = String::from("the store was never created");
    loop {
        if let Some(status) = child.0.try_wait().expect("child status") {
            panic!("the child ended by itself ({status}) before the kill; last: {last}");
        }
        if let Some(store) = open_store(&db) {
            match ready_to_kill(&store) {
                Ok(()) => break,
                Err(why) => last = why,
            }
        }
        assert!(Instant::now() < end, "not ready to kill within 40 s: {last}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Child::kill is SIGKILL on Unix: no destructor, no flush, no clean stop.
    child.0.kill().expect("SIGKILL");
    let status = child.0.wait().expect("the child is reaped");
    assert!(!status.success(), "the child was killed, not ended: {status}");
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    // Before the restart: the long calls' recordings are `.part` files, open in the store.
    let store = Store::open(&db).expect("the store after the kill");
    let mut before = Vec::new();
    for c in LONG {
        let recs = recordings_of(&store, c);
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert!(!recs[0].finished, "{c}: the recording was in progress at the kill: {recs:?}");
        assert!(Path::new(&format!("{}.part", recs[0].path)).exists());
        before.push(calls_of(&store, c)[0].clone());
    }
    drop(store);

    // Restart: recovery and repair run before anything new is written.
    let mut opts = ServeOptions::new(installation(&dir, false), "center.toml".into(), wall_ms());
    opts.link_override = Some(no_link);
    let running = serve::start(opts).expect("the center starts again after the kill");
    running.stop().expect("stops cleanly");

    let store = Store::open(&db).expect("the store after the restart");

    // Every call that ended before the kill: closed, with its agent and times.
    let mut agents = Vec::new();
    for (c, talk) in ENDED.iter().zip([3.0, 4.0]) {
        let calls = calls_of(&store, c);
        assert_eq!(calls.len(), 1, "{calls:?}");
        let call = &calls[0];
        assert_eq!(call.state, "closed", "{call:?}");
        assert_eq!(call.queue.as_deref(), Some("service"), "{call:?}");
        let agent = call.agent.clone().unwrap_or_else(|| panic!("{c}: no agent in {call:?}"));
        agents.push(agent);
        let answered = call.answered_ms.expect("answered");
        let ended = call.ended_ms.expect("ended");
        assert!(call.arrived_ms <= answered && answered < ended, "{call:?}");
        let talked = (ended - answered) as f64 / 1000.0;
        assert!((talked - talk).abs() < 1.5, "{c}: {talked} s of talk for a {talk} s script");
        assert_ne!(call.outcome.as_deref(), Some("cut"), "{call:?}");

        // Its recording: finished, not cut short, playable, as long as the talk.
        let recs = recordings_of(&store, c);
        assert_eq!(recs.len(), 1, "{recs:?}");
        let rec = &recs[0];
        assert!(rec.finished && !rec.cut_short, "{rec:?}");
        assert_eq!((rec.run, rec.call), (Some(call.run), Some(call.call)), "indexed with its call: {rec:?}");
        assert_eq!(rec.agent, call.agent, "{rec:?}");
        let secs = check_playable(&rec.path, Some(talked));
        let indexed = rec.duration_ms.expect("a finished recording has its length") as f64 / 1000.0;
        assert!((indexed - secs).abs() < 0.1, "{rec:?}: the index says {indexed} s, the file {secs} s");
    }
    agents.sort();
    assert_eq!(agents, ["1001", "1002"], "each short call went to one of the two agents");

    // The calls in progress at the kill: marked cut by the crash, answered, ended after
    // their answer.
    for (c, was) in LONG.iter().zip(&before) {
        let call = store.call(was.key()).expect("query").expect("still there");
        assert_eq!(call.state, "cut", "{call:?}");
        assert_eq!(call.outcome.as_deref(), Some("cut"), "{call:?}");
        assert_eq!(call.released_side.as_deref(), Some("system"), "{call:?}");
        let answered = call.answered_ms.unwrap_or_else(|| panic!("{c}: answered before the kill: {call:?}"));
        assert!(call.ended_ms.is_some_and(|e| e >= answered), "{call:?}");

        // Its recording: repaired (no `.part`), playable, marked cut short.
        let recs = recordings_of(&store, c);
        assert_eq!(recs.len(), 1, "{recs:?}");
        let rec = &recs[0];
        assert!(rec.finished && rec.cut_short, "marked cut short: {rec:?}");
        assert!(!Path::new(&format!("{}.part", rec.path)).exists(), "{}.part was repaired", rec.path);
        let secs = check_playable(&rec.path, None);
        assert!(secs >= 2.0, "{}: {secs} s kept of a call talked for more", rec.path);
        let indexed = rec.duration_ms.map(|d| d as f64 / 1000.0);
        assert!(
            indexed.is_some_and(|d| (d - secs).abs() < 0.1),
            "{rec:?}: the index gives the repaired length ({secs:.2} s)"
        );
    }

    // Agent state intervals: all closed.
    let intervals = store.agent_intervals(0, i64::MAX, None).expect("intervals");
    assert!(intervals.iter().any(|i| i.agent == "1001") && intervals.iter().any(|i| i.agent == "1002"));
    for i in &intervals {
        assert!(i.to_ms.is_some_and(|t| t >= i.from_ms), "an interval left open: {i:?}");
    }
    let busy = |a: &str| intervals.iter().any(|i| i.agent == a && i.state == "busy");
    assert!(busy("1001") && busy("1002"), "the talk is in the agents' states: {intervals:#?}");

    // Nothing left to recover: a second restart finds a clean store.
    drop(store);
    let mut store = Store::open(&db).expect("store");
    assert_eq!(store.recover().expect("recover"), hotline_cti::store::Recovered::default());
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
