//! The `[recording]` table: what a well-formed one gives, and where a bad one is wrong.

use std::path::PathBuf;

use hotline_drivers::dsp::wav::Encoding;
use hotline_recorder::config::LayoutKind;
use hotline_recorder::{Format, RecordingConfig};

#[test]
fn a_file_without_a_recording_table_gets_the_defaults() {
    let c = RecordingConfig::parse("[engine]\nseed = 1\n", "hotline.toml").unwrap();
    assert_eq!(c, RecordingConfig::default());
    assert_eq!(c.format, Format::Wav(Encoding::Pcm16));
    assert_eq!(c.retention.min_days("complaint", None), 90);
}

#[test]
fn a_full_recording_table_is_read() {
    let text = r#"
[[card]]
driver = "sim"

[recording]
dir = "/var/spool/hotline/rec"
format = "mp3"
mp3_kbps = 16
layout = "mono"
writers = 4
queue_depth = 500
high_watermark = 80
low_watermark = 70

[recording.classes.complaint]
min_days = 120
[recording.classes.training]
min_days = 7
max_days = 14
"#;
    let c = RecordingConfig::parse(text, "hotline.toml").unwrap();
    assert_eq!(c.dir, PathBuf::from("/var/spool/hotline/rec"));
    assert_eq!((c.format, c.layout), (Format::Mp3 { kbps: 16 }, LayoutKind::Mono));
    assert_eq!((c.recorder.writers, c.recorder.queue_depth), (4, 500));
    assert!((c.retention.high_watermark - 0.8).abs() < 1e-9);
    assert_eq!(c.retention.min_days("complaint", None), 120);
    assert_eq!(c.retention.max_days("training", None), Some(14));
    assert_eq!(c.retention.min_days("normal", None), 30, "classes not named keep their defaults");
    // 2024-02-29 12:00 UTC
    assert_eq!(c.path_for(42, 1_709_208_000_000), PathBuf::from("/var/spool/hotline/rec/2024/02/29/42.mp3"));
}

#[test]
fn each_mistake_is_reported_with_its_line_and_column() {
    let text = "[recording]\nformat = \"ogg\"\nencoding = \"g729\"\nmp3_kbps = 17\nwriters = 0\nhigh_watermark = 150\n";
    let errs = RecordingConfig::parse(text, "hotline.toml").unwrap_err();
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(msgs.iter().any(|m| m.starts_with("hotline.toml:2:10: unknown format \"ogg\"")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.starts_with("hotline.toml:3:12: unknown encoding 'g729'")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.starts_with("hotline.toml:4:12: mp3_kbps 17")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.starts_with("hotline.toml:5:11: writers 0")), "{msgs:#?}");
    assert!(msgs.iter().any(|m| m.starts_with("hotline.toml:6:18: high_watermark 150")), "{msgs:#?}");
}

#[test]
fn an_unknown_key_and_a_wrong_type_are_located() {
    let errs = RecordingConfig::parse("[recording]\ndirectory = \"x\"\n", "f.toml").unwrap_err();
    assert_eq!((errs[0].line, errs[0].column), (2, 1), "{errs:?}");
    assert!(errs[0].message.contains("unknown field `directory`"), "{errs:?}");
    let errs = RecordingConfig::parse("[recording]\nwriters = \"two\"\n", "f.toml").unwrap_err();
    assert_eq!((errs[0].line, errs[0].column), (2, 11), "{errs:?}");
    let errs = RecordingConfig::parse("[recording\n", "f.toml").unwrap_err();
    assert!(errs[0].message.starts_with("TOML syntax"), "{errs:?}");
}
