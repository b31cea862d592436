//! The retention sweep of a running installation (`hotline serve`, `hotline demo`): a
//! thread of its own, never the engine's, that applies the recording retention classes
//! and the disk watermark ([`hotline_recorder::retention::plan`]) to the recording
//! index.
//!
//! Every [`CHECK_EVERY`] it reads how full the recording disk is (one `statvfs`); it
//! plans in full (the index, each file's size) at the start, once an hour for the
//! classes' maximum ages, and whenever the disk is above the high watermark. Files the
//! plan names are deleted and their index lines marked deleted (through the store
//! writer). When the plan cannot get the disk under the low watermark (everything left
//! is within its minimum retention) `disk_full` is raised; it clears on the first sweep
//! that can. While a recording could not be written for want of space (the recorder's
//! `disk_full`), it looks every second and clears that as soon as the disk has room.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hotline_recorder::retention::{disk_usage, plan, DiskUsage, Held, RetentionPolicy};

use crate::alarm::{Alarms, DISK_FULL};
use crate::store::{RecordingFilter, Store, StoreOp};

/// How often the disk is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);
/// How often the classes' maximum ages are applied when the disk is not above the
/// watermark.
pub const PLAN_EVERY: Duration = Duration::from_secs(3600);

/// How often the disk is looked at while a recording could not be written for want of
/// space.
pub const RECHECK_FULL: Duration = Duration::from_secs(1);

/// Free space that counts as room again for recordings: 5 % of the disk, at most 64 MB.
fn room(d: DiskUsage) -> u64 {
    (d.total / 20).min(64_000_000)
}

/// What the sweep needs.
pub struct Sweep {
    pub policy: RetentionPolicy,
    /// `[recording] dir`: the disk to watch.
    pub dir: PathBuf,
    /// The store, for reading the index.
    pub store_path: PathBuf,
    /// The store writer, for marking deleted recordings.
    pub store: Sender<StoreOp>,
    pub alarms: Arc<Alarms>,
    /// Tests: the disk's figures instead of `statvfs`.
    pub disk: Option<fn(&std::path::Path) -> std::io::Result<DiskUsage>>,
}

impl std::fmt::Debug for Sweep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sweep")
            .field("dir", &self.dir)
            .field("store_path", &self.store_path)
            .finish_non_exhaustive()
    }
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SweepResult {
    pub deleted: Vec<u64>,
    pub freed: u64,
    /// The watermark cannot be met.
    pub short: bool,
}

impl Sweep {
    /// Run on a thread until `stop` is dropped (or sent to).
    pub fn spawn(self, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name("hotline-retention".into()).spawn(move || self.run(stop))
    }

    fn run(self, stop: Receiver<()>) {
        // The recordings folder of a fresh installation may not exist yet: make it (as
        // a sweep would) so the first disk check does not warn about it.
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            tracing::warn!("retention: cannot make {}: {e}", self.dir.display());
        }
        let mut last_plan: Option<Instant> = None;
        let mut last_check: Option<Instant> = None;
        loop {
            if last_check.map_or(true, |t| t.elapsed() >= CHECK_EVERY) {
                last_check = Some(Instant::now());
                let due = last_plan.map_or(true, |t| t.elapsed() >= PLAN_EVERY);
                let above = match self.usage() {
                    Ok(d) => d.used_fraction() > self.policy.high_watermark,
                    Err(e) => {
                        tracing::warn!("retention: cannot read the disk of {}: {e}", self.dir.display());
                        false
                    }
                };
                if due || above {
                    last_plan = Some(Instant::now());
                    if let Err(e) = self.sweep(crate::link::now_unix_ms()) {
                        tracing::warn!("retention: {e}");
                    }
                }
            }
            // A recording failed for want of space: the alarm clears as soon as the
            // disk has room again, not only when the next recording is finished.
            let recorder_full = self.alarms.seen_by(DISK_FULL, "recorder");
            if recorder_full {
                if let Ok(d) = self.usage() {
                    if d.available >= room(d) {
                        let text = format!(
                            "the recording disk has room again ({} MB free)",
                            d.available / 1_000_000
                        );
                        self.alarms.clear(DISK_FULL, "recorder", &text);
                    }
                }
            }
            let wait = if recorder_full {
                RECHECK_FULL
            } else {
                CHECK_EVERY.saturating_sub(last_check.map_or(Duration::ZERO, |t| t.elapsed()))
            };
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    fn usage(&self) -> std::io::Result<DiskUsage> {
        match self.disk {
            Some(f) => f(&self.dir),
            None => disk_usage(&self.dir),
        }
    }

    /// One sweep now: plan, delete, index, alarm.
    pub fn sweep(&self, now_unix_ms: i64) -> Result<SweepResult, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let disk = self.usage().map_err(|e| format!("the disk of {}: {e}", self.dir.display()))?;
        let store = Store::open(&self.store_path).map_err(|e| e.to_string())?;
        let rows = store.recordings(&RecordingFilter::default()).map_err(|e| e.to_string())?;
        let mut ids: HashMap<PathBuf, u64> = HashMap::new();
        let mut held = Vec::new();
        for r in rows.into_iter().filter(|r| r.present()) {
            // A file already gone (deleted by hand) is nothing to free.
            let Ok(meta) = std::fs::metadata(&r.path) else { continue };
            let path = PathBuf::from(&r.path);
            ids.insert(path.clone(), r.id);
            held.push(Held {
                path,
                class: r.retention,
                tag: r.tag,
                started_unix_ms: r.started_ms,
                bytes: meta.len(),
            });
        }
        let p = plan(&held, &self.policy, now_unix_ms, disk);
        let mut out = SweepResult::default();
        let sizes: HashMap<&PathBuf, u64> = held.iter().map(|h| (&h.path, h.bytes)).collect();
        for path in &p.delete {
            match std::fs::remove_file(path) {
                Ok(()) => {
                    out.deleted.push(ids[path]);
                    out.freed += sizes.get(path).copied().unwrap_or(0);
                }
                Err(e) => tracing::warn!("retention: cannot delete {}: {e}", path.display()),
            }
        }
        if !out.deleted.is_empty() {
            tracing::info!(
                "retention: deleted {} recording(s), {} MB",
                out.deleted.len(),
                out.freed / 1_000_000
            );
            let op = StoreOp::RecordingsDeleted { ids: out.deleted.clone(), at_ms: now_unix_ms };
            if self.store.send_timeout(op, Duration::from_secs(5)).is_err() {
                tracing::warn!("retention: the store did not take the deleted recordings' index lines");
            }
        }
        match &p.alarm {
            Some(a) if a.short => {
                out.short = true;
                let text = format!("{a}: add disk or shorten the retention classes ([recording.classes])");
                self.alarms.raise(DISK_FULL, "retention", &text);
            }
            Some(a) => {
                tracing::warn!("retention: {a}");
                self.alarms.clear(DISK_FULL, "retention", "the recording disk is back under its watermark");
            }
            None => {
                self.alarms.clear(DISK_FULL, "retention", "the recording disk is back under its watermark")
            }
        }
        Ok(out)
    }
}
