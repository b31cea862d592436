//! Events as the C callback sees them: `hotline_event`, a flat `#[repr(C)]` view of one
//! server message (a CSTA event, an agent state change, a screen pop, an error), built
//! from the JSON line and borrowed by the callback for the duration of the call.

use std::ffi::{c_char, CString};
use std::ptr;

use serde_json::{Map, Value};

/// What an event is about. Unknown server events arrive as `Other` with their JSON.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum hotline_event_kind {
    /// An event this library does not name; read `json`.
    Other = 0,
    /// CSTA ServiceInitiated: `device` went off hook.
    ServiceInitiated = 1,
    /// CSTA Originated: a call was dialled from `device` (also in `calling`) to `called`.
    Originated = 2,
    /// CSTA Delivered: `device` is alerted (ringing) by `call` from `calling`.
    Delivered = 3,
    /// CSTA Established: `device` answered `call`.
    Established = 4,
    /// CSTA Queued: `call` waits in queue `device` ("queue:NAME").
    Queued = 5,
    /// CSTA Diverted: `call` moved to `device` without being answered.
    Diverted = 6,
    /// CSTA Held: `device` put `call` on hold.
    Held = 7,
    /// CSTA Retrieved: `device` took `call` back.
    Retrieved = 8,
    /// CSTA ConnectionCleared: `device` left `call`; `reason` is the Q.850 cause number.
    ConnectionCleared = 9,
    /// CSTA CallCleared: the whole call ended; `reason` is the Q.850 cause number.
    CallCleared = 10,
    /// CSTA Transferred: `secondary_call` was joined into `call` by `device`.
    Transferred = 11,
    /// CSTA Conferenced: `secondary_call` was joined into `call` by `device`.
    Conferenced = 12,
    /// CSTA Failed: `call` could not reach `device`.
    Failed = 13,
    /// The call was handed to an IVR flow or voicemail (`device`, "ivr:NAME").
    HandedOff = 14,
    /// A supervisor joined `call`.
    Supervising = 15,
    /// An agent's displayed state changed: `agent`, `device` (its station), `state`
    /// ("ready", "not_ready", "ringing", "busy", ...), `reason` (not-ready reason).
    AgentState = 20,
    /// CSTA agent event: `agent` logged on at `device`.
    AgentLoggedOn = 21,
    /// CSTA agent event: `agent` logged off.
    AgentLoggedOff = 22,
    /// CSTA agent event: `agent` is ready.
    AgentReady = 23,
    /// CSTA agent event: `agent` is not ready for `reason`.
    AgentNotReady = 24,
    /// CSTA agent event: `agent` is in after-call work.
    AgentWorkingAfterCall = 25,
    /// `agent` did not answer `call` in time.
    AgentMissed = 26,
    /// The screen pop for `call` delivered to `agent` at `device`: `calling`,
    /// `access_number`, `location`, `vip` and the JSON fields.
    ScreenPop = 30,
    /// The CRM's answer for an earlier pop of `call`: `crm_json`, or `reason` when the
    /// lookup failed.
    ScreenPopUpdate = 31,
    /// Wallboard figures; read `json`.
    Stats = 40,
    /// An error not tied to a request: `reason` (the code is in `json`).
    Error = 41,
    /// The connection ended; `reason` says why. Always the last event of a connection.
    Disconnected = 42,
    /// Reconnect is on and the connection was lost: `reason` says why; requests return
    /// `Closed` until `Reconnected`.
    Reconnecting = 43,
    /// The connection is back, logged in again with the same user and station, and the
    /// monitors made with `hotline_monitor` are made again; `json` lists them:
    /// `{"monitors":[{"monitor":NEW,"was":OLD,"target":..,"snapshot":..}]}`.
    Reconnected = 44,
}

impl hotline_event_kind {
    /// The kind of a server event by its name (`Other` for names not listed).
    pub fn from_name(name: &str) -> hotline_event_kind {
        use hotline_event_kind as K;
        match name {
            "ServiceInitiated" => K::ServiceInitiated,
            "Originated" => K::Originated,
            "Delivered" => K::Delivered,
            "Established" => K::Established,
            "Queued" => K::Queued,
            "Diverted" => K::Diverted,
            "Held" => K::Held,
            "Retrieved" => K::Retrieved,
            "ConnectionCleared" => K::ConnectionCleared,
            "CallCleared" => K::CallCleared,
            "Transferred" => K::Transferred,
            "Conferenced" => K::Conferenced,
            "Failed" => K::Failed,
            "AgentState" => K::AgentState,
            "HandedOff" => K::HandedOff,
            "Supervising" => K::Supervising,
            "AgentLoggedOn" => K::AgentLoggedOn,
            "AgentLoggedOff" => K::AgentLoggedOff,
            "AgentReady" => K::AgentReady,
            "AgentNotReady" => K::AgentNotReady,
            "AgentWorkingAfterCall" => K::AgentWorkingAfterCall,
            "AgentMissed" => K::AgentMissed,
            "ScreenPop" => K::ScreenPop,
            "ScreenPopUpdate" => K::ScreenPopUpdate,
            "Stats" => K::Stats,
            "Error" => K::Error,
            _ => K::Other,
        }
    }
}

/// One event, borrowed by the callback: every pointer is valid only until the callback
/// returns; copy what you keep. Strings are NUL-terminated UTF-8; a field that the
/// event does not carry is NULL (numbers: 0).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct hotline_event {
    pub kind: hotline_event_kind,
    /// The event name as the server sent it ("Delivered", "ScreenPop", ...).
    pub name: *const c_char,
    /// The call (engine call id), or the primary call of a transfer or conference.
    pub call: u64,
    /// The consultation call joined by a transfer or conference.
    pub secondary_call: u64,
    /// The monitor (subscription) that reported the event, when the server says.
    pub monitor: u64,
    /// The device the event is about ("station:2001", "queue:sales", "trunk:1/1/5").
    pub device: *const c_char,
    /// The calling number (ANI) or, for Originated, the calling device.
    pub calling: *const c_char,
    /// The called number (DNIS or dialled digits).
    pub called: *const c_char,
    pub agent: *const c_char,
    /// Agent state ("ready", "not_ready", ...) for AgentState events.
    pub state: *const c_char,
    /// The not-ready reason, the release cause, or the error text.
    pub reason: *const c_char,
    /// When it happened (RFC 3339 UTC), as the server sent it.
    pub time: *const c_char,
    /// Screen pop: the number the caller dialled (the access number).
    pub access_number: *const c_char,
    /// Screen pop: where the caller is (from the number), when known.
    pub location: *const c_char,
    /// Screen pop: the caller is a VIP.
    pub vip: bool,
    /// Screen pop: data collected in the IVR, a JSON object.
    pub ivr_data_json: *const c_char,
    /// Screen pop: data attached to the call, a JSON object.
    pub attached_json: *const c_char,
    /// Screen pop: the caller's previous contacts, a JSON array.
    pub previous_contacts_json: *const c_char,
    /// Screen pop: the CRM lookup's answer (JSON), or NULL.
    pub crm_json: *const c_char,
    /// The whole message as received, a JSON object.
    pub json: *const c_char,
}

/// The owned event behind a `hotline_event`: the strings live here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: hotline_event_kind,
    pub call: u64,
    pub secondary_call: u64,
    pub monitor: u64,
    pub vip: bool,
    name: Option<CString>,
    device: Option<CString>,
    calling: Option<CString>,
    called: Option<CString>,
    agent: Option<CString>,
    state: Option<CString>,
    reason: Option<CString>,
    time: Option<CString>,
    access_number: Option<CString>,
    location: Option<CString>,
    ivr_data_json: Option<CString>,
    attached_json: Option<CString>,
    previous_contacts_json: Option<CString>,
    crm_json: Option<CString>,
    json: Option<CString>,
}

/// Fields that name the device an event is about, in the order they are looked for
/// (the CSTA events each name theirs: alerting, answering, releasing, ...), with the
/// prefix that makes a bare name a device ("queue": "sales" is "queue:sales").
const DEVICE_FIELDS: [(&str, &str); 13] = [
    ("device", ""),
    ("originating", ""),
    ("alerting", ""),
    ("answering", ""),
    ("releasing", ""),
    ("holding", ""),
    ("retrieving", ""),
    ("failing", ""),
    ("transferring", ""),
    ("controller", ""),
    ("to", ""),
    ("queue", "queue:"),
    ("station", "station:"),
];

fn cstring(s: &str) -> CString {
    // Interior NULs cannot cross into C; the rest of the text still can.
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// A JSON value as text: strings as they are, anything else as compact JSON.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

fn field(obj: &Map<String, Value>, key: &str) -> Option<CString> {
    obj.get(key).and_then(text).map(|s| cstring(&s))
}

fn json_field(obj: &Map<String, Value>, key: &str) -> Option<CString> {
    obj.get(key).filter(|v| !v.is_null()).map(|v| cstring(&v.to_string()))
}

fn number(obj: &Map<String, Value>, key: &str) -> u64 {
    match obj.get(key) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// A cause as text: Q.850 causes may arrive as a name, a number or an object.
fn cause_text(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => {
            o.get("name").or_else(|| o.get("text")).and_then(text).or_else(|| Some(v.to_string()))
        }
        other => text(other),
    }
}

impl Event {
    /// The event for one server message (an object with an `"event"` field).
    pub fn from_json(obj: &Map<String, Value>) -> Event {
        let name = obj.get("event").and_then(Value::as_str).unwrap_or("");
        let kind = hotline_event_kind::from_name(name);
        let call = match number(obj, "call") {
            0 => number(obj, "primary"),
            n => n,
        };
        let mut device = DEVICE_FIELDS.iter().find_map(|(k, prefix)| match obj.get(*k) {
            Some(Value::String(s)) if s.starts_with(prefix) => Some(cstring(s)),
            Some(Value::String(s)) => Some(cstring(&format!("{prefix}{s}"))),
            _ => None,
        });
        // Originated: the calling party is the originating device ("station:2001").
        if kind == hotline_event_kind::Originated && device.is_none() {
            device = field(obj, "calling");
        }
        let reason = obj
            .get("reason")
            .and_then(text)
            .or_else(|| obj.get("cause").and_then(cause_text))
            .or_else(|| obj.get("crm_error").and_then(text))
            .or_else(|| obj.get("message").and_then(text))
            .map(|s| cstring(&s));
        let vip = matches!(obj.get("vip"), Some(Value::Bool(true)));
        Event {
            kind,
            call,
            secondary_call: number(obj, "secondary"),
            monitor: number(obj, "monitor"),
            vip,
            name: Some(cstring(name)),
            device,
            calling: field(obj, "calling").or_else(|| field(obj, "caller")),
            called: field(obj, "called"),
            agent: field(obj, "agent"),
            state: field(obj, "state"),
            reason,
            time: field(obj, "time").or_else(|| field(obj, "since")),
            access_number: field(obj, "access_number"),
            location: field(obj, "location"),
            ivr_data_json: json_field(obj, "ivr_data"),
            attached_json: json_field(obj, "attached"),
            previous_contacts_json: json_field(obj, "previous_contacts"),
            crm_json: json_field(obj, "crm"),
            json: Some(cstring(&Value::Object(obj.clone()).to_string())),
        }
    }

    /// An event the library makes itself (Reconnecting, Reconnected), with `fields`.
    pub fn local(name: &str, fields: Value) -> Event {
        let mut obj = match fields {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        obj.insert("event".into(), Value::String(name.into()));
        let mut ev = Event::from_json(&obj);
        ev.kind = match name {
            "Reconnecting" => hotline_event_kind::Reconnecting,
            "Reconnected" => hotline_event_kind::Reconnected,
            _ => hotline_event_kind::Other,
        };
        ev
    }

    /// The last event of a connection.
    pub fn disconnected(reason: &str) -> Event {
        let mut obj = Map::new();
        obj.insert("event".into(), Value::String("Disconnected".into()));
        obj.insert("reason".into(), Value::String(reason.into()));
        let mut ev = Event::from_json(&obj);
        ev.kind = hotline_event_kind::Disconnected;
        ev
    }

    /// The C view; its pointers borrow from `self`.
    pub fn as_c(&self) -> hotline_event {
        fn p(s: &Option<CString>) -> *const c_char {
            s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
        }
        hotline_event {
            kind: self.kind,
            name: p(&self.name),
            call: self.call,
            secondary_call: self.secondary_call,
            monitor: self.monitor,
            device: p(&self.device),
            calling: p(&self.calling),
            called: p(&self.called),
            agent: p(&self.agent),
            state: p(&self.state),
            reason: p(&self.reason),
            time: p(&self.time),
            access_number: p(&self.access_number),
            location: p(&self.location),
            vip: self.vip,
            ivr_data_json: p(&self.ivr_data_json),
            attached_json: p(&self.attached_json),
            previous_contacts_json: p(&self.previous_contacts_json),
            crm_json: p(&self.crm_json),
            json: p(&self.json),
        }
    }

    fn s(v: &Option<CString>) -> Option<&str> {
        v.as_ref().and_then(|c| c.to_str().ok())
    }
    pub fn name(&self) -> &str {
        Self::s(&self.name).unwrap_or("")
    }
    pub fn device(&self) -> Option<&str> {
        Self::s(&self.device)
    }
    pub fn calling(&self) -> Option<&str> {
        Self::s(&self.calling)
    }
    pub fn called(&self) -> Option<&str> {
        Self::s(&self.called)
    }
    pub fn agent(&self) -> Option<&str> {
        Self::s(&self.agent)
    }
    pub fn state(&self) -> Option<&str> {
        Self::s(&self.state)
    }
    pub fn reason(&self) -> Option<&str> {
        Self::s(&self.reason)
    }
    pub fn access_number(&self) -> Option<&str> {
        Self::s(&self.access_number)
    }
    pub fn location(&self) -> Option<&str> {
        Self::s(&self.location)
    }
    pub fn ivr_data_json(&self) -> Option<&str> {
        Self::s(&self.ivr_data_json)
    }
    pub fn attached_json(&self) -> Option<&str> {
        Self::s(&self.attached_json)
    }
    pub fn previous_contacts_json(&self) -> Option<&str> {
        Self::s(&self.previous_contacts_json)
    }
    pub fn json(&self) -> &str {
        Self::s(&self.json).unwrap_or("{}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: &str) -> Event {
        let v: Value = serde_json::from_str(line).expect("test JSON");
        Event::from_json(v.as_object().expect("object"))
    }

    #[test]
    fn a_delivered_event_names_the_alerting_station_and_the_numbers() {
        let e = ev(r#"{"event":"Delivered","monitor":7,"call":12,"alerting":"station:2001",
            "calling":"13800138000","called":"4008001234","cause":"distributed"}"#);
        let q = ev(r#"{"event":"Queued","call":12,"queue":"sales","position":1,"cause":"new_call"}"#);
        assert_eq!(q.device(), Some("queue:sales"), "a queue name becomes a device");
        assert_eq!(e.kind, hotline_event_kind::Delivered);
        assert_eq!((e.call, e.monitor), (12, 7));
        assert_eq!(e.device(), Some("station:2001"));
        assert_eq!(e.calling(), Some("13800138000"));
        assert_eq!(e.called(), Some("4008001234"));
        assert_eq!(e.reason(), Some("distributed"));
    }

    #[test]
    fn a_screen_pop_carries_its_json_fields_and_the_vip_flag() {
        let e = ev(r#"{"event":"ScreenPop","call":3,"agent":"1001","calling":"0101",
            "access_number":"400","location":"Beijing","vip":true,"ivr_data":{"account":"42"},
            "attached":{},"previous_contacts":[{"call":1}],"crm":null}"#);
        assert_eq!(e.kind, hotline_event_kind::ScreenPop);
        assert!(e.vip);
        assert_eq!(e.location(), Some("Beijing"));
        assert_eq!(e.ivr_data_json(), Some(r#"{"account":"42"}"#));
        assert_eq!(e.previous_contacts_json(), Some(r#"[{"call":1}]"#));
        let c = e.as_c();
        assert!(c.crm_json.is_null(), "a null CRM answer is a NULL pointer");
        assert!(!c.json.is_null());
    }

    #[test]
    fn an_unknown_event_is_other_and_keeps_its_json() {
        let e = ev(r#"{"event":"Sparkles","call":"9","text":"a\u0000b"}"#);
        assert_eq!(e.kind, hotline_event_kind::Other);
        assert_eq!(e.call, 9);
        assert!(e.json().contains("Sparkles"));
    }

    #[test]
    fn p12_7_originated_names_its_originating_device() {
        // As docs/protocol.md shows it: the calling device.
        let e = ev(
            r#"{"event":"Originated","monitor":7,"call":14,"calling":"station:2001","called":"013912345678"}"#,
        );
        assert_eq!(e.kind, hotline_event_kind::Originated);
        assert_eq!(e.device(), Some("station:2001"));
        assert_eq!(e.called(), Some("013912345678"));
        // A server that names the device in a field of its own.
        let e =
            ev(r#"{"event":"Originated","call":14,"device":"station:2002","calling":"2002","called":"1"}"#);
        assert_eq!(e.device(), Some("station:2002"));
    }
}
