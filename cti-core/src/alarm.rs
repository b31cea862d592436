//! System alarms: conditions an operator must act on (today one: the disk is full or
//! failing), raised and cleared by the threads that see them (the store writer, the
//! recorder's events on the engine thread, the retention sweep), one alarm however many
//! sources see it. Each change is a log line, a `SystemAlarm` event to every
//! supervisor on the CTI link (docs/protocol.md) and a banner on the wallboard; the
//! alarms active now are sent to a supervisor who logs in or starts a monitor.
//!
//! [`Alarms`] is shared (`Arc`) and cheap: a mutex over a small map, held for no I/O
//! but a non-blocking send to the link.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crossbeam_channel::Sender;

use crate::link::{LinkHandle, LinkMsg};

/// The disk under the store or the recordings is full or failing, or the recording
/// disk's watermark cannot be met.
pub const DISK_FULL: &str = "disk_full";

/// One alarm's state, as the link sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemAlarm {
    /// `disk_full`.
    pub alarm: String,
    /// `major`.
    pub severity: String,
    /// Raised (true) or cleared.
    pub raised: bool,
    /// What is wrong and what it costs, for people.
    pub text: String,
    pub at_unix_ms: i64,
}

#[derive(Default)]
struct State {
    /// (alarm, source) → text, for every source that sees the condition now.
    sources: BTreeMap<(String, String), String>,
    /// The alarms raised now.
    active: BTreeMap<String, SystemAlarm>,
    link: Option<LinkHandle>,
    watchers: Vec<Sender<SystemAlarm>>,
}

/// The installation's alarms. See the module documentation.
#[derive(Default)]
pub struct Alarms {
    state: Mutex<State>,
}

impl std::fmt::Debug for Alarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alarms").field("active", &self.active()).finish()
    }
}

impl Alarms {
    pub fn new() -> Alarms {
        Alarms::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `source` (`store`, `recorder`, `retention`) sees the condition `alarm`. The
    /// alarm is raised unless another source raised it already.
    pub fn raise(&self, alarm: &str, source: &str, text: &str) {
        let mut s = self.lock();
        s.sources.insert((alarm.to_string(), source.to_string()), text.to_string());
        if s.active.contains_key(alarm) {
            return;
        }
        let a = SystemAlarm {
            alarm: alarm.to_string(),
            severity: "major".into(),
            raised: true,
            text: text.to_string(),
            at_unix_ms: crate::link::now_unix_ms(),
        };
        tracing::error!("ALARM {alarm} raised ({source}): {text}");
        s.active.insert(alarm.to_string(), a.clone());
        publish(&mut s, a);
    }

    /// `source` no longer sees `alarm`; the alarm clears when no source sees it.
    pub fn clear(&self, alarm: &str, source: &str, text: &str) {
        let mut s = self.lock();
        if s.sources.remove(&(alarm.to_string(), source.to_string())).is_none() {
            return;
        }
        if s.sources.keys().any(|(a, _)| a == alarm) || s.active.remove(alarm).is_none() {
            return;
        }
        let a = SystemAlarm {
            alarm: alarm.to_string(),
            severity: "major".into(),
            raised: false,
            text: text.to_string(),
            at_unix_ms: crate::link::now_unix_ms(),
        };
        tracing::warn!("ALARM {alarm} cleared ({source}): {text}");
        publish(&mut s, a);
    }

    /// Whether `source` sees `alarm` now.
    pub fn seen_by(&self, alarm: &str, source: &str) -> bool {
        self.lock().sources.contains_key(&(alarm.to_string(), source.to_string()))
    }

    /// Every (alarm, source, text) seen now.
    pub fn sources(&self) -> Vec<(String, String, String)> {
        self.lock().sources.iter().map(|((a, s), t)| (a.clone(), s.clone(), t.clone())).collect()
    }

    /// The alarms raised now.
    pub fn active(&self) -> Vec<SystemAlarm> {
        self.lock().active.values().cloned().collect()
    }

    /// From now on, changes go to the CTI link too; the alarms raised before it
    /// started are sent at once.
    pub fn set_link(&self, link: LinkHandle) {
        let mut s = self.lock();
        for a in s.active.values() {
            link.send(LinkMsg::Alarm(a.clone()));
        }
        s.link = Some(link);
    }

    /// Every change from now on is also sent here (tests, the terminal summary);
    /// dropped when the receiver is gone or full.
    pub fn watch(&self, tx: Sender<SystemAlarm>) {
        self.lock().watchers.push(tx);
    }
}

fn publish(s: &mut State, a: SystemAlarm) {
    if let Some(link) = &s.link {
        link.send(LinkMsg::Alarm(a.clone()));
    }
    s.watchers
        .retain(|w| !matches!(w.try_send(a.clone()), Err(crossbeam_channel::TrySendError::Disconnected(_))));
}
