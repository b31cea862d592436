//! Issue 13 point 1: every input that once crashed a parser (found by the fuzz targets
//! in `fuzz/`, or written by hand for a crash seen in the field) is replayed through the
//! same harness the fuzzer runs. Each must be handled without a panic or an abort, and
//! any error must say where.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fuzz-regressions").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("corpus file"))).collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    let inputs = corpus(target);
    assert!(!inputs.is_empty(), "no regression inputs for {target}");
    for (path, bytes) in inputs {
        eprintln!("{target}: {}", path.display());
        run(&bytes);
    }
}

#[test]
fn p13_1_config_regressions() {
    replay("config", harness::config);
}

#[test]
fn p13_1_flow_regressions() {
    replay("flow", harness::flow);
}

#[test]
fn p13_1_prompt_set_regressions() {
    replay("prompt_set", harness::prompt_set);
}

#[test]
fn p13_1_wav_regressions() {
    replay("wav", harness::wav);
}

#[test]
fn p13_1_link_json_regressions() {
    replay("link_json", harness::link_json);
}

#[test]
fn p13_1_caller_id_regressions() {
    replay("caller_id", harness::caller_id);
}

#[test]
fn p13_1_recording_repair_regressions() {
    replay("recording_repair", harness::recording_repair);
}
