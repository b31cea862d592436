//! Retention scenarios: classes, tags, expiry and the disk watermark.

use std::path::PathBuf;

use hotline_recorder::retention::{disk_usage, plan, DiskUsage, Held, RetentionClass, RetentionPolicy};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_700_000_000_000;
const GB: u64 = 1_000_000_000;

fn held(name: &str, class: &str, tag: Option<&str>, age_days: i64, bytes: u64) -> Held {
    Held {
        path: PathBuf::from(format!("/rec/{name}.wav")),
        class: class.into(),
        tag: tag.map(Into::into),
        started_unix_ms: NOW - age_days * DAY,
        bytes,
    }
}

fn names(p: &[PathBuf]) -> Vec<String> {
    p.iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn below_the_watermark_nothing_is_deleted_and_no_alarm_is_raised() {
    let items = [held("old", "normal", None, 400, GB)];
    let p = plan(&items, &RetentionPolicy::default(), NOW, DiskUsage { total: 100 * GB, available: 50 * GB });
    assert!(p.delete.is_empty());
    assert_eq!(p.alarm, None);
}

#[test]
fn above_the_watermark_the_oldest_past_their_minimum_go_first_and_the_alarm_is_raised() {
    let items = [
        held("young", "normal", None, 10, 4 * GB), // within 30 days: kept
        held("complaint", "complaint", None, 60, 4 * GB), // within 90 days: kept
        held("mid", "normal", None, 40, 4 * GB),
        held("oldest", "normal", None, 100, 4 * GB),
        held("older", "normal", None, 70, 4 * GB),
    ];
    // 93% used: deleting stops once under 85%, i.e. after freeing 8 GB.
    let p = plan(&items, &RetentionPolicy::default(), NOW, DiskUsage { total: 100 * GB, available: 7 * GB });
    assert_eq!(names(&p.delete), ["oldest", "older"]);
    let alarm = p.alarm.unwrap();
    assert_eq!((alarm.freed, alarm.short), (8 * GB, false));
    assert!((alarm.used_before - 0.93).abs() < 1e-9 && (alarm.used_after - 0.85).abs() < 1e-9);
    assert!(alarm.to_string().contains("93.0% used"), "{alarm}");
}

#[test]
fn a_supervisors_complaint_tag_keeps_a_normal_call_for_90_days() {
    let items =
        [held("tagged", "normal", Some("complaint"), 45, GB), held("plain", "normal", Some("good"), 45, GB)];
    let p = plan(&items, &RetentionPolicy::default(), NOW, DiskUsage { total: 10 * GB, available: 0 });
    assert_eq!(names(&p.delete), ["plain"]);
    let alarm = p.alarm.unwrap();
    assert!(alarm.short, "the tagged call cannot go, so the disk stays above the watermark");
    assert!(alarm.to_string().contains("within its minimum retention"));
}

#[test]
fn a_class_with_a_maximum_is_deleted_when_it_expires_whatever_the_disk() {
    let mut policy = RetentionPolicy::default();
    policy.classes.push(RetentionClass { name: "training".into(), min_days: 7, max_days: Some(14) });
    let items = [
        held("expired", "training", None, 15, GB),
        held("fresh", "training", None, 13, GB),
        held("unknown-class", "nonesuch", None, 500, GB), // default class: no maximum
    ];
    let p = plan(&items, &policy, NOW, DiskUsage { total: 100 * GB, available: 90 * GB });
    assert_eq!(names(&p.delete), ["expired"]);
    assert_eq!(p.alarm, None);
}

#[test]
fn the_free_space_of_the_temp_directory_can_be_read() {
    let d = disk_usage(&std::env::temp_dir()).unwrap();
    assert!(d.total > 0 && d.available <= d.total);
    assert!(disk_usage(std::path::Path::new("/nonexistent/hotline")).is_err());
}
