//! The store on its own: schema versions, bad files, the writer's group commit, the
//! recording index, voicemail, schedules and the history the link server asks for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::bounded;
use hotline_cti::cdr::{CallKey, CallOpened, Cdr, Direction, Outcome, Side, VoicemailNote};
use hotline_cti::store::{
    CallFilter, RecordingFilter, RecordingReason, RecordingStarted, Store, StoreConfig, StoreErrorKind,
    StoreOp, StoreWriter, VoicemailFilter,
};

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("hotline-store-{name}-{}.db", std::process::id()));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
    }
    p
}

fn closed_call(call: u64, caller: &str, agent: Option<&str>, arrived_ms: i64, answered: bool) -> Cdr {
    Cdr {
        key: CallKey { run: 1_000, call },
        direction: Direction::Inbound,
        caller: Some(caller.into()),
        called: Some("100".into()),
        location: None,
        vip: false,
        queue: Some("sales".into()),
        agent: agent.map(Into::into),
        arrived_ms,
        ivr_entered_ms: None,
        ivr_left_ms: None,
        queued_ms: Some(arrived_ms),
        rung_ms: None,
        answered_ms: answered.then_some(arrived_ms + 5_000),
        ended_ms: arrived_ms + 60_000,
        released_by: Some("trunk:1/1/1".into()),
        released_side: Side::Caller,
        cause: 16,
        outcome: if answered { Outcome::Answered } else { Outcome::Missed },
        missed: None,
        timed_out: false,
        holds: 0,
        hold_ms: 0,
        transfers: 0,
        conferences: 0,
        recordings: vec![],
        data: BTreeMap::new(),
        legs: vec![],
    }
}

fn write(path: &Path, ops: Vec<StoreOp>) -> hotline_cti::store::WriterStats {
    let (tx, handle, _) = StoreWriter::spawn(path).unwrap();
    for op in ops {
        tx.send(op).unwrap();
    }
    drop(tx);
    handle.join().unwrap()
}

#[test]
fn a_new_store_has_the_current_schema_and_reopening_changes_nothing() {
    let path = temp("schema");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), Store::SCHEMA_VERSION);
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), Store::SCHEMA_VERSION);
}

#[test]
fn a_store_from_a_newer_hotline_is_refused_untouched() {
    let path = temp("newer");
    drop(Store::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(c);
    let e = Store::open(&path).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Schema);
    assert!(e.message.contains("99") && e.message.contains("newer"), "{e}");
}

#[test]
fn a_file_that_is_not_a_store_says_so_and_is_left_alone() {
    let path = temp("garbage");
    std::fs::write(&path, b"this is a WAV file, honest, not a database at all............").unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = Store::open(&path).unwrap_err();
    assert!(e.message.contains(&path.display().to_string()), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn the_writer_commits_what_is_queued_in_few_transactions() {
    let path = temp("batch");
    let mut ops = Vec::new();
    for i in 0..5_000u64 {
        ops.push(StoreOp::CallOpened(CallOpened {
            key: CallKey { run: 1_000, call: i + 1 },
            direction: Direction::Inbound,
            caller: Some(format!("0105{i:07}")),
            called: Some("100".into()),
            arrived_ms: 1_000 + i as i64,
        }));
        ops.push(StoreOp::CallClosed(Box::new(closed_call(
            i + 1,
            &format!("0105{i:07}"),
            Some("1001"),
            1_000 + i as i64,
            true,
        ))));
    }
    let stats = write(&path, ops);
    assert_eq!(stats.ops, 10_000);
    assert!(stats.transactions < 100, "group commit: {stats:?}");
    let s = Store::open(&path).unwrap();
    let calls = s.calls(&CallFilter::default()).unwrap();
    assert_eq!(calls.len(), 5_000);
    assert!(calls.iter().all(|c| c.state == "closed"));
}

#[test]
fn previous_contacts_are_newest_first_and_agent_calls_start_at_the_given_time() {
    let path = temp("history");
    let ops = vec![
        StoreOp::CallClosed(Box::new(closed_call(1, "13800138000", Some("1001"), 10_000, true))),
        StoreOp::CallClosed(Box::new(closed_call(2, "13800138000", None, 20_000, false))),
        StoreOp::CallClosed(Box::new(closed_call(3, "13800138000", Some("1002"), 30_000, true))),
        StoreOp::CallClosed(Box::new(closed_call(4, "13900000000", Some("1001"), 40_000, true))),
    ];
    write(&path, ops);
    let s = Store::open(&path).unwrap();
    let c = s.previous_contacts("13800138000", 2).unwrap();
    assert_eq!(c.iter().map(|c| c.call).collect::<Vec<_>>(), vec![3, 2]);
    assert_eq!(c[0].agent.as_deref(), Some("1002"));
    let a = s.agent_calls_since("1001", 20_000).unwrap();
    assert_eq!(a.iter().map(|c| c.call).collect::<Vec<_>>(), vec![4]);
    assert_eq!(s.agent_calls_since("1001", 0).unwrap().len(), 2);
}

fn rec(id: u64, agent: &str, caller: &str, started_ms: i64) -> StoreOp {
    StoreOp::RecordingStarted(RecordingStarted {
        id,
        call: Some(CallKey { run: 1_000, call: id }),
        agent: Some(agent.into()),
        queue: Some("sales".into()),
        caller: Some(caller.into()),
        started_ms,
        path: format!("/var/spool/hotline/{id}.wav"),
        format: "wav-pcm16".into(),
        reason: RecordingReason::Policy,
        retention: "normal".into(),
    })
}

#[test]
fn the_recording_index_filters_tags_and_marks_unfinished_recordings_cut_short_after_a_crash() {
    let path = temp("recordings");
    write(
        &path,
        vec![
            rec(1, "1001", "13800138000", 1_000),
            rec(2, "1002", "13800138001", 2_000),
            rec(3, "1001", "13800138002", 3_000),
            StoreOp::RecordingFinished { id: 1, duration_ms: 61_000, dropped: 0, cut_short: false },
            StoreOp::RecordingFinished { id: 2, duration_ms: 5_000, dropped: 3, cut_short: false },
        ],
    );
    // Recording 3 never finished: the writer reopening the store recovers.
    let (_tx, handle, recovered) = StoreWriter::spawn(&path).unwrap();
    assert_eq!(recovered.recordings_cut_short, 1);
    drop(_tx);
    handle.join().unwrap();

    let s = Store::open(&path).unwrap();
    let mine = s.recordings(&RecordingFilter { agent: Some("1001".into()), ..Default::default() }).unwrap();
    assert_eq!(mine.iter().map(|r| (r.id, r.cut_short)).collect::<Vec<_>>(), vec![(1, false), (3, true)]);
    let by_caller =
        s.recordings(&RecordingFilter { caller: Some("13800138001".into()), ..Default::default() }).unwrap();
    assert_eq!((by_caller.len(), by_caller[0].dropped), (1, 3));
    let in_time = s
        .recordings(&RecordingFilter { from_ms: Some(1_500), to_ms: Some(3_000), ..Default::default() })
        .unwrap();
    assert_eq!(in_time.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2]);

    s.tag_recording(2, Some("complaint 4471"), Some("complaint")).unwrap();
    let r = s.recording(2).unwrap();
    assert_eq!((r.tag.as_deref(), r.retention.as_str()), (Some("complaint 4471"), "complaint"));
    assert_eq!(s.tag_recording(99, Some("x"), None).unwrap_err().kind, StoreErrorKind::NotFound);
    assert_eq!(s.next_recording_id().unwrap(), 4);
}

#[test]
fn voicemail_is_listed_marked_listened_and_noted() {
    let path = temp("voicemail");
    let note = |caller: &str| VoicemailNote {
        mailbox: "sales".into(),
        path: "/var/spool/hotline/vm/1.wav".into(),
        duration_ms: 12_500,
        caller: Some(caller.into()),
        access: Some("4008001000".into()),
    };
    write(
        &path,
        vec![
            StoreOp::Voicemail {
                key: None,
                left_ms: 1_000,
                queue: Some("sales".into()),
                note: note("13800138000"),
            },
            StoreOp::Voicemail {
                key: None,
                left_ms: 2_000,
                queue: Some("sales".into()),
                note: note("13800138001"),
            },
        ],
    );
    let s = Store::open(&path).unwrap();
    let all = s.voicemails(&VoicemailFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    s.mark_voicemail_listened(all[0].id).unwrap();
    s.set_voicemail_note(all[1].id, "called back, resolved").unwrap();
    let unheard = s.voicemails(&VoicemailFilter { unheard: true, ..Default::default() }).unwrap();
    assert_eq!(unheard.len(), 1);
    assert_eq!(unheard[0].note.as_deref(), Some("called back, resolved"));
    assert_eq!(unheard[0].access.as_deref(), Some("4008001000"));
    assert_eq!(s.mark_voicemail_listened(999).unwrap_err().kind, StoreErrorKind::NotFound);
}

#[test]
fn recording_schedules_are_added_listed_and_removed() {
    let path = temp("schedules");
    let s = Store::open(&path).unwrap();
    let a = s.add_schedule("1001", 5_000, 3_600_000, Some("coaching")).unwrap();
    let b = s.add_schedule("1002", 1_000, 60_000, None).unwrap();
    let list = s.schedules().unwrap();
    assert_eq!(list.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b, a]);
    s.remove_schedule(b).unwrap();
    assert_eq!(s.schedules().unwrap().len(), 1);
    assert_eq!(s.remove_schedule(b).unwrap_err().kind, StoreErrorKind::NotFound);
}

#[test]
fn the_store_table_of_the_installation_file_names_the_file() {
    let origin = Path::new("/etc/hotline/hotline.toml");
    let c = StoreConfig::from_toml("[store]\npath = \"data/cdr.db\"\n", origin).unwrap();
    // Relative to the working directory, like every path of the installation file.
    assert_eq!(c.path, Path::new("data/cdr.db"));
    assert_eq!(StoreConfig::from_toml("", origin).unwrap().path, Path::new("hotline.db"));
    let e = StoreConfig::from_toml("[store]\npath = 5\n", origin).unwrap_err();
    assert!(e.contains("expected a string"), "{e}");
    let e = StoreConfig::from_toml("[store]\npaht = \"x\"\n", origin).unwrap_err();
    assert!(e.contains("unknown key `paht`"), "{e}");
    let e = StoreConfig::from_toml("[store\n", origin).unwrap_err();
    assert!(e.starts_with("/etc/hotline/hotline.toml:1:"), "{e}");
    // The engine's own check leaves the table alone.
    let problems = hotline_cti::check_config("[store]\npath = \"x.db\"\n", "hotline.toml");
    assert!(problems.iter().all(|p| !p.to_string().contains("store")), "{problems:?}");
}

#[test]
fn a_flush_is_answered_once_everything_before_it_is_committed() {
    let path = temp("flush");
    let (tx, handle, _) = StoreWriter::spawn(&path).unwrap();
    tx.send(StoreOp::CallClosed(Box::new(closed_call(7, "1", None, 1, false)))).unwrap();
    let (done, rx) = bounded(1);
    tx.send(StoreOp::Flush(done)).unwrap();
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    // Another connection sees it at once (WAL readers beside the writer).
    let s = Store::open(&path).unwrap();
    assert_eq!(s.calls(&CallFilter::default()).unwrap().len(), 1);
    drop(tx);
    handle.join().unwrap();
}
