//! Reading the store: what reports, `hotline recordings`, `hotline voicemail` and the
//! link server's history ask for. Times are Unix milliseconds; ranges are half-open
//! (`from <= t < to`).

use rusqlite::{params, Row};
use serde::Serialize;

use super::{optional, sql, Store, StoreError};
use crate::cdr::{AgentInterval, CallKey};

/// Which calls to list. Calls are selected by arrival time.
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub caller: Option<String>,
    /// `open`, `closed` or `cut`.
    pub state: Option<String>,
}

/// A call's row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRow {
    pub run: i64,
    pub call: u64,
    pub state: String,
    pub direction: String,
    pub caller: Option<String>,
    pub called: Option<String>,
    pub location: Option<String>,
    pub vip: bool,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub arrived_ms: i64,
    pub ivr_entered_ms: Option<i64>,
    pub ivr_left_ms: Option<i64>,
    pub queued_ms: Option<i64>,
    pub rung_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub released_by: Option<String>,
    pub released_side: Option<String>,
    pub cause: Option<u8>,
    pub outcome: Option<String>,
    pub missed: Option<String>,
    pub timed_out: bool,
    pub holds: u32,
    pub hold_ms: i64,
    pub transfers: u32,
    pub conferences: u32,
    pub data: String,
}

impl CallRow {
    pub fn key(&self) -> CallKey {
        CallKey { run: self.run, call: self.call }
    }
    fn from_row(r: &Row<'_>) -> rusqlite::Result<CallRow> {
        Ok(CallRow {
            run: r.get("run")?,
            call: r.get::<_, i64>("call")? as u64,
            state: r.get("state")?,
            direction: r.get("direction")?,
            caller: r.get("caller")?,
            called: r.get("called")?,
            location: r.get("location")?,
            vip: r.get("vip")?,
            queue: r.get("queue")?,
            agent: r.get("agent")?,
            arrived_ms: r.get("arrived_ms")?,
            ivr_entered_ms: r.get("ivr_entered_ms")?,
            ivr_left_ms: r.get("ivr_left_ms")?,
            queued_ms: r.get("queued_ms")?,
            rung_ms: r.get("rung_ms")?,
            answered_ms: r.get("answered_ms")?,
            ended_ms: r.get("ended_ms")?,
            released_by: r.get("released_by")?,
            released_side: r.get("released_side")?,
            cause: r.get("cause")?,
            outcome: r.get("outcome")?,
            missed: r.get("missed")?,
            timed_out: r.get("timed_out")?,
            holds: r.get("holds")?,
            hold_ms: r.get("hold_ms")?,
            transfers: r.get("transfers")?,
            conferences: r.get("conferences")?,
            data: r.get("data")?,
        })
    }
}

/// One step of a call's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub run: i64,
    pub call: u64,
    pub at_ms: i64,
    pub kind: String,
    pub device: Option<String>,
    pub agent: Option<String>,
    pub detail: Option<String>,
}

/// A leg of a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LegRow {
    pub run: i64,
    pub call: u64,
    pub device: String,
    pub agent: Option<String>,
    pub rung_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub outcome: String,
    /// The call's end, for talk time of a leg still counted as answered at the end.
    pub call_ended_ms: Option<i64>,
}

/// An earlier call from a number, for the agent's screen pop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub run: i64,
    pub call: u64,
    pub arrived_ms: i64,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub duration_ms: Option<i64>,
}

/// A call an agent answered, for their desktop's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentCall {
    pub run: i64,
    pub call: u64,
    pub caller: Option<String>,
    pub queue: Option<String>,
    pub answered_ms: i64,
    pub ended_ms: Option<i64>,
}

/// An IVR node entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IvrVisitRow {
    pub run: i64,
    pub call: u64,
    pub at_ms: i64,
    pub flow: Option<String>,
    pub node: String,
}

/// Which recordings to list; recordings are selected by start time.
#[derive(Clone, Debug, Default)]
pub struct RecordingFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub caller: Option<String>,
    pub tag: Option<String>,
}

/// A line of the recording index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordingRow {
    pub id: u64,
    pub run: Option<i64>,
    pub call: Option<u64>,
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub caller: Option<String>,
    pub started_ms: i64,
    pub duration_ms: Option<i64>,
    pub path: String,
    pub format: String,
    pub reason: String,
    pub finished: bool,
    pub cut_short: bool,
    pub dropped: i64,
    pub retention: String,
    pub tag: Option<String>,
    /// The file could not be written (disk full, no permission): why. Such a recording
    /// has no file to play.
    pub failed: Option<String>,
    /// When retention deleted the file (Unix ms).
    pub deleted_ms: Option<i64>,
}

impl RecordingRow {
    /// Whether the index says the file is there to play: finished, not failed, not
    /// deleted.
    pub fn present(&self) -> bool {
        self.finished && self.failed.is_none() && self.deleted_ms.is_none()
    }
}

/// Which voicemails to list; by the time they were left.
#[derive(Clone, Debug, Default)]
pub struct VoicemailFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub mailbox: Option<String>,
    pub queue: Option<String>,
    pub caller: Option<String>,
    pub unheard: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoicemailRow {
    pub id: i64,
    pub mailbox: String,
    pub caller: Option<String>,
    pub access: Option<String>,
    pub queue: Option<String>,
    pub left_ms: i64,
    pub duration_ms: i64,
    pub path: String,
    pub listened: bool,
    pub note: Option<String>,
}

/// A scheduled recording: this agent, from this time, for this long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScheduleRow {
    pub id: i64,
    pub agent: String,
    pub from_ms: i64,
    pub duration_ms: i64,
    pub note: Option<String>,
}

/// A WHERE clause built from optional conditions, with its parameters.
#[derive(Default)]
struct Where {
    parts: Vec<String>,
    args: Vec<rusqlite::types::Value>,
}

impl Where {
    fn add(&mut self, cond: &str, v: impl Into<rusqlite::types::Value>) {
        self.args.push(v.into());
        self.parts.push(cond.replace('?', &format!("?{}", self.args.len())));
    }
    fn opt_i(&mut self, cond: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.add(cond, v);
        }
    }
    fn opt_s(&mut self, cond: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.add(cond, v.clone());
        }
    }
    fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.parts.join(" AND "))
        }
    }
}

impl Store {
    fn rows<T>(
        &self,
        context: &str,
        q: &str,
        args: &[rusqlite::types::Value],
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = sql(context, self.conn.prepare_cached(q))?;
        let it = sql(context, st.query_map(rusqlite::params_from_iter(args.iter()), f))?;
        sql(context, it.collect())
    }

    /// Calls by arrival time, oldest first.
    pub fn calls(&self, f: &CallFilter) -> Result<Vec<CallRow>, StoreError> {
        let mut w = Where::default();
        w.opt_i("arrived_ms >= ?", f.from_ms);
        w.opt_i("arrived_ms < ?", f.to_ms);
        w.opt_s("agent = ?", &f.agent);
        w.opt_s("queue = ?", &f.queue);
        w.opt_s("caller = ?", &f.caller);
        w.opt_s("state = ?", &f.state);
        let q = format!("SELECT * FROM calls {} ORDER BY arrived_ms, id", w.sql());
        self.rows("calls", &q, &w.args, CallRow::from_row)
    }

    /// One call.
    pub fn call(&self, key: CallKey) -> Result<Option<CallRow>, StoreError> {
        optional(
            "call",
            self.conn.query_row(
                "SELECT * FROM calls WHERE run = ?1 AND call = ?2",
                params![key.run, key.call as i64],
                CallRow::from_row,
            ),
        )
    }

    /// A call's timeline, in order.
    pub fn call_events(&self, key: CallKey) -> Result<Vec<EventRow>, StoreError> {
        self.rows(
            "call events",
            "SELECT run, call, at_ms, kind, device, agent, detail FROM call_events
             WHERE run = ?1 AND call = ?2 ORDER BY id",
            &[key.run.into(), (key.call as i64).into()],
            event_row,
        )
    }

    /// Timeline steps of one kind in a time range (IVR nodes, queue timeouts, ...).
    pub fn events_of_kind(&self, kind: &str, from_ms: i64, to_ms: i64) -> Result<Vec<EventRow>, StoreError> {
        self.rows(
            "call events",
            "SELECT run, call, at_ms, kind, device, agent, detail FROM call_events
             WHERE kind = ?1 AND at_ms >= ?2 AND at_ms < ?3 ORDER BY id",
            &[kind.to_string().into(), from_ms.into(), to_ms.into()],
            event_row,
        )
    }

    /// Legs of calls that arrived in the range, `device` starting with `prefix`
    /// (`queue:`, `station:`, `ivr:`, or empty for all).
    pub fn legs(&self, prefix: &str, from_ms: i64, to_ms: i64) -> Result<Vec<LegRow>, StoreError> {
        self.rows(
            "legs",
            "SELECT l.run, l.call, l.device, l.agent, l.rung_ms, l.answered_ms, l.ended_ms, l.outcome,
                    c.ended_ms
             FROM call_legs l JOIN calls c ON c.run = l.run AND c.call = l.call
             WHERE substr(l.device, 1, length(?1)) = ?1 AND c.arrived_ms >= ?2 AND c.arrived_ms < ?3
             ORDER BY l.id",
            &[prefix.to_string().into(), from_ms.into(), to_ms.into()],
            |r| {
                Ok(LegRow {
                    run: r.get(0)?,
                    call: r.get::<_, i64>(1)? as u64,
                    device: r.get(2)?,
                    agent: r.get(3)?,
                    rung_ms: r.get(4)?,
                    answered_ms: r.get(5)?,
                    ended_ms: r.get(6)?,
                    outcome: r.get(7)?,
                    call_ended_ms: r.get(8)?,
                })
            },
        )
    }

    /// Agent state intervals overlapping the range (open ones too), by agent and time.
    pub fn agent_intervals(
        &self,
        from_ms: i64,
        to_ms: i64,
        agent: Option<&str>,
    ) -> Result<Vec<AgentInterval>, StoreError> {
        let mut w = Where::default();
        w.add("(to_ms IS NULL OR to_ms > ?)", from_ms);
        w.add("from_ms < ?", to_ms);
        if let Some(a) = agent {
            w.add("agent = ?", a.to_string());
        }
        let q = format!(
            "SELECT agent, state, reason, from_ms, to_ms FROM agent_states {} ORDER BY agent, from_ms, id",
            w.sql()
        );
        self.rows("agent states", &q, &w.args, |r| {
            Ok(AgentInterval {
                agent: r.get(0)?,
                state: r.get(1)?,
                reason: r.get(2)?,
                from_ms: r.get(3)?,
                to_ms: r.get(4)?,
            })
        })
    }

    /// IVR nodes entered in the range.
    pub fn ivr_visits(&self, from_ms: i64, to_ms: i64) -> Result<Vec<IvrVisitRow>, StoreError> {
        self.rows(
            "ivr visits",
            "SELECT run, call, at_ms, flow, node FROM ivr_visits WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY id",
            &[from_ms.into(), to_ms.into()],
            |r| {
                Ok(IvrVisitRow {
                    run: r.get(0)?,
                    call: r.get::<_, i64>(1)? as u64,
                    at_ms: r.get(2)?,
                    flow: r.get(3)?,
                    node: r.get(4)?,
                })
            },
        )
    }

    /// The latest calls from `number`, newest first (the screen pop's history).
    pub fn previous_contacts(&self, number: &str, limit: usize) -> Result<Vec<Contact>, StoreError> {
        self.rows(
            "previous contacts",
            "SELECT run, call, arrived_ms, queue, agent, outcome, ended_ms - arrived_ms FROM calls
             WHERE caller = ?1 ORDER BY arrived_ms DESC, id DESC LIMIT ?2",
            &[number.to_string().into(), (limit as i64).into()],
            |r| {
                Ok(Contact {
                    run: r.get(0)?,
                    call: r.get::<_, i64>(1)? as u64,
                    arrived_ms: r.get(2)?,
                    queue: r.get(3)?,
                    agent: r.get(4)?,
                    outcome: r.get(5)?,
                    duration_ms: r.get(6)?,
                })
            },
        )
    }

    /// Calls `agent` answered since `since_ms`, oldest first.
    pub fn agent_calls_since(&self, agent: &str, since_ms: i64) -> Result<Vec<AgentCall>, StoreError> {
        self.rows(
            "agent calls",
            "SELECT run, call, caller, queue, answered_ms, ended_ms FROM calls
             WHERE agent = ?1 AND answered_ms IS NOT NULL AND answered_ms >= ?2 ORDER BY answered_ms, id",
            &[agent.to_string().into(), since_ms.into()],
            |r| {
                Ok(AgentCall {
                    run: r.get(0)?,
                    call: r.get::<_, i64>(1)? as u64,
                    caller: r.get(2)?,
                    queue: r.get(3)?,
                    answered_ms: r.get(4)?,
                    ended_ms: r.get(5)?,
                })
            },
        )
    }

    /// The recording index, oldest first: the recordings that are there (a recording
    /// whose file could not be written, or that retention deleted, is not listed;
    /// [`Store::recording`] still finds it and says why).
    pub fn recordings(&self, f: &RecordingFilter) -> Result<Vec<RecordingRow>, StoreError> {
        let mut w = Where::default();
        w.parts.push("failed IS NULL AND deleted_ms IS NULL".into());
        w.opt_i("started_ms >= ?", f.from_ms);
        w.opt_i("started_ms < ?", f.to_ms);
        w.opt_s("agent = ?", &f.agent);
        w.opt_s("queue = ?", &f.queue);
        w.opt_s("caller = ?", &f.caller);
        w.opt_s("tag = ?", &f.tag);
        let q = format!("SELECT * FROM recordings {} ORDER BY started_ms, id", w.sql());
        self.rows("recordings", &q, &w.args, recording_row)
    }

    pub fn recording(&self, id: u64) -> Result<RecordingRow, StoreError> {
        optional(
            "recording",
            self.conn.query_row("SELECT * FROM recordings WHERE id = ?1", params![id as i64], recording_row),
        )?
        .ok_or_else(|| StoreError::not_found(format!("no recording {id}")))
    }

    /// The next free recording id (the policy continues from here after a restart).
    pub fn next_recording_id(&self) -> Result<u64, StoreError> {
        let max: Option<i64> =
            sql("recording id", self.conn.query_row("SELECT MAX(id) FROM recordings", [], |r| r.get(0)))?;
        Ok(max.map_or(1, |m| m as u64 + 1))
    }

    /// Set a recording's tag and, when given, its retention class.
    pub fn tag_recording(
        &self,
        id: u64,
        tag: Option<&str>,
        retention: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = sql(
            "tag",
            self.conn.execute(
                "UPDATE recordings SET tag = ?2, retention = COALESCE(?3, retention) WHERE id = ?1",
                params![id as i64, tag, retention],
            ),
        )?;
        if n == 0 {
            return Err(StoreError::not_found(format!("no recording {id}")));
        }
        Ok(())
    }

    /// Voicemail, oldest first.
    pub fn voicemails(&self, f: &VoicemailFilter) -> Result<Vec<VoicemailRow>, StoreError> {
        let mut w = Where::default();
        w.opt_i("left_ms >= ?", f.from_ms);
        w.opt_i("left_ms < ?", f.to_ms);
        w.opt_s("mailbox = ?", &f.mailbox);
        w.opt_s("queue = ?", &f.queue);
        w.opt_s("caller = ?", &f.caller);
        if f.unheard {
            w.add("listened = ?", 0);
        }
        let q = format!(
            "SELECT id, mailbox, caller, access, queue, left_ms, duration_ms, path, listened, note
             FROM voicemail {} ORDER BY left_ms, id",
            w.sql()
        );
        self.rows("voicemail", &q, &w.args, voicemail_row)
    }

    pub fn voicemail(&self, id: i64) -> Result<VoicemailRow, StoreError> {
        optional(
            "voicemail",
            self.conn.query_row(
                "SELECT id, mailbox, caller, access, queue, left_ms, duration_ms, path, listened, note
                 FROM voicemail WHERE id = ?1",
                params![id],
                voicemail_row,
            ),
        )?
        .ok_or_else(|| StoreError::not_found(format!("no voicemail {id}")))
    }

    pub fn mark_voicemail_listened(&self, id: i64) -> Result<(), StoreError> {
        let n = sql("voicemail", self.conn.execute("UPDATE voicemail SET listened = 1 WHERE id = ?1", [id]))?;
        if n == 0 {
            return Err(StoreError::not_found(format!("no voicemail {id}")));
        }
        Ok(())
    }

    pub fn set_voicemail_note(&self, id: i64, note: &str) -> Result<(), StoreError> {
        let n = sql(
            "voicemail",
            self.conn.execute("UPDATE voicemail SET note = ?2 WHERE id = ?1", params![id, note]),
        )?;
        if n == 0 {
            return Err(StoreError::not_found(format!("no voicemail {id}")));
        }
        Ok(())
    }

    /// Add a recording schedule; returns its id.
    pub fn add_schedule(
        &self,
        agent: &str,
        from_ms: i64,
        duration_ms: i64,
        note: Option<&str>,
    ) -> Result<i64, StoreError> {
        sql(
            "schedule",
            self.conn.execute(
                "INSERT INTO recording_schedules (agent, from_ms, duration_ms, note) VALUES (?1, ?2, ?3, ?4)",
                params![agent, from_ms, duration_ms, note],
            ),
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        self.rows(
            "schedules",
            "SELECT id, agent, from_ms, duration_ms, note FROM recording_schedules ORDER BY from_ms, id",
            &[],
            |r| {
                Ok(ScheduleRow {
                    id: r.get(0)?,
                    agent: r.get(1)?,
                    from_ms: r.get(2)?,
                    duration_ms: r.get(3)?,
                    note: r.get(4)?,
                })
            },
        )
    }

    pub fn remove_schedule(&self, id: i64) -> Result<(), StoreError> {
        let n = sql("schedule", self.conn.execute("DELETE FROM recording_schedules WHERE id = ?1", [id]))?;
        if n == 0 {
            return Err(StoreError::not_found(format!("no recording schedule {id}")));
        }
        Ok(())
    }
}

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        run: r.get(0)?,
        call: r.get::<_, i64>(1)? as u64,
        at_ms: r.get(2)?,
        kind: r.get(3)?,
        device: r.get(4)?,
        agent: r.get(5)?,
        detail: r.get(6)?,
    })
}

fn recording_row(r: &Row<'_>) -> rusqlite::Result<RecordingRow> {
    Ok(RecordingRow {
        id: r.get::<_, i64>("id")? as u64,
        run: r.get("run")?,
        call: r.get::<_, Option<i64>>("call")?.map(|c| c as u64),
        agent: r.get("agent")?,
        queue: r.get("queue")?,
        caller: r.get("caller")?,
        started_ms: r.get("started_ms")?,
        duration_ms: r.get("duration_ms")?,
        path: r.get("path")?,
        format: r.get("format")?,
        reason: r.get("reason")?,
        finished: r.get("finished")?,
        cut_short: r.get("cut_short")?,
        dropped: r.get("dropped")?,
        retention: r.get("retention")?,
        tag: r.get("tag")?,
        failed: r.get("failed")?,
        deleted_ms: r.get("deleted_ms")?,
    })
}

fn voicemail_row(r: &Row<'_>) -> rusqlite::Result<VoicemailRow> {
    Ok(VoicemailRow {
        id: r.get(0)?,
        mailbox: r.get(1)?,
        caller: r.get(2)?,
        access: r.get(3)?,
        queue: r.get(4)?,
        left_ms: r.get(5)?,
        duration_ms: r.get(6)?,
        path: r.get(7)?,
        listened: r.get(8)?,
        note: r.get(9)?,
    })
}
