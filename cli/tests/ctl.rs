//! `hotline ctl` against a running `hotline serve`, as an operator uses it; where the
//! installation file is found; the logs `serve` writes; the reports it leaves behind,
//! as tables, CSV and one HTML page.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn hotline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotline"));
    // The tests say where the installation is; nothing from the caller's environment.
    c.env_remove("HOTLINE_CONFIG").env_remove("HOTLINE_LOG_FORMAT").env_remove("HOTLINE_LOG");
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-ctl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small installation: one PRI span, two phones, one queue, one agent (not logged
/// in), two callers on the simulator; the link on free loopback ports.
fn installation(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-2"

[simulator]
media = "signalling"
seed = 5

[[simulator.inbound]]
at_s = 1
trunk = "1/1"
ani = "13800138000"
dnis = "4008001000"
caller = {{ patience_s = 600, script = ["wait_agent", "talk 5", "hang_up"] }}

[[simulator.inbound]]
at_s = 2
trunk = "1/1"
ani = "13900139000"
dnis = "4008001000"
caller = {{ patience_s = 600, script = ["wait_agent", "talk 5", "hang_up"] }}

[[trunk_group]]
name = "pri"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-2"
extension = "2001"

[[queue]]
name = "service"
wrap_up = 1

[[access_number]]
dnis = "4008001000"
target = "queue:service"

[[agent]]
id = "1001"
name = "Li Wei"
password = "pw"
queues = {{ service = 5 }}

[store]
path = "{store}"

[recording]
dir = "{rec}"

[link]
tcp = "127.0.0.1:0"
http = "127.0.0.1:0"
"#,
        store = dir.join("hotline.db").display(),
        rec = dir.join("recordings").display(),
    );
    let path = dir.join("hotline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `hotline serve` on the installation, its logs in a file; waits (bounded) for its
/// control socket.
fn serve(dir: &Path, config: &Path, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let child = hotline()
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("hotline serve starts");
    let socket = dir.join("hotline.ctl");
    let end = Instant::now() + Duration::from_secs(60);
    while !socket.exists() {
        assert!(
            Instant::now() < end,
            "no control socket: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Wait (bounded) for the server to exit by itself.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("serve did not stop after the drain");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctl_talks_to_a_running_serve_found_from_the_config_and_drains_it() {
    let dir = scratch("serve");
    let config = installation(&dir);
    let mut child = serve(&dir, &config, &[]);

    // Found through $HOTLINE_CONFIG, as an operator on the server would.
    let status =
        |args: &[&str]| hotline().arg("ctl").args(args).env("HOTLINE_CONFIG", &config).output().unwrap();
    // Both callers are in by the time `status` counts two calls today.
    let end = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let o = status(&["status"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "ctl status failed: {err}");
        if out.contains("; 2 today") {
            break out;
        }
        assert!(Instant::now() < end, "the two callers never arrived:\n{out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for expected in [
        "taking calls",
        "span 1/1: 30 channels",
        "no alarm",
        "stations  2 phones",
        "agents    0 logged in of 1",
        "queues    service:",
        &format!("store     {}", dir.join("hotline.db").display()),
        "disk      store",
    ] {
        assert!(out.contains(expected), "status lacks {expected:?}:\n{out}");
    }

    // --config finds the same socket; --socket names it.
    let o = hotline().args(["ctl", "agents", "--config"]).arg(&config).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success() && out.contains("1001") && out.contains("logged out"), "{out}{err}");
    let o = hotline().args(["ctl", "queues", "--socket"]).arg(dir.join("hotline.ctl")).output().unwrap();
    assert!(text(&o).0.contains("service"), "{:?}", text(&o));

    // Refusals say what is wrong, with exit code 3.
    let o = status(&["kick", "9999"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).1.contains("no agent 9999"), "{:?}", text(&o));
    let o = status(&["force", "1001", "ready"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).1.contains("1001 is logged out"), "{:?}", text(&o));

    // The shell reads the same commands from a pipe.
    let mut sh = hotline()
        .arg("ctl")
        .env("HOTLINE_CONFIG", &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = sh.stdin.take().unwrap();
        stdin.write_all(b"clock\ncalls\nquit\n").unwrap();
    }
    let o = sh.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("server time") && out.contains("access 4008001000"), "{out}");
    assert!(out.contains("13800138000") && out.contains("13900139000"), "the two waiting callers: {out}");

    // Drain with no time allowed: the server stops by itself and removes its socket.
    let o = status(&["drain", "0"]);
    assert!(o.status.success() && text(&o).0.contains("draining"), "{:?}", text(&o));
    let exit = wait_exit(&mut child);
    assert!(exit.success(), "serve exited with {exit}");
    assert!(!dir.join("hotline.ctl").exists(), "the socket is removed");
    let o = status(&["status"]);
    assert_eq!(o.status.code(), Some(3), "nobody answers now");
    assert!(text(&o).1.contains("no server answers"), "{:?}", text(&o));

    // Logs to a file: plain text without colour codes, the control requests in them.
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(!log.contains('\x1b'), "colour codes in a log file:\n{log}");
    assert!(log.contains("INFO") && log.contains("control: drain 0"), "{log}");

    // The two callers were cut by the shutdown: missed calls of that kind, with the
    // call numbers `ctl calls` showed.
    let o = hotline()
        .args(["report", "missed", "--format", "csv", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .output()
        .unwrap();
    let (csv, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(csv.starts_with("call,run,arrived,caller,called,queue,kind,waited_s,agents_rung"), "{csv}");
    assert!(rows.iter().all(|r| r.starts_with("1,") || r.starts_with("2,")), "{csv}");
    assert!(rows.iter().all(|r| r.contains(",shutdown,") || r.contains(",no_agent,")), "{csv}");

    // The same period as one HTML page: inline CSS and SVG, nothing fetched, no script.
    let o = hotline()
        .args(["report", "queue", "--format", "html", "--title", "Test <center>", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .output()
        .unwrap();
    let (html, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"), "{html}");
    // Calls and service level by hour as charts; occupancy says nobody logged in.
    assert!(html.contains("<style>") && html.matches("<svg").count() == 2, "two charts");
    assert!(html.contains("No agent was logged in during this period."));
    assert!(html.contains("Test &lt;center&gt;"), "the title is escaped");
    for banned in ["<script", "src=", "href=", "http://", "https://", "@import", "url("] {
        assert!(!html.contains(banned), "the page refers to something outside it: {banned}");
    }
    for expected in
        ["Calls by hour", "Service level by hour, against the target", "Agent occupancy", "<td>service</td>"]
    {
        assert!(html.contains(expected), "the page lacks {expected:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_writes_json_lines_when_asked() {
    let dir = scratch("json");
    let config = installation(&dir);
    let mut child = serve(&dir, &config, &["--log-format", "json"]);
    let o = hotline().args(["ctl", "drain", "0", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(wait_exit(&mut child).success());
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{log}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some() && v.get("timestamp").is_some(), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("control: drain 0")), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_path_says_which_file_and_how_it_was_found() {
    let dir = scratch("path");
    let config = installation(&dir);
    let o = hotline().args(["config", "path"]).env("HOTLINE_CONFIG", &config).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(text(&o).0, format!("{} (from $HOTLINE_CONFIG)\n", config.display()));

    let o = hotline().args(["config", "path", "--config"]).arg(&config).output().unwrap();
    assert_eq!(text(&o).0, format!("{} (from --config)\n", config.display()));

    let missing = dir.join("nope.toml");
    let o = hotline().args(["config", "path"]).env("HOTLINE_CONFIG", &missing).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no such file (named by $HOTLINE_CONFIG)"), "{:?}", text(&o));

    // Without either: the system path, which this machine may or may not have.
    let o = hotline().args(["config", "path"]).output().unwrap();
    if Path::new("/etc/hotline/hotline.toml").is_file() {
        assert_eq!(text(&o).0, "/etc/hotline/hotline.toml (the default path)\n");
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o).1.contains("/etc/hotline/hotline.toml"), "{:?}", text(&o));
    }

    // `config check` and the reports find it the same way.
    let o = hotline().args(["config", "check"]).env("HOTLINE_CONFIG", &config).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
