//! The example CRM in C (ffi/examples/crm.c) and the C-level handle checks
//! (ffi/tests/c/checks.c), built with gcc -Wall -Wextra -Werror under AddressSanitizer
//! and UBSan against libhotline.so, run against a real link server and engine on
//! loopback.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Center;
use hotline_drivers::{ChannelId, EventKind};

/// target/<profile>/, where cargo put libhotline.so next to the test binary's deps/.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// Build a C program against the cdylib with warnings as errors and the sanitizers.
fn build_c(source: &str, name: &str) -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = target_dir();
    assert!(
        lib_dir.join("libhotline.so").exists(),
        "{} has no libhotline.so; build with `cargo test -p hotline-ffi`",
        lib_dir.display()
    );
    let out = lib_dir.join(format!("c-{name}"));
    let status = Command::new("gcc")
        .args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-fsanitize=address,undefined")
        .arg("-fno-sanitize-recover=undefined")
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
    assert!(status.success(), "gcc failed on {source}");
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

fn wait_line(rx: &mpsc::Receiver<String>, starts: &str, seen: &mut Vec<String>) -> String {
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

#[test]
fn the_c_crm_prints_the_screen_pop_and_answers_the_call() {
    let center = Center::start();
    let exe = build_c("examples/crm.c", "crm");
    let mut child = Command::new(&exe)
        .args(["127.0.0.1", &center.port.to_string(), "1001", "secret", "2001"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the C example");
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    assert!(wait_line(&rx, "connected to 127.0.0.1:", &mut seen).contains("libhotline 0.1.0"));
    wait_line(&rx, "agent 1001 ready at station:2001", &mut seen);

    // The agent wears a headset: the station is off hook when the call arrives.
    center.card(EventKind::OffHook { ch: ChannelId::fxs(1, 1) });
    center.card(EventKind::Offered {
        ch: ChannelId::e1(1, 1, 1),
        ani: Some("01066668888".into()),
        dnis: "4008001000".into(),
        category: Default::default(),
    });
    let pop = wait_line(&rx, "screen pop: call ", &mut seen);
    assert!(pop.contains("from 01066668888 to 4008001000"), "{pop}");
    let call: u64 = pop["screen pop: call ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a call number in {pop:?}"));
    assert!(wait_line(&rx, "  previous contacts: ", &mut seen).ends_with("[]"));
    assert_eq!(wait_line(&rx, "answered call ", &mut seen), format!("answered call {call}"));
    finish(child, seen);
}

#[test]
fn null_and_stale_handles_are_refused_in_c() {
    let center = Center::start();
    let exe = build_c("tests/c/checks.c", "checks");
    let mut child = Command::new(&exe)
        .args(["127.0.0.1", &center.port.to_string(), "1001"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the C checks");
    let rx = lines(&mut child);
    let mut seen = Vec::new();
    assert_eq!(wait_line(&rx, "0 failed", &mut seen), "0 failed");
    assert!(seen.iter().filter(|l| l.starts_with("ok: ")).count() >= 30, "{seen:#?}");
    finish(child, seen);
}
