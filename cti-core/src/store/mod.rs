//! The store: call records, agent state intervals, the recording index, recording
//! schedules, voicemail and IVR visits in one SQLite file (WAL journal).
//!
//! Writing happens on one thread ([`StoreWriter::spawn`]) that drains a bounded
//! channel of [`StoreOp`]s and commits everything queued in one transaction (group
//! commit), so the engine thread never waits on the disk. Reading ([`Store`]'s query
//! methods, in `read.rs`) is for reports, the CLI and the link server's history; WAL
//! lets readers run beside the writer.
//!
//! Crash safety: a call is written open when it starts and closed when it ends, and
//! an agent's current state is written open; [`Store::recover`] (run by
//! [`StoreWriter::spawn`] before anything new is written) marks calls still open as
//! cut, closes open agent intervals, and marks unfinished recordings cut short. With
//! `synchronous = NORMAL` in WAL mode a committed transaction survives the process
//! being killed (only a power loss may take back the last ones).

mod lock;
mod read;
mod schema;

pub use lock::{lock_path, StoreLock};

use std::fmt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use rusqlite::{params, Connection, OptionalExtension};

use crate::cdr::{AgentInterval, CallKey, CallOpened, Cdr, Step, VoicemailNote};

pub use read::{
    AgentCall, CallFilter, CallRow, Contact, EventRow, IvrVisitRow, LegRow, RecordingFilter, RecordingRow,
    ScheduleRow, VoicemailFilter, VoicemailRow,
};

/// What went wrong with the store.
#[derive(Debug)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

/// What the caller should do about a [`StoreError`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The file cannot be opened or created (path, permissions): fix the path.
    Open,
    /// The file is not a Hotline store, or was written by a newer Hotline: use the
    /// right file or a newer binary; nothing was changed.
    Schema,
    /// SQLite failed a statement (disk full, I/O error): the batch was rolled back;
    /// retrying later may work.
    Sqlite,
    /// A lookup found nothing (no such recording, voicemail or schedule).
    NotFound,
    /// Another process runs on this store (`serve` or `demo`): stop it, or use another
    /// path.
    Locked,
    /// The disk is full or failing (SQLite's `SQLITE_FULL`, `SQLITE_IOERR`,
    /// `SQLITE_CANTOPEN`): nothing of the batch was written; the writer keeps it and
    /// retries.
    DiskFull,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    fn sqlite(context: &str, e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode as C;
        let kind = match e.sqlite_error_code() {
            Some(C::DiskFull | C::SystemIoFailure | C::CannotOpen | C::ReadOnly) => StoreErrorKind::DiskFull,
            _ => StoreErrorKind::Sqlite,
        };
        StoreError { kind, message: format!("{context}: {e}") }
    }
    pub(crate) fn not_found(message: String) -> StoreError {
        StoreError { kind: StoreErrorKind::NotFound, message }
    }
}

pub(crate) fn sql<T>(context: &str, r: rusqlite::Result<T>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::sqlite(context, e))
}

/// Why a recording was made.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecordingReason {
    /// Every agent call (the policy's default).
    Policy,
    /// Started by an agent or supervisor.
    OnDemand,
    /// A schedule for this agent was running.
    Scheduled,
}

impl RecordingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingReason::Policy => "policy",
            RecordingReason::OnDemand => "on_demand",
            RecordingReason::Scheduled => "scheduled",
        }
    }
}

/// A recording that started: its line in the recording index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingStarted {
    pub id: u64,
    pub call: Option<CallKey>,
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub caller: Option<String>,
    pub started_ms: i64,
    pub path: String,
    /// `wav-pcm16`, `wav-alaw`, `wav-ulaw`, `mp3-32`, ...
    pub format: String,
    pub reason: RecordingReason,
    /// Retention class: `normal`, `complaint`, or one the configuration names.
    pub retention: String,
}

/// One write for the store writer.
#[derive(Clone, Debug)]
pub enum StoreOp {
    CallOpened(CallOpened),
    Step(Step),
    CallClosed(Box<Cdr>),
    /// An agent's new state, open until the next [`StoreOp::AgentInterval`] for them.
    AgentStateOpened(AgentInterval),
    /// A finished interval; replaces the agent's open one.
    AgentInterval(AgentInterval),
    IvrVisit {
        key: CallKey,
        at_ms: i64,
        flow: String,
        node: String,
    },
    RecordingStarted(RecordingStarted),
    /// The recorder finished a file (`RecorderEvent::Finished`).
    RecordingFinished {
        id: u64,
        duration_ms: i64,
        dropped: u64,
        cut_short: bool,
    },
    Voicemail {
        key: Option<CallKey>,
        left_ms: i64,
        queue: Option<String>,
        note: VoicemailNote,
    },
    /// The recording's file could not be written (disk full, no permission): its index
    /// line says so and the recording is not listed as present.
    RecordingFailed {
        id: u64,
        message: String,
    },
    /// Retention deleted these recordings' files at `at_ms`.
    RecordingsDeleted {
        ids: Vec<u64>,
        at_ms: i64,
    },
    /// A clean stop at `at_ms` (Unix ms): agent states still open end now, and calls
    /// still open (a stop that could not wait for them) are marked cut by the system.
    /// Nothing is left for the next start's crash recovery.
    Closing {
        at_ms: i64,
    },
    /// Answered once everything sent before it is committed (tests, shutdown).
    Flush(Sender<()>),
}

/// An open store. Not `Sync`: one per thread.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

/// What [`Store::recover`] found after a crash.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub calls_cut: u64,
    pub agent_intervals_closed: u64,
    pub recordings_cut_short: u64,
}

impl Store {
    /// Open (or create) a store: WAL journal, schema brought up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_err = |e: rusqlite::Error| StoreError {
            kind: StoreErrorKind::Open,
            message: format!("{}: cannot open the store: {e}", path.display()),
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_err)?;
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| StoreError {
                kind: StoreErrorKind::Schema,
                message: format!("{}: not a Hotline store (SQLite says: {e})", path.display()),
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError {
                kind: StoreErrorKind::Open,
                message: format!("{}: the file system does not allow a WAL journal ({mode})", path.display()),
            });
        }
        sql("synchronous", conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"))?;
        let mut store = Store { conn, path };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version this build writes.
    pub const SCHEMA_VERSION: u32 = schema::MIGRATIONS.len() as u32;

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: u32 = sql("user_version", self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)))?;
        if version > Self::SCHEMA_VERSION {
            return Err(StoreError {
                kind: StoreErrorKind::Schema,
                message: format!(
                    "{}: schema version {version} is newer than this Hotline's {}; use a newer binary",
                    self.path.display(),
                    Self::SCHEMA_VERSION
                ),
            });
        }
        for (i, m) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = sql("migration", self.conn.transaction())?;
            sql(&format!("migration {}", i + 1), tx.execute_batch(m))?;
            sql("user_version", tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1)))?;
            sql("migration commit", tx.commit())?;
        }
        Ok(())
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        sql("user_version", self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After a crash: calls still open are marked cut (ended at the last moment the
    /// store heard anything of them), open agent intervals are closed at the last
    /// moment the store heard of anything, unfinished recordings are marked cut short.
    pub fn recover(&mut self) -> Result<Recovered, StoreError> {
        let tx = sql("recover", self.conn.transaction())?;
        let last: Option<i64> = sql(
            "recover",
            tx.query_row(
                "SELECT MAX(t) FROM (
                    SELECT MAX(at_ms) AS t FROM call_events
                    UNION ALL SELECT MAX(COALESCE(to_ms, from_ms)) FROM agent_states
                    UNION ALL SELECT MAX(COALESCE(ended_ms, arrived_ms)) FROM calls)",
                [],
                |r| r.get(0),
            ),
        )?;
        let calls_cut = sql(
            "recover calls",
            tx.execute(
                "UPDATE calls SET state = 'cut', outcome = 'cut', released_side = 'system',
                    ended_ms = COALESCE((SELECT MAX(e.at_ms) FROM call_events e
                                         WHERE e.run = calls.run AND e.call = calls.call), arrived_ms),
                    answered_ms = COALESCE(answered_ms, (SELECT MIN(e.at_ms) FROM call_events e
                        WHERE e.run = calls.run AND e.call = calls.call AND e.kind = 'answered'))
                 WHERE state = 'open'",
                [],
            ),
        )? as u64;
        let agent_intervals_closed = sql(
            "recover agent states",
            tx.execute(
                "UPDATE agent_states SET to_ms = MAX(from_ms, ?1), cut = 1 WHERE to_ms IS NULL",
                params![last.unwrap_or(0)],
            ),
        )? as u64;
        let recordings_cut_short = sql(
            "recover recordings",
            tx.execute("UPDATE recordings SET cut_short = 1, finished = 1 WHERE finished = 0", []),
        )? as u64;
        sql("recover commit", tx.commit())?;
        Ok(Recovered { calls_cut, agent_intervals_closed, recordings_cut_short })
    }

    /// Apply a batch of operations in one transaction. `Flush` replies are sent after
    /// the commit.
    pub fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let tx = sql("begin", self.conn.transaction())?;
        for op in ops {
            apply_one(&tx, op)?;
        }
        sql("commit", tx.commit())?;
        for op in ops {
            if let StoreOp::Flush(reply) = op {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

fn opt_dev(s: &Option<String>) -> Option<&str> {
    s.as_deref()
}

fn apply_one(tx: &rusqlite::Transaction<'_>, op: &StoreOp) -> Result<(), StoreError> {
    match op {
        StoreOp::CallOpened(c) => {
            sql(
                "open call",
                tx.execute(
                    "INSERT INTO calls (run, call, state, direction, caller, called, arrived_ms)
                     VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?6)
                     ON CONFLICT (run, call) DO NOTHING",
                    params![
                        c.key.run,
                        c.key.call as i64,
                        c.direction.as_str(),
                        c.caller,
                        c.called,
                        c.arrived_ms
                    ],
                ),
            )?;
        }
        StoreOp::Step(s) => {
            sql(
                "call event",
                tx.execute(
                    "INSERT INTO call_events (run, call, at_ms, kind, device, agent, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        s.key.run,
                        s.key.call as i64,
                        s.at_ms,
                        s.kind.as_str(),
                        opt_dev(&s.device),
                        s.agent,
                        s.detail
                    ],
                ),
            )?;
        }
        StoreOp::CallClosed(c) => close_call(tx, c)?,
        StoreOp::AgentStateOpened(a) => {
            sql(
                "agent state",
                tx.execute("DELETE FROM agent_states WHERE agent = ?1 AND to_ms IS NULL", params![a.agent]),
            )?;
            sql(
                "agent state",
                tx.execute(
                    "INSERT INTO agent_states (agent, state, reason, from_ms, to_ms) VALUES (?1, ?2, ?3, ?4, NULL)",
                    params![a.agent, a.state, a.reason, a.from_ms],
                ),
            )?;
        }
        StoreOp::AgentInterval(a) => {
            sql(
                "agent state",
                tx.execute("DELETE FROM agent_states WHERE agent = ?1 AND to_ms IS NULL", params![a.agent]),
            )?;
            sql(
                "agent state",
                tx.execute(
                    "INSERT INTO agent_states (agent, state, reason, from_ms, to_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![a.agent, a.state, a.reason, a.from_ms, a.to_ms],
                ),
            )?;
        }
        StoreOp::IvrVisit { key, at_ms, flow, node } => {
            sql(
                "ivr visit",
                tx.execute(
                    "INSERT INTO ivr_visits (run, call, at_ms, flow, node) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key.run, key.call as i64, at_ms, flow, node],
                ),
            )?;
        }
        StoreOp::RecordingStarted(r) => {
            sql(
                "recording",
                tx.execute(
                    "INSERT INTO recordings (id, run, call, agent, queue, caller, started_ms, path, format,
                                             reason, retention)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (id) DO UPDATE SET path = excluded.path",
                    params![
                        r.id as i64,
                        r.call.map(|k| k.run),
                        r.call.map(|k| k.call as i64),
                        r.agent,
                        r.queue,
                        r.caller,
                        r.started_ms,
                        r.path,
                        r.format,
                        r.reason.as_str(),
                        r.retention
                    ],
                ),
            )?;
        }
        StoreOp::RecordingFinished { id, duration_ms, dropped, cut_short } => {
            sql(
                "recording finished",
                tx.execute(
                    "UPDATE recordings SET duration_ms = ?2, dropped = ?3, cut_short = ?4, finished = 1,
                        failed = NULL
                     WHERE id = ?1",
                    params![*id as i64, duration_ms, *dropped as i64, cut_short],
                ),
            )?;
        }
        StoreOp::Voicemail { key, left_ms, queue, note } => {
            sql(
                "voicemail",
                tx.execute(
                    "INSERT INTO voicemail (run, call, mailbox, caller, access, queue, left_ms, duration_ms, path)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        key.map(|k| k.run),
                        key.map(|k| k.call as i64),
                        note.mailbox,
                        note.caller,
                        note.access,
                        queue,
                        left_ms,
                        note.duration_ms,
                        note.path
                    ],
                ),
            )?;
        }
        StoreOp::RecordingFailed { id, message } => {
            sql(
                "recording failed",
                tx.execute(
                    "UPDATE recordings SET finished = 1, cut_short = 1, duration_ms = NULL, failed = ?2
                     WHERE id = ?1",
                    params![*id as i64, message],
                ),
            )?;
        }
        StoreOp::RecordingsDeleted { ids, at_ms } => {
            for id in ids {
                sql(
                    "recording deleted",
                    tx.execute(
                        "UPDATE recordings SET deleted_ms = ?2 WHERE id = ?1",
                        params![*id as i64, at_ms],
                    ),
                )?;
            }
        }
        StoreOp::Closing { at_ms } => {
            sql(
                "closing agent states",
                tx.execute(
                    "UPDATE agent_states SET to_ms = MAX(from_ms, ?1) WHERE to_ms IS NULL",
                    params![at_ms],
                ),
            )?;
            sql(
                "closing calls",
                tx.execute(
                    "UPDATE calls SET state = 'cut', outcome = 'cut', released_side = 'system',
                        ended_ms = MAX(arrived_ms, ?1),
                        answered_ms = COALESCE(answered_ms, (SELECT MIN(e.at_ms) FROM call_events e
                            WHERE e.run = calls.run AND e.call = calls.call AND e.kind = 'answered'))
                     WHERE state = 'open'",
                    params![at_ms],
                ),
            )?;
        }
        StoreOp::Flush(_) => {}
    }
    Ok(())
}

fn close_call(tx: &rusqlite::Transaction<'_>, c: &Cdr) -> Result<(), StoreError> {
    let data = serde_json::to_string(&c.data).unwrap_or_else(|_| "{}".into());
    let run = c.key.run;
    let call = c.key.call as i64;
    // A call closed without having been opened (a builder started mid-call) still
    // gets its row.
    sql(
        "close call",
        tx.execute(
            "INSERT INTO calls (run, call, state, direction, arrived_ms) VALUES (?1, ?2, 'open', ?3, ?4)
             ON CONFLICT (run, call) DO NOTHING",
            params![run, call, c.direction.as_str(), c.arrived_ms],
        ),
    )?;
    sql(
        "close call",
        tx.execute(
            "UPDATE calls SET state = 'closed', direction = ?3, caller = ?4, called = ?5, location = ?6,
                vip = ?7, queue = ?8, agent = ?9, ivr_entered_ms = ?10, ivr_left_ms = ?11,
                queued_ms = ?12, rung_ms = ?13, answered_ms = ?14, ended_ms = ?15, released_by = ?16,
                released_side = ?17, cause = ?18, outcome = ?19, missed = ?20, timed_out = ?21,
                holds = ?22, hold_ms = ?23, transfers = ?24, conferences = ?25, data = ?26
             WHERE run = ?1 AND call = ?2",
            params![
                run,
                call,
                c.direction.as_str(),
                c.caller,
                c.called,
                c.location,
                c.vip,
                c.queue,
                c.agent,
                c.ivr_entered_ms,
                c.ivr_left_ms,
                c.queued_ms,
                c.rung_ms,
                c.answered_ms,
                c.ended_ms,
                c.released_by,
                c.released_side.as_str(),
                c.cause,
                c.outcome.as_str(),
                c.missed.map(|m| m.as_str()),
                c.timed_out,
                c.holds,
                c.hold_ms,
                c.transfers,
                c.conferences,
                data
            ],
        ),
    )?;
    sql("legs", tx.execute("DELETE FROM call_legs WHERE run = ?1 AND call = ?2", params![run, call]))?;
    for l in &c.legs {
        sql(
            "legs",
            tx.execute(
                "INSERT INTO call_legs (run, call, device, agent, rung_ms, answered_ms, ended_ms, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![run, call, l.device, l.agent, l.rung_ms, l.answered_ms, l.ended_ms, l.outcome],
            ),
        )?;
    }
    for id in &c.recordings {
        sql(
            "recording link",
            tx.execute(
                "UPDATE recordings SET run = ?2, call = ?3 WHERE id = ?1 AND call IS NULL",
                params![*id as i64, run, call],
            ),
        )?;
    }
    Ok(())
}

/// The writer thread: drains the channel and commits in batches.
#[derive(Debug)]
pub struct StoreWriter;

/// What the writer did, returned when its channel closes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub ops: u64,
    pub transactions: u64,
    /// Batches SQLite refused (on a full or failing disk, each retry counts).
    pub failed_batches: u64,
    /// Operations lost: refused by SQLite for themselves (a bad row, logged), or still
    /// held when the store was closed on a disk that stayed full.
    pub lost: u64,
    /// The most operations held at once while the disk was full.
    pub spooled_max: u64,
    /// Times the disk was full and then recovered (every operation held then written).
    pub recoveries: u64,
    pub recovered: Recovered,
}

/// Room in the writer's queue. At 50 operations a call, enough for a burst of some
/// thousand calls while the disk stalls; a full queue is the sender's to count.
pub const QUEUE_CAPACITY: usize = 65_536;

/// Operations the writer holds in memory while the disk is full (about 4,000 calls at
/// 50 operations a call, some 60 MB), on top of [`QUEUE_CAPACITY`].
pub const SPOOL_CAPACITY: usize = 200_000;

/// The most operations committed in one transaction.
const MAX_BATCH: usize = 8_192;

/// Retries on a full disk: the first after this, doubling up to [`RETRY_MAX`].
const RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a store being closed keeps retrying a full disk before it gives up.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How the writer runs ([`StoreWriter::spawn_with`]).
#[derive(Clone, Default)]
pub struct WriterOptions {
    /// Raise and clear `disk_full` here.
    pub alarms: Option<std::sync::Arc<crate::alarm::Alarms>>,
    /// Tests: while set, every commit fails as on a full disk (`SQLITE_FULL`).
    pub fault: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Operations held while the disk is full (default [`SPOOL_CAPACITY`]).
    pub spool_capacity: Option<usize>,
    /// How long a store being closed on a full disk keeps retrying (default 10 s).
    pub close_grace: Option<std::time::Duration>,
}

impl fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterOptions").field("spool_capacity", &self.spool_capacity).finish_non_exhaustive()
    }
}

impl StoreWriter {
    /// Open the store (recovering from a crash), then start the writer thread. Send it
    /// [`StoreOp`]s; it exits when every sender is dropped, after committing the rest.
    pub fn spawn(
        path: impl AsRef<Path>,
    ) -> Result<(Sender<StoreOp>, JoinHandle<WriterStats>, Recovered), StoreError> {
        StoreWriter::spawn_with(path, WriterOptions::default())
    }

    /// [`StoreWriter::spawn`] with options: alarms, a fault to inject, the spool's room.
    ///
    /// On a full or failing disk ([`StoreErrorKind::DiskFull`]) nothing is dropped: the
    /// batch and everything after it are held in order in a bounded spool and retried
    /// (100 ms, doubling up to 2 s) until they commit; `disk_full` is raised meanwhile.
    /// When the spool is full the writer stops taking from its queue, which then fills;
    /// what the engine cannot queue after that is counted as dropped by the engine.
    pub fn spawn_with(
        path: impl AsRef<Path>,
        opts: WriterOptions,
    ) -> Result<(Sender<StoreOp>, JoinHandle<WriterStats>, Recovered), StoreError> {
        let mut store = Store::open(path)?;
        let recovered = store.recover()?;
        let (tx, rx) = bounded(QUEUE_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("hotline-store".into())
            .spawn(move || writer_loop(store, rx, recovered, opts))
            .map_err(|e| StoreError { kind: StoreErrorKind::Open, message: format!("store thread: {e}") })?;
        Ok((tx, handle, recovered))
    }
}

fn commit(
    store: &mut Store,
    ops: &[StoreOp],
    fault: &Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> Result<(), StoreError> {
    if fault.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst)) {
        return Err(StoreError {
            kind: StoreErrorKind::DiskFull,
            message: "commit: database or disk is full (injected fault)".into(),
        });
    }
    store.apply(ops)
}

fn writer_loop(
    mut store: Store,
    rx: Receiver<StoreOp>,
    recovered: Recovered,
    opts: WriterOptions,
) -> WriterStats {
    use std::time::Instant;
    let mut stats = WriterStats { recovered, ..WriterStats::default() };
    let cap = opts.spool_capacity.unwrap_or(SPOOL_CAPACITY).max(1);
    let mut spool: std::collections::VecDeque<StoreOp> = std::collections::VecDeque::new();
    // While the disk is full: since when, the next retry, the current backoff.
    let mut full: Option<(Instant, String)> = None;
    let mut next_try = Instant::now();
    let mut backoff = RETRY_MIN;
    let mut closed_at: Option<Instant> = None;
    let mut said_spool_full = false;
    loop {
        if spool.is_empty() {
            if closed_at.is_some() {
                break;
            }
            match rx.recv() {
                Ok(op) => spool.push_back(op),
                Err(_) => break,
            }
        } else if full.is_some() {
            if closed_at.is_some_and(|t| t.elapsed() >= opts.close_grace.unwrap_or(CLOSE_GRACE)) {
                break;
            }
            let wait = next_try.saturating_duration_since(Instant::now());
            if closed_at.is_none() && spool.len() < cap {
                match rx.recv_timeout(wait) {
                    Ok(op) => {
                        spool.push_back(op);
                        continue;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        closed_at = Some(Instant::now())
                    }
                }
            } else {
                std::thread::sleep(wait.min(std::time::Duration::from_millis(100)));
                if Instant::now() < next_try {
                    continue;
                }
            }
        }
        // Take what else is queued, as far as the spool has room.
        while closed_at.is_none() && spool.len() < cap {
            match rx.try_recv() {
                Ok(op) => spool.push_back(op),
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => closed_at = Some(Instant::now()),
            }
        }
        if spool.len() >= cap && !said_spool_full {
            said_spool_full = true;
            tracing::error!(
                "store: {} operations held and no room for more; the engine's queue fills now, and what does \
                 not fit in it is dropped (counted)",
                spool.len()
            );
        }
        stats.spooled_max = stats.spooled_max.max(spool.len() as u64);
        if let Err(e) = drain_spool(&mut store, &mut spool, &opts, &mut stats) {
            stats.failed_batches += 1;
            if full.is_none() {
                let text = format!(
                    "the store cannot write to {} ({e}); {} records held in memory (room for {cap}), \
                     retried until the disk takes them: free space on that disk",
                    store.path().display(),
                    spool.len()
                );
                if let Some(a) = &opts.alarms {
                    a.raise(crate::alarm::DISK_FULL, "store", &text);
                } else {
                    tracing::error!("{text}");
                }
                full = Some((Instant::now(), e.message.clone()));
                backoff = RETRY_MIN;
            } else {
                backoff = (backoff * 2).min(RETRY_MAX);
            }
            next_try = Instant::now() + backoff;
            continue;
        }
        if let Some((since, _)) = full.take() {
            stats.recoveries += 1;
            said_spool_full = false;
            let text = format!(
                "the store writes again after {:.1} s; every record held meanwhile ({} at most) is written",
                since.elapsed().as_secs_f64(),
                stats.spooled_max
            );
            match &opts.alarms {
                Some(a) => a.clear(crate::alarm::DISK_FULL, "store", &text),
                None => tracing::warn!("{text}"),
            }
        }
    }
    if !spool.is_empty() {
        stats.lost += spool.len() as u64;
        let why = full.map(|(_, m)| m).unwrap_or_default();
        tracing::error!(
            "store: closed with {} operations that could not be written ({why}); the calls they belong to are \
             marked cut by the next start",
            spool.len()
        );
        for op in &spool {
            tracing::debug!("store: not written: {op:?}");
        }
    }
    stats
}

/// Commit the spool from its front, a batch at a time. A batch SQLite refuses for one
/// of its rows is retried one operation at a time so that the bad row alone is lost
/// (logged); on a full disk the error is returned and the rest stays in the spool.
fn drain_spool(
    store: &mut Store,
    spool: &mut std::collections::VecDeque<StoreOp>,
    opts: &WriterOptions,
    stats: &mut WriterStats,
) -> Result<(), StoreError> {
    while !spool.is_empty() {
        let n = spool.len().min(MAX_BATCH);
        let batch = &spool.make_contiguous()[..n];
        match commit(store, batch, &opts.fault) {
            Ok(()) => {
                stats.ops += n as u64;
                stats.transactions += 1;
                spool.drain(..n);
            }
            Err(e) if e.kind == StoreErrorKind::DiskFull => return Err(e),
            Err(e) => {
                stats.failed_batches += 1;
                tracing::warn!("store: batch of {n} failed ({e}); retrying singly");
                for _ in 0..n {
                    let op = spool.front().expect("n ops are there");
                    match commit(store, std::slice::from_ref(op), &opts.fault) {
                        Ok(()) => {
                            stats.ops += 1;
                            stats.transactions += 1;
                        }
                        Err(e) if e.kind == StoreErrorKind::DiskFull => return Err(e),
                        Err(e) => {
                            stats.lost += 1;
                            tracing::error!("store: lost {op:?}: {e}");
                        }
                    }
                    spool.pop_front();
                }
            }
        }
    }
    Ok(())
}

/// Run a closure on an optional row lookup (used by read.rs).
pub(crate) fn optional<T>(context: &str, r: rusqlite::Result<T>) -> Result<Option<T>, StoreError> {
    sql(context, r.optional())
}

/// The `[store]` table of the installation file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The SQLite file; relative paths are relative to the installation file.
    pub path: PathBuf,
}

impl StoreConfig {
    /// Read `[store] path = "..."` from an installation file's text (`origin`: its
    /// path, for messages). Absent: `hotline.db`. Relative paths are relative to the
    /// working directory, as every path in the installation file is.
    pub fn from_toml(text: &str, origin: &Path) -> Result<StoreConfig, String> {
        use toml::de::{DeTable, DeValue};
        let at = |offset: usize, msg: &str| {
            let (l, c) = line_col(text, offset);
            format!("{}:{l}:{c}: {msg}", origin.display())
        };
        let root = DeTable::parse(text).map_err(|e| {
            let (span, message) = hotline_drivers::text::toml_error(text, &e);
            at(span.start, &format!("TOML syntax: {message}"))
        })?;
        let root = root.into_inner();
        let Some((key, value)) = root.iter().find(|(k, _)| k.get_ref().as_ref() == "store") else {
            return Ok(StoreConfig { path: PathBuf::from("hotline.db") });
        };
        let DeValue::Table(t) = value.get_ref() else {
            return Err(at(
                key.span().start,
                &format!("`store` must be a table ([store]), found {}", value.get_ref().type_str()),
            ));
        };
        let mut path = PathBuf::from("hotline.db");
        for (k, v) in t.iter() {
            let name: &str = k.get_ref().as_ref();
            match (name, v.get_ref()) {
                ("path", DeValue::String(p)) if p.is_empty() => {
                    return Err(at(v.span().start, "[store] path is empty: expected the database file"));
                }
                ("path", DeValue::String(p)) => path = PathBuf::from(p.as_ref()),
                ("path", other) => {
                    return Err(at(
                        v.span().start,
                        &format!("[store] path: expected a string, found {}", other.type_str()),
                    ))
                }
                _ => {
                    let hint = hotline_drivers::text::did_you_mean(name, ["path"])
                        .map_or(String::new(), |k| format!("; did you mean `{k}`?"));
                    return Err(at(
                        k.span().start,
                        &format!("[store]: unknown key `{name}`: expected `path`{hint}"),
                    ));
                }
            }
        }
        Ok(StoreConfig { path })
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
