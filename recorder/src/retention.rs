//! Retention: how long recordings are kept, and what goes when the disk fills.
//!
//! Every recording has a class (`normal` 30 days, `complaint` 90 days by default) that
//! sets its *minimum* retention, and optionally a maximum after which it is deleted in
//! any case. A supervisor's tag that names a class lengthens the minimum to that class's
//! (tagging a call "complaint" keeps it 90 days). When the disk is used beyond the high
//! watermark, the oldest recordings past their minimum are deleted until use is back
//! under the low watermark, and an alarm is raised; if that is not enough, the alarm
//! says so, and nothing still within its minimum is touched.
//!
//! [`plan`] is pure (the store feeds it from its index and carries out the plan);
//! [`disk_usage`] reads the file system.

use std::io;
use std::path::{Path, PathBuf};

const DAY_MS: i64 = 86_400_000;

/// A retention class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionClass {
    pub name: String,
    /// Kept at least this many days, whatever the disk.
    pub min_days: u32,
    /// Deleted after this many days, if set.
    pub max_days: Option<u32>,
}

/// The retention rules.
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionPolicy {
    pub classes: Vec<RetentionClass>,
    /// The class of a recording whose class is unknown.
    pub default_class: String,
    /// Used fraction of the disk (0..1) at which the oldest deletable recordings go.
    pub high_watermark: f64,
    /// Used fraction to get back under once deleting starts.
    pub low_watermark: f64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            classes: vec![
                RetentionClass { name: "normal".into(), min_days: 30, max_days: None },
                RetentionClass { name: "complaint".into(), min_days: 90, max_days: None },
            ],
            default_class: "normal".into(),
            high_watermark: 0.90,
            low_watermark: 0.85,
        }
    }
}

impl RetentionPolicy {
    fn class(&self, name: &str) -> Option<&RetentionClass> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// A recording's minimum age before it may be deleted, in days: its class's, or its
    /// tag's class's if that is longer.
    pub fn min_days(&self, class: &str, tag: Option<&str>) -> u32 {
        let own = self.class(class).or_else(|| self.class(&self.default_class)).map_or(0, |c| c.min_days);
        let tagged = tag.and_then(|t| self.class(t)).map_or(0, |c| c.min_days);
        own.max(tagged)
    }

    /// Its maximum age, if its class has one (and a tag does not keep it longer).
    pub fn max_days(&self, class: &str, tag: Option<&str>) -> Option<u32> {
        let own = self.class(class).or_else(|| self.class(&self.default_class))?.max_days?;
        Some(own.max(self.min_days(class, tag)))
    }
}

/// A recording as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub path: PathBuf,
    pub class: String,
    pub tag: Option<String>,
    /// When it started, Unix milliseconds.
    pub started_unix_ms: i64,
    /// Its size on disk.
    pub bytes: u64,
}

/// A file system's size and what is left.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DiskUsage {
    pub total: u64,
    /// Free to unprivileged users.
    pub available: u64,
}

impl DiskUsage {
    /// The used fraction, 0..1.
    pub fn used_fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.total - self.available.min(self.total)) as f64 / self.total as f64
        }
    }
}

/// Reads the file system holding `dir` (statvfs).
pub fn disk_usage(dir: &Path) -> io::Result<DiskUsage> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    let unit = s.fragment_size() as u64;
    Ok(DiskUsage { total: s.blocks() as u64 * unit, available: s.blocks_available() as u64 * unit })
}

/// The disk was above the high watermark.
#[derive(Clone, Debug, PartialEq)]
pub struct Alarm {
    /// Used fraction before and (once the plan is carried out) after.
    pub used_before: f64,
    pub used_after: f64,
    /// Bytes the plan frees (expired recordings included).
    pub freed: u64,
    /// The plan does not get under the low watermark: every recording left is within
    /// its minimum retention. Add disk or shorten the classes.
    pub short: bool,
}

impl std::fmt::Display for Alarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recording disk {:.1}% used, above the watermark; deleting the oldest recordings past their \
             minimum retention frees {} MB, leaving {:.1}% used",
            self.used_before * 100.0,
            self.freed / 1_000_000,
            self.used_after * 100.0
        )?;
        if self.short {
            f.write_str(
                "; still above the low watermark: every recording left is within its minimum retention",
            )?;
        }
        Ok(())
    }
}

/// What to delete, and whether to raise the alarm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Oldest first.
    pub delete: Vec<PathBuf>,
    pub alarm: Option<Alarm>,
}

/// Decides what to delete now: every recording past its class's maximum, and if the disk
/// is above the high watermark, the oldest past their minimum until it is under the low
/// one.
pub fn plan(items: &[Held], policy: &RetentionPolicy, now_unix_ms: i64, disk: DiskUsage) -> Plan {
    let age_days = |h: &Held| (now_unix_ms - h.started_unix_ms).max(0) / DAY_MS;
    let mut order: Vec<&Held> = items.iter().collect();
    order.sort_by_key(|h| (h.started_unix_ms, h.path.clone()));
    let mut out = Plan::default();
    let mut freed = 0u64;
    let mut rest = Vec::new();
    for h in order {
        let tag = h.tag.as_deref();
        if policy.max_days(&h.class, tag).is_some_and(|m| age_days(h) >= i64::from(m)) {
            freed += h.bytes;
            out.delete.push(h.path.clone());
        } else {
            rest.push(h);
        }
    }
    let used = |freed: u64| DiskUsage { total: disk.total, available: disk.available.saturating_add(freed) };
    if used(freed).used_fraction() <= policy.high_watermark {
        return out;
    }
    for h in rest {
        if used(freed).used_fraction() <= policy.low_watermark {
            break;
        }
        if age_days(h) >= i64::from(policy.min_days(&h.class, h.tag.as_deref())) {
            freed += h.bytes;
            out.delete.push(h.path.clone());
        }
    }
    let after = used(freed).used_fraction();
    out.alarm = Some(Alarm {
        used_before: disk.used_fraction(),
        used_after: after,
        freed,
        short: after > policy.low_watermark,
    });
    out
}
