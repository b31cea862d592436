//! Reports computed from the store: call detail, current calls, missed calls, voicemail,
//! agents, agent groups, queues and the IVR, over a time range and optionally by
//! period (half-hour, hour, day, week, month, in local time).
//!
//! Each report is a typed row list (for tests and the wallboard) that turns into a
//! [`Table`] for printing as a table, CSV or JSON. The definitions of every figure are
//! in docs/reports.md; the code follows them and says where in comments.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::cdr::AgentInterval;
use crate::store::{CallFilter, LegRow, Store, StoreError, VoicemailFilter};

/// Grouping of figures by period.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum By {
    HalfHour,
    Hour,
    Day,
    /// Weeks start on Monday.
    Week,
    Month,
}

impl By {
    pub fn parse(s: &str) -> Option<By> {
        Some(match s {
            "half-hour" | "half_hour" | "30m" => By::HalfHour,
            "hour" => By::Hour,
            "day" => By::Day,
            "week" => By::Week,
            "month" => By::Month,
            _ => return None,
        })
    }
}

/// What a report covers.
#[derive(Clone, Debug)]
pub struct Params {
    /// Unix ms, inclusive.
    pub from_ms: i64,
    /// Unix ms, exclusive.
    pub to_ms: i64,
    pub by: Option<By>,
    pub agent: Option<String>,
    pub queue: Option<String>,
    /// Local time for periods and printed times.
    pub utc_offset_secs: i32,
    /// Service level threshold (seconds): answered within it. 20 by default.
    pub service_level_secs: u32,
    /// Agent groups (name, agent ids), for the agent-group report.
    pub groups: Vec<(String, Vec<String>)>,
    /// The time the report is made (Unix ms): open agent intervals count up to it.
    pub now_ms: i64,
}

impl Params {
    pub fn new(from_ms: i64, to_ms: i64) -> Params {
        Params {
            from_ms,
            to_ms,
            by: None,
            agent: None,
            queue: None,
            utc_offset_secs: 0,
            service_level_secs: 20,
            groups: Vec::new(),
            now_ms: to_ms,
        }
    }

    /// The start (Unix ms) of the period holding `t`, or the range start without `by`.
    pub fn period_of(&self, t: i64) -> i64 {
        let Some(by) = self.by else { return self.from_ms };
        let off = i64::from(self.utc_offset_secs) * 1000;
        let local = t + off;
        let start_local = match by {
            By::HalfHour => local.div_euclid(1_800_000) * 1_800_000,
            By::Hour => local.div_euclid(3_600_000) * 3_600_000,
            By::Day => local.div_euclid(86_400_000) * 86_400_000,
            By::Week => {
                let day = local.div_euclid(86_400_000);
                // 1970-01-01 was a Thursday: Monday-first weekday index 3.
                let weekday = (day + 3).rem_euclid(7);
                (day - weekday) * 86_400_000
            }
            By::Month => {
                let (y, m, _) = civil_from_days(local.div_euclid(86_400_000));
                days_from_civil(y, m, 1) * 86_400_000
            }
        };
        start_local - off
    }

    /// A Unix ms time printed in local time: `2026-11-02 09:30:00`.
    pub fn local(&self, t: i64) -> String {
        format_local(t, self.utc_offset_secs)
    }
}

/// `YYYY-MM-DD HH:MM:SS` at a UTC offset.
pub fn format_local(t: i64, utc_offset_secs: i32) -> String {
    let local = t + i64::from(utc_offset_secs) * 1000;
    let days = local.div_euclid(86_400_000);
    let ms = local.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let s = ms / 1000;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Parse `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` or `YYYY-MM-DDTHH:MM[:SS]` in local time
/// (at `utc_offset_secs`) to Unix ms.
pub fn parse_local(s: &str, utc_offset_secs: i32) -> Result<i64, String> {
    let bad = || format!("{s:?}: expected a date YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]");
    let s = s.trim();
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let num = |p: Option<&str>| p.and_then(|x| x.parse::<i64>().ok());
    let (y, m, d) =
        (num(dp.next()).ok_or_else(bad)?, num(dp.next()).ok_or_else(bad)?, num(dp.next()).ok_or_else(bad)?);
    if dp.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut secs = 0;
    if let Some(t) = time {
        let parts: Vec<&str> = t.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let h = num(parts.first().copied()).filter(|h| (0..24).contains(h)).ok_or_else(bad)?;
        let mi = num(parts.get(1).copied()).filter(|x| (0..60).contains(x)).ok_or_else(bad)?;
        let se = match parts.get(2) {
            Some(p) => num(Some(p)).filter(|x| (0..60).contains(x)).ok_or_else(bad)?,
            None => 0,
        };
        secs = h * 3600 + mi * 60 + se;
    }
    let days = days_from_civil(y as i32, m as u32, d as u32);
    Ok((days * 86_400 + secs - i64::from(utc_offset_secs)) * 1000)
}

use crate::engine::civil_from_days;

fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A printable report: named columns and rows of JSON values.
///
/// A column's key says its unit, the same in every report: `…_s` is a duration in
/// seconds (`m:ss`, or `h:mm:ss` from an hour, in tables; seconds in CSV and JSON),
/// `…_pct` a percentage (`85.0%` in tables, `85.0` in CSV and JSON). Tables head
/// their columns in words (`avg_wait_s` → "Average wait"); CSV and JSON keep the keys.
/// The `run` column (which server run a call number belongs to) is left out of tables.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// How a column's values read, from its key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A duration in seconds (`_s`).
    Seconds,
    /// A percentage (`_pct`).
    Percent,
    /// Anything else: counts, names, times of day.
    Plain,
}

impl Unit {
    pub fn of(key: &str) -> Unit {
        if key.ends_with("_s") {
            Unit::Seconds
        } else if key.ends_with("_pct") {
            Unit::Percent
        } else {
            Unit::Plain
        }
    }
}

/// A column's heading in words: `avg_wait_s` → "Average wait", `service_level_pct` →
/// "Service level".
pub fn heading(key: &str) -> String {
    let base = key.strip_suffix("_pct").or_else(|| key.strip_suffix("_s")).unwrap_or(key);
    let words: Vec<&str> = base
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| match w {
            "avg" => "average",
            "ivr" => "IVR",
            "asa" => "ASA",
            other => other,
        })
        .collect();
    let out = words.join(" ");
    match out.get(0..1) {
        Some(first) => first.to_uppercase() + &out[1..],
        None => out,
    }
}

/// Seconds as `m:ss`, or `h:mm:ss` from an hour (rounded to the second).
pub fn clock_duration(secs: f64) -> String {
    let t = secs.max(0.0).round() as u64;
    if t >= 3600 {
        format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    } else {
        format!("{}:{:02}", t / 60, t % 60)
    }
}

impl Table {
    /// Build from serializable rows: each field is a column, in declaration order.
    pub fn from_rows<T: Serialize>(rows: &[T]) -> Table {
        let mut t = Table::default();
        for r in rows {
            // Through text: serde_json's map sorts keys, its writer keeps field order.
            let Ok(text) = serde_json::to_string(r) else { continue };
            let Ok(Ordered(fields)) = serde_json::from_str::<Ordered>(&text) else { continue };
            if t.columns.is_empty() {
                t.columns = fields.iter().map(|(k, _)| k.clone()).collect();
            }
            t.rows.push(fields.into_iter().map(|(_, v)| v).collect());
        }
        t
    }

    /// A value as CSV carries it: seconds to the millisecond, percentages to 0.1.
    fn cell(key: &str, v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Number(n) => match (n.as_f64(), Unit::of(key)) {
                (Some(f), Unit::Percent) => format!("{f:.1}"),
                (Some(f), _) if n.is_f64() => {
                    let t = format!("{f:.3}");
                    t.trim_end_matches('0').trim_end_matches('.').to_string()
                }
                _ => n.to_string(),
            },
            other => other.to_string(),
        }
    }

    /// A value as a person reads it: durations `m:ss`, percentages with `%`, yes/no.
    pub fn display_cell(key: &str, v: &Value) -> String {
        match (v, Unit::of(key)) {
            (Value::Number(n), Unit::Seconds) => clock_duration(n.as_f64().unwrap_or(0.0)),
            (Value::Number(n), Unit::Percent) => format!("{:.1}%", n.as_f64().unwrap_or(0.0)),
            (Value::Bool(b), _) => if *b { "yes" } else { "no" }.into(),
            _ => Self::cell(key, v),
        }
    }

    /// The columns a table for people shows (all but `run`).
    pub fn shown(&self) -> Vec<usize> {
        (0..self.columns.len()).filter(|&i| self.columns[i] != "run").collect()
    }

    /// Aligned columns for a terminal, headed in words; numbers and durations to the
    /// right.
    pub fn to_text(&self) -> String {
        if self.rows.is_empty() {
            return "(no rows)\n".into();
        }
        let shown = self.shown();
        let heads: Vec<String> = shown.iter().map(|&i| heading(&self.columns[i])).collect();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| shown.iter().map(|&i| Self::display_cell(&self.columns[i], &r[i])).collect())
            .collect();
        let right: Vec<bool> = shown
            .iter()
            .map(|&i| self.rows.iter().all(|r| matches!(r[i], Value::Number(_) | Value::Null)))
            .collect();
        let widths: Vec<usize> = (0..shown.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([heads[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let line = |out: &mut String, vals: Vec<&str>| {
            let parts: Vec<String> = vals
                .iter()
                .zip(&widths)
                .zip(&right)
                .map(|((v, w), r)| if *r { format!("{v:>w$}") } else { format!("{v:<w$}") })
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&mut out, heads.iter().map(String::as_str).collect());
        for r in &cells {
            line(&mut out, r.iter().map(String::as_str).collect());
        }
        out
    }

    /// RFC 4180 CSV with a header line.
    pub fn to_csv(&self) -> String {
        let esc = |s: String| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        };
        let mut out = self.columns.iter().map(|c| esc(c.clone())).collect::<Vec<_>>().join(",");
        out.push_str("\r\n");
        for r in &self.rows {
            let cells = self.columns.iter().zip(r).map(|(k, v)| esc(Self::cell(k, v)));
            out.push_str(&cells.collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// A JSON array of objects, fields in column order, seconds to the millisecond and
    /// percentages to 0.001.
    pub fn to_json(&self) -> String {
        let mut out = String::from("[");
        for (i, r) in self.rows.iter().enumerate() {
            out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
            for (j, (c, v)) in self.columns.iter().zip(r).enumerate() {
                let v = match v {
                    Value::Number(n) if n.is_f64() => {
                        let x = (n.as_f64().unwrap_or(0.0) * 1000.0).round() / 1000.0;
                        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
                    }
                    other => other.clone(),
                };
                let key = Value::String(c.clone());
                let _ = write!(out, "{}\n    {key}: {v}", if j == 0 { "" } else { "," });
            }
            out.push_str("\n  }");
        }
        out.push_str(if self.rows.is_empty() { "]\n" } else { "\n]\n" });
        out
    }
}

/// A JSON object's fields in the order written.
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, Value>()? {
                    v.push((k, val));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V)
    }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// `n / d` as a percentage (0 when `d` is 0).
fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

/// The missed kind of a call: its record's, or `shutdown` for an unanswered inbound
/// call cut when the server stopped without closing it (found open at the next start).
fn missed_kind(c: &crate::store::CallRow) -> Option<String> {
    c.missed.clone().or_else(|| {
        (c.outcome.as_deref() == Some("cut") && c.answered_ms.is_none() && c.direction == "inbound")
            .then(|| "shutdown".to_string())
    })
}

/// A line of the call detail list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallDetail {
    /// The call number the wallboard and the CTI link show.
    pub call: u64,
    /// The server run it belongs to (Unix ms of the start); numbers restart each run.
    pub run: i64,
    pub arrived: String,
    pub direction: String,
    pub caller: String,
    pub called: String,
    pub queue: String,
    pub agent: String,
    /// Seconds from arrival to answer (or to the end, unanswered).
    pub wait_s: f64,
    /// Seconds from answer to the end.
    pub talk_s: f64,
    pub hold_s: f64,
    pub outcome: String,
    pub missed: String,
    pub released_by: String,
    pub cause: Option<u8>,
    pub state: String,
    /// The IVR nodes the call went through, in order: `flow: node > node`.
    pub ivr_path: String,
}

fn call_filter(p: &Params) -> CallFilter {
    CallFilter {
        from_ms: Some(p.from_ms),
        to_ms: Some(p.to_ms),
        agent: p.agent.clone(),
        queue: p.queue.clone(),
        ..CallFilter::default()
    }
}

/// Each call's IVR path (`flow: node > node`), for calls that arrived in `[from, to)`
/// (visits up to a day later).
fn ivr_paths(store: &Store, from_ms: i64, to_ms: i64) -> Result<BTreeMap<(i64, u64), String>, StoreError> {
    let mut paths: BTreeMap<(i64, u64), (Option<String>, String)> = BTreeMap::new();
    for v in store.ivr_visits(from_ms, to_ms.saturating_add(86_400_000))? {
        let (flow, path) = paths.entry((v.run, v.call)).or_default();
        if v.flow.is_some() && *flow != v.flow {
            if !path.is_empty() {
                path.push_str("; ");
            }
            let _ = write!(path, "{}: ", v.flow.as_deref().unwrap_or_default());
            *flow = v.flow.clone();
        } else if !path.is_empty() {
            path.push_str(" > ");
        }
        path.push_str(&v.node);
    }
    Ok(paths.into_iter().map(|(k, (_, p))| (k, p)).collect())
}

fn detail(p: &Params, c: &crate::store::CallRow, paths: &BTreeMap<(i64, u64), String>) -> CallDetail {
    let end = c.ended_ms.unwrap_or(p.now_ms);
    CallDetail {
        call: c.call,
        run: c.run,
        arrived: p.local(c.arrived_ms),
        direction: c.direction.clone(),
        caller: c.caller.clone().unwrap_or_default(),
        called: c.called.clone().unwrap_or_default(),
        queue: c.queue.clone().unwrap_or_default(),
        agent: c.agent.clone().unwrap_or_default(),
        wait_s: secs(c.answered_ms.unwrap_or(end) - c.arrived_ms),
        talk_s: c.answered_ms.map_or(0.0, |a| secs(end - a)),
        hold_s: secs(c.hold_ms),
        outcome: c.outcome.clone().unwrap_or_default(),
        missed: missed_kind(c).unwrap_or_default(),
        released_by: c.released_side.clone().unwrap_or_default(),
        cause: c.cause,
        state: c.state.clone(),
        ivr_path: paths.get(&(c.run, c.call)).cloned().unwrap_or_default(),
    }
}

/// Every call that arrived in the range.
pub fn call_detail(store: &Store, p: &Params) -> Result<Vec<CallDetail>, StoreError> {
    let paths = ivr_paths(store, p.from_ms, p.to_ms)?;
    Ok(store.calls(&call_filter(p))?.iter().map(|c| detail(p, c, &paths)).collect())
}

/// Calls in progress now (open in the store), whatever the range.
pub fn current_calls(store: &Store, p: &Params) -> Result<Vec<CallDetail>, StoreError> {
    let f = CallFilter {
        state: Some("open".into()),
        agent: p.agent.clone(),
        queue: p.queue.clone(),
        ..Default::default()
    };
    let calls = store.calls(&f)?;
    let from = calls.iter().map(|c| c.arrived_ms).min().unwrap_or(p.now_ms);
    let paths = ivr_paths(store, from, p.now_ms.max(from + 1))?;
    Ok(calls.iter().map(|c| detail(p, c, &paths)).collect())
}

/// A missed call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MissedCall {
    /// The call number the wallboard and the CTI link show.
    pub call: u64,
    /// The server run it belongs to (Unix ms of the start).
    pub run: i64,
    pub arrived: String,
    pub caller: String,
    pub called: String,
    pub queue: String,
    /// `in_ivr`, `no_agent`, `not_answered`, `abandoned`, `after_hours`, `shutdown`.
    pub kind: String,
    /// Seconds from arrival to the end.
    pub waited_s: f64,
    /// Agents whose phones rang with it.
    pub agents_rung: String,
}

/// Missed calls per period, by kind.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct MissedCounts {
    pub period: String,
    pub in_ivr: u64,
    pub no_agent: u64,
    pub not_answered: u64,
    pub abandoned: u64,
    pub after_hours: u64,
    pub shutdown: u64,
    pub total: u64,
}

/// The missed calls in the range, oldest first.
pub fn missed_calls(store: &Store, p: &Params) -> Result<Vec<MissedCall>, StoreError> {
    let legs = store.legs("station:", p.from_ms, p.to_ms)?;
    let mut rung: BTreeMap<(i64, u64), Vec<String>> = BTreeMap::new();
    for l in legs {
        if let Some(a) = l.agent.clone() {
            let v = rung.entry((l.run, l.call)).or_default();
            if !v.contains(&a) {
                v.push(a);
            }
        }
    }
    Ok(store
        .calls(&call_filter(p))?
        .into_iter()
        .filter_map(|c| {
            let kind = missed_kind(&c)?;
            Some(MissedCall {
                call: c.call,
                run: c.run,
                arrived: p.local(c.arrived_ms),
                caller: c.caller.clone().unwrap_or_default(),
                called: c.called.clone().unwrap_or_default(),
                queue: c.queue.clone().unwrap_or_default(),
                kind,
                waited_s: secs(c.ended_ms.unwrap_or(c.arrived_ms) - c.arrived_ms),
                agents_rung: rung.get(&(c.run, c.call)).map(|v| v.join(" ")).unwrap_or_default(),
            })
        })
        .collect())
}

/// Missed calls counted by kind, per period (all in one row without `by`).
pub fn missed_counts(store: &Store, p: &Params) -> Result<Vec<MissedCounts>, StoreError> {
    let mut by: BTreeMap<i64, MissedCounts> = BTreeMap::new();
    for c in store.calls(&call_filter(p))? {
        let Some(kind) = missed_kind(&c) else { continue };
        let period = p.period_of(c.arrived_ms);
        let m = by
            .entry(period)
            .or_insert_with(|| MissedCounts { period: p.local(period), ..Default::default() });
        match kind.as_str() {
            "in_ivr" => m.in_ivr += 1,
            "no_agent" => m.no_agent += 1,
            "not_answered" => m.not_answered += 1,
            "after_hours" => m.after_hours += 1,
            "shutdown" => m.shutdown += 1,
            _ => m.abandoned += 1,
        }
        m.total += 1;
    }
    Ok(by.into_values().collect())
}

/// A voicemail line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VoicemailLine {
    pub id: i64,
    pub left: String,
    pub caller: String,
    pub access_number: String,
    pub queue: String,
    pub mailbox: String,
    pub length_s: f64,
    pub listened: bool,
    pub note: String,
}

pub fn voicemail_list(store: &Store, p: &Params) -> Result<Vec<VoicemailLine>, StoreError> {
    let f = VoicemailFilter {
        from_ms: Some(p.from_ms),
        to_ms: Some(p.to_ms),
        queue: p.queue.clone(),
        ..VoicemailFilter::default()
    };
    Ok(store
        .voicemails(&f)?
        .into_iter()
        .map(|v| VoicemailLine {
            id: v.id,
            left: p.local(v.left_ms),
            caller: v.caller.unwrap_or_default(),
            access_number: v.access.unwrap_or_default(),
            queue: v.queue.unwrap_or_default(),
            mailbox: v.mailbox,
            length_s: secs(v.duration_ms),
            listened: v.listened,
            note: v.note.unwrap_or_default(),
        })
        .collect())
}

/// Queue figures for one queue and period.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct QueueFigures {
    pub period: String,
    pub queue: String,
    /// Calls that entered the queue (each entry counts; a re-queue after a miss does not).
    pub offered: u64,
    pub answered: u64,
    /// The caller hung up while waiting or while an agent's phone rang.
    pub abandoned: u64,
    /// A queue limit (max wait, no agents, max length) sent the call away.
    pub timed_out: u64,
    /// Average wait of answered calls (seconds): average speed of answer.
    pub avg_wait_s: f64,
    /// Longest wait of any call, answered or not (seconds).
    pub longest_wait_s: f64,
    /// Talk time of the answered calls (seconds), answer to call end, summed.
    pub talk_s: f64,
    /// Average talk time of answered calls (seconds).
    pub avg_talk_s: f64,
    /// Answered within the threshold, over offered (percent).
    pub service_level_pct: f64,
    /// Abandoned over offered (percent).
    pub abandon_rate_pct: f64,
    /// Timed out over offered (percent): sent away by a queue limit, no answer.
    pub timeout_rate_pct: f64,
    #[serde(skip)]
    pub period_ms: i64,
    #[serde(skip)]
    wait_sum_ms: i64,
    #[serde(skip)]
    talk_sum_ms: i64,
    #[serde(skip)]
    within: u64,
}

/// Queue report: one row per queue (and period), from the queue legs of calls that
/// arrived in the range.
pub fn queue_report(store: &Store, p: &Params) -> Result<Vec<QueueFigures>, StoreError> {
    let threshold = i64::from(p.service_level_secs) * 1000;
    let mut by: BTreeMap<(i64, String), QueueFigures> = BTreeMap::new();
    for l in store.legs("queue:", p.from_ms, p.to_ms)? {
        let name = l.device.trim_start_matches("queue:").to_string();
        if p.queue.as_ref().is_some_and(|q| *q != name) {
            continue;
        }
        let Some(entered) = l.rung_ms else { continue };
        let period = p.period_of(entered);
        let f = by.entry((period, name.clone())).or_insert_with(|| QueueFigures {
            period: p.local(period),
            queue: name,
            period_ms: period,
            ..Default::default()
        });
        f.offered += 1;
        let left = l.answered_ms.or(l.ended_ms).unwrap_or(p.now_ms);
        let wait = left - entered;
        f.longest_wait_s = f.longest_wait_s.max(secs(wait));
        match l.outcome.as_str() {
            "answered" => {
                f.answered += 1;
                f.wait_sum_ms += wait;
                f.within += u64::from(wait <= threshold);
                let answered = l.answered_ms.unwrap_or(left);
                f.talk_sum_ms += l.call_ended_ms.unwrap_or(p.now_ms) - answered;
            }
            "abandoned" => f.abandoned += 1,
            "timed_out" => f.timed_out += 1,
            _ => {}
        }
    }
    Ok(by
        .into_values()
        .map(|mut f| {
            f.avg_wait_s = if f.answered == 0 { 0.0 } else { secs(f.wait_sum_ms) / f.answered as f64 };
            f.talk_s = secs(f.talk_sum_ms);
            f.avg_talk_s = if f.answered == 0 { 0.0 } else { secs(f.talk_sum_ms) / f.answered as f64 };
            f.service_level_pct = pct(f.within, f.offered);
            f.abandon_rate_pct = pct(f.abandoned, f.offered);
            f.timeout_rate_pct = pct(f.timed_out, f.offered);
            f
        })
        .collect())
}

/// Agent figures for one agent (or group) and period.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct AgentFigures {
    pub period: String,
    pub agent: String,
    /// Calls rung at the agent's phone.
    pub offered: u64,
    /// Calls the agent answered.
    pub handled: u64,
    /// Rung and not answered by the agent (rang out, refused).
    pub not_answered: u64,
    /// Not answered over offered (percent): the ring-no-answer rate.
    pub no_answer_rate_pct: f64,
    pub talk_s: f64,
    /// Talk time per handled call.
    pub avg_talk_s: f64,
    pub hold_s: f64,
    pub wrap_up_s: f64,
    pub ready_s: f64,
    pub not_ready_s: f64,
    pub ringing_s: f64,
    pub busy_s: f64,
    /// Time logged in (every state but logged out).
    pub logged_in_s: f64,
    /// Time with calls (ringing, busy, wrap-up) over that plus ready time (percent).
    pub occupancy_pct: f64,
    #[serde(skip)]
    pub period_ms: i64,
}

impl AgentFigures {
    /// The figures derived from the sums (rates, averages).
    fn finish(mut self) -> AgentFigures {
        self.no_answer_rate_pct = pct(self.not_answered, self.offered);
        self.avg_talk_s = if self.handled == 0 { 0.0 } else { self.talk_s / self.handled as f64 };
        let working = self.ringing_s + self.busy_s + self.wrap_up_s;
        let available = working + self.ready_s;
        self.occupancy_pct = if available > 0.0 { 100.0 * working / available } else { 0.0 };
        self
    }
}

/// Time an interval spends in `[from, to)`.
fn overlap(i: &AgentInterval, from: i64, to: i64, now: i64) -> i64 {
    let end = i.to_ms.unwrap_or(now);
    (end.min(to) - i.from_ms.max(from)).max(0)
}

/// Split an interval over the periods it spans, calling `f(period_start, ms)`.
fn split_interval(p: &Params, i: &AgentInterval, mut f: impl FnMut(i64, i64)) {
    let end = i.to_ms.unwrap_or(p.now_ms).min(p.to_ms);
    let mut t = i.from_ms.max(p.from_ms);
    while t < end {
        let period = p.period_of(t);
        let next = match p.by {
            None => end,
            Some(_) => {
                // The next period start: probe forward from this one.
                let mut probe = t + 1_800_000;
                while p.period_of(probe) == period {
                    probe += 1_800_000;
                }
                p.period_of(probe).max(t + 1)
            }
        };
        let stop = next.min(end);
        f(period, overlap(i, t, stop, p.now_ms));
        t = stop;
    }
}

/// Agent report: one row per agent (and period).
pub fn agent_report(store: &Store, p: &Params) -> Result<Vec<AgentFigures>, StoreError> {
    let mut by: BTreeMap<(i64, String), AgentFigures> = BTreeMap::new();
    let entry = |period: i64, agent: &str, by: &mut BTreeMap<(i64, String), AgentFigures>| {
        by.entry((period, agent.to_string()))
            .or_insert_with(|| AgentFigures {
                period: p.local(period),
                agent: agent.to_string(),
                period_ms: period,
                ..Default::default()
            })
            .period_ms
    };
    let legs: Vec<LegRow> = store.legs("station:", p.from_ms, p.to_ms)?;
    for l in &legs {
        let Some(agent) = &l.agent else { continue };
        if p.agent.as_ref().is_some_and(|a| a != agent) {
            continue;
        }
        let Some(rung) = l.rung_ms else { continue };
        let period = p.period_of(rung);
        entry(period, agent, &mut by);
        let f = by.get_mut(&(period, agent.clone())).expect("entered");
        f.offered += 1;
        match l.answered_ms {
            Some(a) => {
                f.handled += 1;
                f.talk_s += secs(l.ended_ms.or(l.call_ended_ms).unwrap_or(p.now_ms) - a);
            }
            None if l.outcome == "not_answered" => f.not_answered += 1,
            None => {}
        }
    }
    for c in store.calls(&call_filter(p))? {
        let Some(agent) = &c.agent else { continue };
        if c.hold_ms > 0 {
            let period = p.period_of(c.arrived_ms);
            entry(period, agent, &mut by);
            by.get_mut(&(period, agent.clone())).expect("entered").hold_s += secs(c.hold_ms);
        }
    }
    for i in store.agent_intervals(p.from_ms, p.to_ms, p.agent.as_deref())? {
        split_interval(p, &i, |period, ms| {
            entry(period, &i.agent, &mut by);
            let f = by.get_mut(&(period, i.agent.clone())).expect("entered");
            let s = secs(ms);
            match i.state.as_str() {
                "ready" => f.ready_s += s,
                "not ready" => f.not_ready_s += s,
                "ringing" => f.ringing_s += s,
                "busy" => f.busy_s += s,
                "working after call" => f.wrap_up_s += s,
                _ => {}
            }
            if i.state != "logged out" {
                f.logged_in_s += s;
            }
        });
    }
    Ok(by.into_values().map(AgentFigures::finish).collect())
}

/// Agent group report: the agent figures summed over each configured group.
pub fn agent_group_report(store: &Store, p: &Params) -> Result<Vec<AgentFigures>, StoreError> {
    let agents = agent_report(store, &Params { agent: None, ..p.clone() })?;
    let mut by: BTreeMap<(i64, String), AgentFigures> = BTreeMap::new();
    for (group, members) in &p.groups {
        for a in agents.iter().filter(|a| members.contains(&a.agent)) {
            let g = by.entry((a.period_ms, group.clone())).or_insert_with(|| AgentFigures {
                period: a.period.clone(),
                agent: group.clone(),
                period_ms: a.period_ms,
                ..Default::default()
            });
            g.offered += a.offered;
            g.handled += a.handled;
            g.not_answered += a.not_answered;
            g.talk_s += a.talk_s;
            g.hold_s += a.hold_s;
            g.wrap_up_s += a.wrap_up_s;
            g.ready_s += a.ready_s;
            g.not_ready_s += a.not_ready_s;
            g.ringing_s += a.ringing_s;
            g.busy_s += a.busy_s;
            g.logged_in_s += a.logged_in_s;
        }
    }
    Ok(by.into_values().map(AgentFigures::finish).collect())
}

/// One agent state interval (the agent report's state detail).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateDetail {
    pub agent: String,
    pub state: String,
    pub reason: String,
    pub from: String,
    pub to: String,
    pub duration_s: f64,
}

pub fn agent_state_detail(store: &Store, p: &Params) -> Result<Vec<StateDetail>, StoreError> {
    Ok(store
        .agent_intervals(p.from_ms, p.to_ms, p.agent.as_deref())?
        .into_iter()
        .map(|i| StateDetail {
            duration_s: secs(i.to_ms.unwrap_or(p.now_ms) - i.from_ms),
            agent: i.agent,
            state: i.state,
            reason: i.reason.unwrap_or_default(),
            from: p.local(i.from_ms),
            to: i.to_ms.map(|t| p.local(t)).unwrap_or_else(|| "(now)".into()),
        })
        .collect())
}

/// IVR figures for one flow and period.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct IvrFigures {
    pub period: String,
    pub flow: String,
    pub entries: u64,
    /// Left the IVR onward (to a queue, an agent, an outside number).
    pub left_onward: u64,
    /// The caller hung up in the IVR.
    pub caller_hung_up: u64,
    /// The IVR ended the call.
    pub ended_by_ivr: u64,
    /// The server ended it while shutting down.
    pub shutdown: u64,
    pub avg_time_s: f64,
    /// Exits by the last node visited: `node=count` pairs.
    pub exits_by_node: String,
    #[serde(skip)]
    time_sum_ms: i64,
    #[serde(skip)]
    nodes: BTreeMap<String, u64>,
}

pub fn ivr_report(store: &Store, p: &Params) -> Result<Vec<IvrFigures>, StoreError> {
    let mut last_node: BTreeMap<(i64, u64), Vec<(i64, String)>> = BTreeMap::new();
    for v in store.ivr_visits(p.from_ms, p.to_ms.saturating_add(86_400_000))? {
        last_node.entry((v.run, v.call)).or_default().push((v.at_ms, v.node));
    }
    let mut by: BTreeMap<(i64, String), IvrFigures> = BTreeMap::new();
    for l in store.legs("ivr:", p.from_ms, p.to_ms)? {
        let Some(entered) = l.rung_ms else { continue };
        let flow = l.device.trim_start_matches("ivr:").to_string();
        let period = p.period_of(entered);
        let f = by.entry((period, flow.clone())).or_insert_with(|| IvrFigures {
            period: p.local(period),
            flow,
            ..Default::default()
        });
        f.entries += 1;
        let left = l.ended_ms.unwrap_or(p.now_ms);
        f.time_sum_ms += left - entered;
        match l.outcome.as_str() {
            "caller_gone" => f.caller_hung_up += 1,
            "ended" => f.ended_by_ivr += 1,
            "shutdown" => f.shutdown += 1,
            _ => f.left_onward += 1,
        }
        let node = last_node
            .get(&(l.run, l.call))
            .and_then(|v| v.iter().rfind(|(t, _)| *t >= entered && *t <= left))
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| "(none)".into());
        *f.nodes.entry(node).or_default() += 1;
    }
    Ok(by
        .into_values()
        .map(|mut f| {
            f.avg_time_s = if f.entries == 0 { 0.0 } else { secs(f.time_sum_ms) / f.entries as f64 };
            f.exits_by_node = f.nodes.iter().map(|(n, c)| format!("{n}={c}")).collect::<Vec<_>>().join(" ");
            f
        })
        .collect())
}

/// The report kinds `hotline report` knows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Calls,
    Current,
    Missed,
    Voicemail,
    Agent,
    AgentStates,
    AgentGroup,
    Queue,
    Ivr,
}

impl Kind {
    pub const ALL: &'static [(&'static str, Kind)] = &[
        ("calls", Kind::Calls),
        ("current", Kind::Current),
        ("missed", Kind::Missed),
        ("voicemail", Kind::Voicemail),
        ("agent", Kind::Agent),
        ("agent-states", Kind::AgentStates),
        ("agent-group", Kind::AgentGroup),
        ("queue", Kind::Queue),
        ("ivr", Kind::Ivr),
    ];
    pub fn parse(s: &str) -> Option<Kind> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|&(_, k)| k)
    }
}

/// Run a report into a printable table.
pub fn run(store: &Store, kind: Kind, p: &Params) -> Result<Table, StoreError> {
    Ok(match kind {
        Kind::Calls => Table::from_rows(&call_detail(store, p)?),
        Kind::Current => Table::from_rows(&current_calls(store, p)?),
        Kind::Missed if p.by.is_some() => Table::from_rows(&missed_counts(store, p)?),
        Kind::Missed => Table::from_rows(&missed_calls(store, p)?),
        Kind::Voicemail => Table::from_rows(&voicemail_list(store, p)?),
        Kind::Agent => Table::from_rows(&agent_report(store, p)?),
        Kind::AgentStates => Table::from_rows(&agent_state_detail(store, p)?),
        Kind::AgentGroup => Table::from_rows(&agent_group_report(store, p)?),
        Kind::Queue => Table::from_rows(&queue_report(store, p)?),
        Kind::Ivr => Table::from_rows(&ivr_report(store, p)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_parse_and_print_back() {
        let t = parse_local("2026-11-02 09:30", 8 * 3600).unwrap();
        assert_eq!(format_local(t, 8 * 3600), "2026-11-02 09:30:00");
        assert_eq!(format_local(t, 0), "2026-11-02 01:30:00");
        assert!(parse_local("2026-13-02", 0).is_err());
        assert!(parse_local("yesterday", 0).is_err());
    }

    #[test]
    fn periods_start_on_the_half_hour_the_monday_and_the_first_of_the_month() {
        let mut p = Params::new(0, i64::MAX);
        p.utc_offset_secs = 8 * 3600;
        let t = parse_local("2026-11-05 10:47:12", p.utc_offset_secs).unwrap(); // a Thursday
        for (by, want) in [
            (By::HalfHour, "2026-11-05 10:30:00"),
            (By::Hour, "2026-11-05 10:00:00"),
            (By::Day, "2026-11-05 00:00:00"),
            (By::Week, "2026-11-02 00:00:00"),
            (By::Month, "2026-11-01 00:00:00"),
        ] {
            p.by = Some(by);
            assert_eq!(p.local(p.period_of(t)), want, "{by:?}");
        }
    }
}
