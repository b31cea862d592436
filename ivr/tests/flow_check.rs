//! `hotline flow check` on broken flows: each file in data/broken/ is rejected with the
//! messages in its `.expected` file (file:line:col: what is wrong and what was
//! expected), and the demo flow passes.

use std::path::{Path, PathBuf};

use hotline_ivr::check::check;
use hotline_ivr::{Flows, PromptSet, Prompts};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// The English set's text; its WAV directory does not exist, so prompts are known by
/// their text only.
fn prompts() -> Prompts {
    let set = PromptSet::load(&root().join("prompts/en.toml"), "/nonexistent/prompts/en").expect("en.toml");
    Prompts::new(set)
}

/// Every message for a flow file, as `hotline flow check` prints them.
fn messages(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    match Flows::parse(&text, &name) {
        Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
        Ok(flows) => check(&flows, Some(&prompts())).iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn each_broken_flow_is_rejected_with_the_expected_messages() {
    let dir = root().join("ivr/tests/data/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("broken dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "the broken set is there");
    for f in files {
        let got = messages(&f);
        let expected_path = f.with_extension("expected");
        // FLOW_CHECK_BLESS=1 rewrites the expected files (review the diff before committing).
        if std::env::var_os("FLOW_CHECK_BLESS").is_some() {
            std::fs::write(&expected_path, got.join("\n") + "\n").expect("bless");
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!got.is_empty(), "{} passed the check", f.display());
        assert_eq!(got, expected, "{}", f.display());
    }
}

#[test]
fn the_demo_flow_passes_the_check() {
    let got = messages(&root().join("examples/flows/demo.toml"));
    assert_eq!(got, Vec::<String>::new());
}

#[test]
fn a_prompt_directory_with_the_wav_counts_even_without_text() {
    let dir = std::env::temp_dir().join(format!("hotline-ivr-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wellcome.wav"), b"").unwrap();
    std::fs::write(dir.join("good_bye.wav"), b"").unwrap();
    let set = PromptSet::load(&root().join("prompts/en.toml"), &dir).unwrap();
    let text = std::fs::read_to_string(root().join("ivr/tests/data/broken/missing_prompt.toml")).unwrap();
    let flows = Flows::parse(&text, "missing_prompt.toml").unwrap();
    assert_eq!(check(&flows, Some(&Prompts::new(set))), vec![]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flow_labels_its_variables_for_the_agents_screen() {
    let text = r#"
[flow.main]
start = "ask"
labels = { ticket = "Repair ticket", status = "Repair status" }

[flow.main.ask]
type = "hangup"
"#;
    let flows = Flows::parse(text, "labels.toml").expect("valid");
    let labels = &flows.flows["main"].labels;
    assert_eq!(labels.get("ticket").map(String::as_str), Some("Repair ticket"));
    assert_eq!(labels.get("status").map(String::as_str), Some("Repair status"));
    assert!(!flows.flows["main"].nodes.contains_key("labels"), "labels is a setting, not a node");

    let bad = text.replace("\"Repair status\"", "42");
    let problems = Flows::parse(&bad, "labels.toml").expect_err("a label is text");
    assert!(
        problems.iter().any(|p| p.message.contains("the label of `status` must be a string") && p.line == 4),
        "{problems:?}"
    );
}
