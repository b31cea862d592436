//! The example CRM in C (ffi/examples/crm.c, with callbacks and in poll mode), the
//! C-level handle checks (ffi/tests/c/checks.c) and the thread race (ffi/tests/c/race.c),
//! built with gcc -Wall -Wextra -Werror under AddressSanitizer and UBSan, and under
//! ThreadSanitizer, against libhotline.so, run against a running `hotline serve`: the
//! `hotline` binary as a child process, on ffi/examples/center.toml copied to a temp dir
//! (the card simulator in signalling mode, a headset station, a scripted caller who
//! waits for an agent), its CTI link on a loopback port.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// target/<profile>/, where cargo put libhotline.so next to the test binary's deps/.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// Which sanitizer a C program is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum San {
    /// AddressSanitizer and UBSan.
    Address,
    /// ThreadSanitizer (the C side; libhotline itself is not instrumented).
    Thread,
}

/// Build a C program against the cdylib with warnings as errors and a sanitizer.
fn build_c(source: &str, name: &str) -> PathBuf {
    build_c_with(source, name, San::Address)
}

/// ThreadSanitizer's options: stop at the first report, and ignore what the (not
/// instrumented) Rust library does inside itself, whose own synchronisation TSan cannot
/// see; the C side, including the callbacks the library calls, is checked.
const TSAN_OPTIONS: &str = "halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1";

fn build_c_with(source: &str, name: &str, san: San) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = cdylib_dir();
    assert!(lib_dir.join("libhotline.so").exists(), "{} has no libhotline.so", lib_dir.display());
    let out = lib_dir.join(format!("c-{name}-{san:?}").to_lowercase());
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-g"]);
    match san {
        San::Address => cmd.args(["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]),
        San::Thread => cmd.args(["-fsanitize=thread"]),
    };
    let status = cmd
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join(source))
        .arg("-o")
        .arg(&out)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-lhotline", "-lpthread"])
        .status()
        .expect("gcc runs (install gcc)");
    assert!(status.success(), "gcc failed on {source} ({san:?})");
    out
}

/// Collects a child's stdout line by line on a thread.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line starting with `starts`, among those already seen or still to come: the
/// C program's event thread and main thread print in either order (a pop may come
/// before "ready").
fn wait_line(rx: &mpsc::Receiver<String>, starts: &str, seen: &mut Vec<String>) -> String {
    if let Some(line) = seen.iter().find(|l| l.starts_with(starts)) {
        return line.clone();
    }
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                seen.push(line.clone());
                if line.starts_with(starts) {
                    return line;
                }
            }
            Err(_) => panic!("no line starting with {starts:?}; the program printed {seen:#?}"),
        }
    }
}

fn finish(mut child: Child, seen: Vec<String>) -> std::process::ExitStatus {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().expect("wait for the C program");
    assert!(status.success(), "exit {status}\nstdout: {seen:#?}\nstderr:\n{err}");
    status
}

/// The installation the C programs run against: ffi/examples/center.toml (the card
/// simulator, a headset station, agent 1001, one scripted caller who waits for an
/// agent), with the link on port 0 of loopback instead of 7001; the test reads the port
/// back from serve's log. Its store and recordings go to serve's working directory, a
/// temp dir.
fn center() -> String {
    const FILE: &str = include_str!("../examples/center.toml");
    const PORT: &str = "tcp = \"127.0.0.1:7001\"";
    assert!(FILE.contains(PORT), "ffi/examples/center.toml has no `{PORT}`");
    FILE.replace(PORT, "tcp = \"127.0.0.1:0\"")
}

/// Build a target of the workspace with the cargo that runs the tests, into the same
/// target directory and profile (cargo builds a test's own crate as an rlib only, and
/// the `hotline` binary not at all).
fn cargo_build(what: &[&str]) {
    let profile_dir = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet"])
        .args(what)
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target/<profile>/"))
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => panic!("no profile directory in {}", profile_dir.display()),
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "`cargo build {}` failed: {status}", what.join(" "));
}

/// `libhotline.so` in target/<profile>/, built once per test run.
fn cdylib_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build(&["-p", "hotline-ffi", "--lib"]);
            target_dir()
        })
        .clone()
}

/// The `hotline` binary next to this test binary, built once per test run.
/// `HOTLINE_BIN` names another one instead (e.g. an installed release build).
fn hotline_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("HOTLINE_BIN") {
                return PathBuf::from(bin);
            }
            cargo_build(&["-p", "hotline", "--bin", "hotline"]);
            target_dir().join("hotline")
        })
        .clone()
}

/// `hotline serve --config FILE` as a child process, on [`center`] in a temp dir.
struct Serve {
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
    /// Serve's log (stderr), for the failure messages.
    log: Arc<Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Serve {
    fn start(name: &str) -> Serve {
        let dir = std::env::temp_dir().join(format!("hotline-c-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let config = dir.join("center.toml");
        std::fs::write(&config, center()).expect("write the installation file");
        let mut child = Command::new(hotline_bin())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(&dir)
            // On SIGTERM, the call in progress is released after a second.
            .args(["--drain-limit", "1"])
            .env("HOTLINE_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run `hotline serve`");
        let mut out = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap_or_else(|e| e.into_inner()).push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut serve = Serve {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            log,
            stdout: Some(stdout),
        };
        // "serving FILE: CTI link on 127.0.0.1:PORT, web pages on -"
        let deadline = Instant::now() + Duration::from_secs(30);
        serve.addr = loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("`hotline serve` reported no CTI link; log: {:#?}", serve.log()));
            if let Some(rest) = line.split("CTI link on ").nth(1) {
                let addr = rest.split([',', ' ']).next().unwrap_or_default();
                break addr.parse().unwrap_or_else(|_| panic!("an address in {line:?}"));
            }
        };
        serve
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// SIGTERM, as an operator would: serve drains (the call in progress has a second)
    /// and exits. Its exit status and stdout.
    fn stop(&mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("serve runs");
        let term =
            Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill(1) runs");
        assert!(term.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for serve") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`hotline serve` did not stop within 20 s of SIGTERM; log: {:#?}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = self.stdout.take().and_then(|t| t.join().ok()).unwrap_or_default();
        (status, out)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Run crm.c (built with `san`, in callback or poll mode) against its own `hotline
/// serve`: it gets the scripted caller's pop and answers; serve stops cleanly and its
/// store has the call, taken by agent 1001.
fn run_crm(san: San, poll: bool) {
    // One executable per variant: the tests run in parallel.
    let exe = build_c_with("examples/crm.c", if poll { "crm-poll" } else { "crm" }, san);
    let mut serve = Serve::start(&format!("crm-{san:?}-{poll}"));
    let mut cmd = Command::new(&exe);
    cmd.args(["127.0.0.1", &serve.addr.port().to_string(), "1001", "secret", "2001"]);
    if poll {
        cmd.arg("--poll");
    }
    if san == San::Thread {
        cmd.env("TSAN_OPTIONS", TSAN_OPTIONS);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run the C example");
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    assert!(wait_line(&rx, "connected to 127.0.0.1:", &mut seen).contains("libhotline 0.1.0"));
    wait_line(&rx, "agent 1001 ready at station:2001", &mut seen);

    // The simulated caller (at 1 s) waits in the queue until the agent is ready.
    let pop = wait_line(&rx, "screen pop: call ", &mut seen);
    assert!(pop.contains("from 01066668888 to 4008001000"), "{pop}");
    let call: u64 = pop["screen pop: call ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a call number in {pop:?}"));
    wait_line(&rx, "  previous contacts: ", &mut seen);
    // crm.c prints this only after the ESTABLISHED event at station:2001.
    assert_eq!(wait_line(&rx, "answered call ", &mut seen), format!("answered call {call}"));
    finish(child, seen);

    let (status, out) = serve.stop();
    assert!(status.success(), "serve exited with {status}; stdout {out}\nlog: {:#?}", serve.log());
    assert!(out.contains("stopped; 0 calls still in the engine"), "{out}");
    // The store has the call, taken by agent 1001.
    let store = hotline_cti::store::Store::open(serve.dir.join("hotline.db")).expect("the store");
    let contacts = store.previous_contacts("01066668888", 5).expect("query");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].call, call);
    assert_eq!(contacts[0].agent.as_deref(), Some("1001"), "{contacts:?}");
}

#[test]
fn the_c_crm_gets_the_scripted_callers_pop_from_hotline_serve_and_answers_the_call() {
    run_crm(San::Address, false);
}

#[test]
fn p12_8_the_c_crm_runs_under_threadsanitizer() {
    run_crm(San::Thread, false);
}

#[test]
fn p12_8_the_c_crm_in_poll_mode_runs_single_threaded_under_both_sanitizers() {
    run_crm(San::Address, true);
    run_crm(San::Thread, true);
}

/// race.c against its own `hotline serve`, built with `san`.
fn run_race(san: San) {
    let exe = build_c_with("tests/c/race.c", "race", san);
    let mut serve = Serve::start(&format!("race-{san:?}"));
    let mut cmd = Command::new(&exe);
    cmd.args(["127.0.0.1", &serve.addr.port().to_string(), "1001", "secret", "2001"]);
    if san == San::Thread {
        cmd.env("TSAN_OPTIONS", TSAN_OPTIONS);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run race.c");
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    wait_line(&rx, "phase 1:", &mut seen);
    wait_line(&rx, "phase 2: every thread got CLOSED", &mut seen);
    wait_line(&rx, "phase 3:", &mut seen);
    wait_line(&rx, "race: ok", &mut seen);
    finish(child, seen);
    let (status, out) = serve.stop();
    assert!(status.success(), "serve exited with {status}; stdout {out}\nlog: {:#?}", serve.log());
}

#[test]
fn p12_8_threads_racing_on_one_connection_under_addresssanitizer() {
    run_race(San::Address);
}

#[test]
fn p12_8_threads_racing_on_one_connection_under_threadsanitizer() {
    run_race(San::Thread);
}

/// The header is C99: a file that includes it compiles with -std=c99 -pedantic-errors,
/// and C++ (the header's `extern "C"`) too when g++ is there.
#[test]
fn p12_8_the_header_is_c99() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let dir = std::env::temp_dir().join(format!("hotline-c99-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join("c99.c");
    std::fs::write(
        &src,
        "#include \"hotline.h\"\n\
         #if HOTLINE_ABI_VERSION < 1\n#error no ABI version\n#endif\n\
         int main(void) { hotline_event ev; ev.kind = HOTLINE_EVENT_KIND_RECONNECTED; \
         return (int)ev.kind == 44 && HOTLINE_MAX_NAME == 256 ? 0 : 1; }\n",
    )
    .expect("write");
    let status = Command::new("gcc")
        .args(["-std=c99", "-pedantic-errors", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I"])
        .arg(&include)
        .arg(&src)
        .status()
        .expect("gcc runs");
    assert!(status.success(), "the header is not C99");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn null_and_stale_handles_are_refused_in_c_against_hotline_serve() {
    let exe = build_c("tests/c/checks.c", "checks");
    let mut serve = Serve::start("checks");
    let mut child = Command::new(&exe)
        .args(["127.0.0.1", &serve.addr.port().to_string(), "1001"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the C checks");
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    assert_eq!(wait_line(&rx, "0 failed", &mut seen), "0 failed");
    assert!(seen.iter().filter(|l| l.starts_with("ok: ")).count() >= 30, "{seen:#?}");
    finish(child, seen);
    let (status, out) = serve.stop();
    assert!(status.success(), "serve exited with {status}; stdout {out}\nlog: {:#?}", serve.log());
}
