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

fn input(target: &str, name: &str) -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fuzz-regressions").join(target).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The TOML parser stops at a dotted key of 80 parts without saying where: every
/// reader of a TOML file names the line and column of that key.
#[test]
fn p13_1_a_too_deeply_dotted_key_is_located_in_every_toml_file() {
    let config = input("config", "dotted_key_of_100_parts.toml");
    let problems = hotline_cti::install::check_installation(&config, "fuzz.toml");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].line, problems[0].column), (2, 1), "{}", problems[0]);
    assert!(
        problems[0].message.contains("recursion limit: a dotted key has 80 or more parts"),
        "{}",
        problems[0]
    );
    let e = hotline_drivers::config::parse(&config, "fuzz.toml").unwrap_err();
    assert!(e.message().starts_with("fuzz.toml:2:1: recursion limit"), "{}", e.message());
    let e =
        hotline_cti::store::StoreConfig::from_toml(&config, std::path::Path::new("fuzz.toml")).unwrap_err();
    assert!(e.starts_with("fuzz.toml:2:1: TOML syntax: recursion limit"), "{e}");

    let header = input("config", "table_header_of_100_parts.toml");
    let problems = hotline_cti::install::check_installation(&header, "fuzz.toml");
    assert!(problems.iter().all(|p| (p.line, p.column) == (1, 2)), "{problems:?}");

    let flow = input("flow", "dotted_key_of_100_parts.toml");
    let problems = hotline_ivr::Flows::parse(&flow, "fuzz.toml").unwrap_err();
    assert!(problems.iter().any(|p| p.line == 4 && p.message.contains("recursion limit")), "{problems:?}");

    let set = input("prompt_set", "dotted_key_of_100_parts.toml");
    let e = hotline_ivr::PromptSet::parse(&set, "fuzz.toml", "prompts").unwrap_err();
    assert!(e.starts_with("fuzz.toml:3:1: recursion limit"), "{e}");
}

/// Nesting the JSON parser refuses is an error that says where, not a stack overflow.
#[test]
fn p13_1_deeply_nested_link_json_is_refused_with_its_place() {
    let text = input("link_json", "arrays_nested_100000_deep.json");
    let e = hotline_cti::link::wire::parse_request(&text).unwrap_err();
    assert!(e.message.contains("recursion limit") && e.message.contains("column"), "{}", e.message);
}

/// An ID3 tag that claims more bytes than the file has: the repair used to "cut" the
/// file after the tag, making it longer (and `len - new_len` underflowed).
#[test]
fn p13_1_a_cut_id3_tag_is_left_as_it_is_with_a_problem() {
    let data = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("data/fuzz-regressions/recording_repair/id3_tag_longer_than_the_file.mp3.part"),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("hotline-p13-1-id3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let part = dir.join("call.mp3.part");
    std::fs::write(&part, &data).unwrap();
    let r = hotline_recorder::repair::repair_file(&part);
    let problem = r.problem.clone().unwrap_or_default();
    assert!(problem.contains("offset 6: the ID3 tag claims"), "{r:?}");
    assert_eq!(std::fs::read(&part).unwrap(), data);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A channel range costs a few bytes of the file and up to 65535 channels: the file may
/// name at most `MAX_CHANNELS` in all, and a range that repeats channels is one problem,
/// not one per channel (6.8 kB of config once took more than 2 GB).
#[test]
fn p13_1_channel_ranges_are_bounded() {
    for name in [
        "trunk_group_repeats_a_65535_port_range_400_times.toml",
        "trunk_group_of_400_cards_of_65535_ports.toml",
    ] {
        let text = input("config", name);
        let problems = hotline_cti::install::check_installation(&text, "fuzz.toml");
        assert!(!problems.is_empty() && problems.len() <= 400, "{name}: {} problems", problems.len());
        assert!(
            problems.iter().all(|p| p.line >= 1 && p.column >= 1),
            "{name}: {:?}",
            problems.iter().take(3).collect::<Vec<_>>()
        );
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("more than 65536 channels in trunk groups and stations")),
            "{name}: {:?}",
            problems.iter().take(3).collect::<Vec<_>>()
        );
    }
}

/// Every port of a station range gets its number written at the extension's width: an
/// extension of 8000 leading zeros once took 65535 copies of 8 kB.
#[test]
fn p13_1_a_long_extension_is_refused_where_it_is() {
    let text = input("config", "station_extension_of_8000_leading_zeros.toml");
    let problems = hotline_cti::install::check_installation(&text, "fuzz.toml");
    assert!(
        problems
            .iter()
            .any(|p| (p.line, p.column) == (3, 13)
                && p.message == "extension of 8001 digits: expected at most 20"),
        "{problems:?}"
    );
}
