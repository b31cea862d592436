//! The store under faults (issue 13, points 4-6): a full or failing disk loses no
//! record and raises `disk_full` until it recovers; a recording whose file could not be
//! written is not listed; retention runs with the watermark's alarm; a clean stop
//! leaves nothing for crash recovery; one process per store.
//!
//! The full disk is injected (`WriterOptions::fault`: every commit fails as SQLite does
//! on `SQLITE_FULL`), so no test needs root or a small file system.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};
use hotline_cti::alarm::{Alarms, SystemAlarm, DISK_FULL};
use hotline_cti::cdr::{AgentInterval, CallKey, CallOpened, Direction, Step, StepKind};
use hotline_cti::retention::Sweep;
use hotline_cti::store::{
    CallFilter, RecordingFilter, RecordingReason, RecordingStarted, Store, StoreErrorKind, StoreLock,
    StoreOp, StoreWriter, WriterOptions,
};
use hotline_recorder::retention::{DiskUsage, RetentionPolicy};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn key(call: u64) -> CallKey {
    CallKey { run: 5_000, call }
}

/// A call's operations as the engine sends them: opened, two steps.
fn call_ops(call: u64) -> Vec<StoreOp> {
    let at = 10_000 + call as i64 * 100;
    vec![
        StoreOp::CallOpened(CallOpened {
            key: key(call),
            direction: Direction::Inbound,
            caller: Some(format!("1380000{call:04}")),
            called: Some("4008001000".into()),
            arrived_ms: at,
        }),
        StoreOp::Step(Step {
            key: key(call),
            at_ms: at + 10,
            kind: StepKind::Queued,
            device: None,
            agent: None,
            detail: Some("service".into()),
        }),
        StoreOp::Step(Step {
            key: key(call),
            at_ms: at + 20,
            kind: StepKind::Answered,
            device: Some("station:2001".into()),
            agent: Some("1001".into()),
            detail: None,
        }),
    ]
}

fn next_alarm(rx: &Receiver<SystemAlarm>) -> SystemAlarm {
    rx.recv_timeout(Duration::from_secs(10)).expect("an alarm change within 10 s")
}

fn flush(tx: &crossbeam_channel::Sender<StoreOp>) -> Result<(), crossbeam_channel::RecvTimeoutError> {
    let (reply, done) = bounded(1);
    tx.send(StoreOp::Flush(reply)).unwrap();
    done.recv_timeout(Duration::from_secs(10))
}

#[test]
fn p13_4_a_full_disk_loses_no_record_raises_the_alarm_and_clears_it_on_recovery() {
    let dir = temp("full");
    let db = dir.join("hotline.db");
    let fault = Arc::new(AtomicBool::new(false));
    let alarms = Arc::new(Alarms::new());
    let (watch, changes) = bounded(16);
    alarms.watch(watch);
    let opts = WriterOptions {
        alarms: Some(alarms.clone()),
        fault: Some(fault.clone()),
        // Small, so that the spool's bound is reached and the queue behind it is used.
        spool_capacity: Some(50),
        close_grace: None,
    };
    let (tx, writer, _) = StoreWriter::spawn_with(&db, opts).unwrap();
    for call in 0..10 {
        for op in call_ops(call) {
            tx.send(op).unwrap();
        }
    }
    flush(&tx).expect("written while the disk has room");

    fault.store(true, Ordering::SeqCst);
    for call in 10..100 {
        for op in call_ops(call) {
            tx.send(op).unwrap();
        }
    }
    let raised = next_alarm(&changes);
    assert!(raised.raised && raised.alarm == DISK_FULL && raised.severity == "major", "{raised:?}");
    assert!(raised.text.contains("cannot write"), "{raised:?}");
    assert_eq!(alarms.active().len(), 1);
    // Nothing of it is in the file while the disk is full; a flush waits.
    let (reply, done) = bounded(1);
    tx.send(StoreOp::Flush(reply)).unwrap();
    assert!(done.recv_timeout(Duration::from_millis(300)).is_err(), "a flush cannot succeed on a full disk");
    let reader = Store::open(&db).unwrap();
    assert_eq!(reader.calls(&CallFilter::default()).unwrap().len(), 10);

    // The disk has room again: everything held is written, in order, and the alarm clears.
    fault.store(false, Ordering::SeqCst);
    done.recv_timeout(Duration::from_secs(10)).expect("the held records are written once the disk has room");
    let cleared = next_alarm(&changes);
    assert!(!cleared.raised && cleared.alarm == DISK_FULL, "{cleared:?}");
    assert!(alarms.active().is_empty());
    let calls = reader.calls(&CallFilter::default()).unwrap();
    assert_eq!(calls.len(), 100, "every call opened during the full disk is there");
    for c in &calls {
        assert_eq!(reader.call_events(key(c.call)).unwrap().len(), 2, "call {}: both steps", c.call);
    }
    drop(tx);
    let stats = writer.join().unwrap();
    assert_eq!(stats.lost, 0, "{stats:?}");
    assert_eq!(stats.recoveries, 1, "{stats:?}");
    assert!(stats.spooled_max <= 50, "the spool stays within its bound: {stats:?}");
    assert!(stats.failed_batches >= 1, "{stats:?}");
}

#[test]
fn p13_4_a_store_closed_on_a_full_disk_says_what_it_could_not_write() {
    let dir = temp("closed-full");
    let db = dir.join("hotline.db");
    let fault = Arc::new(AtomicBool::new(true));
    let opts = WriterOptions {
        alarms: None,
        fault: Some(fault),
        spool_capacity: None,
        close_grace: Some(Duration::from_millis(300)),
    };
    let (tx, writer, _) = StoreWriter::spawn_with(&db, opts).unwrap();
    for op in call_ops(1) {
        tx.send(op).unwrap();
    }
    drop(tx);
    let stats = writer.join().unwrap();
    assert_eq!(stats.lost, 3, "{stats:?}");
}

#[test]
fn p13_4_a_recording_whose_file_could_not_be_written_is_not_listed() {
    let dir = temp("rec-failed");
    let db = dir.join("hotline.db");
    let started = |id: u64| {
        StoreOp::RecordingStarted(RecordingStarted {
            id,
            call: Some(key(1)),
            agent: Some("1001".into()),
            queue: Some("service".into()),
            caller: None,
            started_ms: 1_000 + id as i64,
            path: dir.join(format!("{id}.wav")).display().to_string(),
            format: "wav-pcm16".into(),
            reason: RecordingReason::Policy,
            retention: "normal".into(),
        })
    };
    let mut s = Store::open(&db).unwrap();
    s.apply(&[
        started(1),
        started(2),
        StoreOp::RecordingFailed {
            id: 1,
            message: "x/1.wav.part: No space left on device (os error 28)".into(),
        },
        StoreOp::RecordingFinished { id: 2, duration_ms: 4_000, dropped: 0, cut_short: false },
    ])
    .unwrap();
    let listed: Vec<u64> = s.recordings(&RecordingFilter::default()).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![2]);
    let r1 = s.recording(1).unwrap();
    assert!(!r1.present());
    assert!(r1.failed.as_deref().is_some_and(|m| m.contains("No space left")), "{r1:?}");
    assert_eq!(r1.duration_ms, None);
    assert!(s.recording(2).unwrap().present());
    // Its id is not given again.
    assert_eq!(s.next_recording_id().unwrap(), 3);
}

#[test]
fn p13_6_a_clean_close_leaves_nothing_for_crash_recovery() {
    let dir = temp("closing");
    let db = dir.join("hotline.db");
    let mut ops = call_ops(1);
    ops.push(StoreOp::AgentStateOpened(AgentInterval {
        agent: "1001".into(),
        state: "ready".into(),
        reason: None,
        from_ms: 10_000,
        to_ms: None,
    }));
    ops.push(StoreOp::Closing { at_ms: 20_000 });
    let (tx, writer, recovered) = StoreWriter::spawn(&db).unwrap();
    assert_eq!(recovered, Default::default());
    for op in ops {
        tx.send(op).unwrap();
    }
    drop(tx);
    writer.join().unwrap();
    let (tx, writer, recovered) = StoreWriter::spawn(&db).unwrap();
    assert_eq!(recovered, Default::default(), "a closed store has nothing to recover");
    drop(tx);
    writer.join().unwrap();
    let s = Store::open(&db).unwrap();
    let calls = s.calls(&CallFilter::default()).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, "cut", "a call the stop could not wait for is cut by the system");
    assert_eq!(calls[0].ended_ms, Some(20_000));
}

#[test]
fn p13_6_one_process_per_store() {
    let dir = temp("lock");
    let db = dir.join("hotline.db");
    let first = StoreLock::acquire(&db, "hotline demo --duration 60").unwrap();
    let e = StoreLock::acquire(&db, "hotline serve").unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Locked);
    let pid = format!("pid {}", std::process::id());
    assert!(e.message.contains(&pid) && e.message.contains("hotline demo --duration 60"), "{}", e.message);
    assert!(e.message.contains(&db.display().to_string()), "{}", e.message);
    drop(first);
    StoreLock::acquire(&db, "hotline serve").expect("free again once the holder is gone");
}

/// The disk as the sweep sees it: used fraction in thousandths.
static USED_PERMILLE: AtomicU64 = AtomicU64::new(0);

fn fake_disk(_: &std::path::Path) -> std::io::Result<DiskUsage> {
    let used = USED_PERMILLE.load(Ordering::SeqCst);
    Ok(DiskUsage { total: 1_000_000, available: (1000 - used) * 1000 })
}

#[test]
fn p13_5_retention_deletes_the_oldest_past_their_minimum_and_alarms_when_the_watermark_cannot_be_met() {
    let dir = temp("retention");
    let db = dir.join("hotline.db");
    let rec = dir.join("recordings");
    std::fs::create_dir_all(&rec).unwrap();
    const DAY: i64 = 86_400_000;
    let now = 100 * DAY;
    let mut s = Store::open(&db).unwrap();
    // Recording 1: 40 days old (past normal's 30); 2: 10 days old; 3: 40 days, complaint (90).
    for (id, age, class) in [(1u64, 40, "normal"), (2, 10, "normal"), (3, 40, "complaint")] {
        let path = rec.join(format!("{id}.wav"));
        std::fs::write(&path, vec![0u8; 50_000]).unwrap();
        s.apply(&[
            StoreOp::RecordingStarted(RecordingStarted {
                id,
                call: None,
                agent: Some("1001".into()),
                queue: None,
                caller: None,
                started_ms: now - age * DAY,
                path: path.display().to_string(),
                format: "wav-pcm16".into(),
                reason: RecordingReason::Policy,
                retention: class.into(),
            }),
            StoreOp::RecordingFinished { id, duration_ms: 3_000, dropped: 0, cut_short: false },
        ])
        .unwrap();
    }
    let (store_tx, writer, _) = StoreWriter::spawn(&db).unwrap();
    let alarms = Arc::new(Alarms::new());
    let sweep = Sweep {
        policy: RetentionPolicy::default(),
        dir: rec.clone(),
        store_path: db.clone(),
        store: store_tx.clone(),
        alarms: alarms.clone(),
        disk: Some(fake_disk),
    };
    // Under the watermark: nothing goes.
    USED_PERMILLE.store(500, Ordering::SeqCst);
    let r = sweep.sweep(now).unwrap();
    assert!(r.deleted.is_empty() && !r.short, "{r:?}");
    // 95 % used: recording 1 goes (the only one past its minimum); the rest is within
    // its minimum, so the disk stays above the low watermark: the alarm.
    USED_PERMILLE.store(950, Ordering::SeqCst);
    let r = sweep.sweep(now).unwrap();
    assert_eq!(r.deleted, vec![1]);
    assert!(r.short, "{r:?}");
    assert!(!rec.join("1.wav").exists() && rec.join("2.wav").exists() && rec.join("3.wav").exists());
    let active = alarms.active();
    assert_eq!(active.len(), 1);
    assert!(active[0].alarm == DISK_FULL && active[0].text.contains("minimum retention"), "{active:?}");
    flush(&store_tx).unwrap();
    let listed: Vec<u64> = s.recordings(&RecordingFilter::default()).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![3, 2], "a deleted recording is not listed (oldest first)");
    assert_eq!(s.recording(1).unwrap().deleted_ms, Some(now));
    // The disk has room again: the alarm clears.
    USED_PERMILLE.store(600, Ordering::SeqCst);
    let r = sweep.sweep(now).unwrap();
    assert!(r.deleted.is_empty() && !r.short);
    assert!(alarms.active().is_empty());
    drop(sweep);
    drop(store_tx);
    writer.join().unwrap();
    s.apply(&[]).unwrap();
}
