//! The JSON mapping of the link protocol (docs/protocol.md): requests read into
//! [`Request`]s, CSTA events, results and errors written as JSON objects.
//!
//! Written by hand over `serde_json::Value` rather than derived, because the wire names
//! devices as strings (`station:2001`) and flattens the CSTA enums into `snake_case`
//! fields, and because a bad request must say which field was wrong.

use std::collections::BTreeMap;
use std::str::FromStr;

use hotline_drivers::ChannelId;
use serde_json::{json, Map, Value};

use crate::csta::{
    AgentEventKind, AgentRequest, AgentState, CallId, ConnectionState, CstaError, CstaEvent, DeviceId,
    Service, SupervisionMode,
};

/// What a monitor watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A device, as written on the wire (`station:2001`).
    Device(String),
    Agent(String),
    Queue(String),
    All,
}

/// A request read from a client.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Login {
        user: String,
        password: String,
        station: Option<String>,
    },
    Logout,
    Ping,
    Monitor(Target),
    MonitorStop(u32),
    /// The calls of an agent today (`None`: the logged-in agent).
    AgentCallsToday {
        agent: Option<String>,
    },
    /// Lift a login lockout or backoff (supervisors): of a user, of a client address, or
    /// both.
    UnlockAccount {
        user: Option<String>,
        address: Option<String>,
    },
    /// The users and addresses whose logins are locked or held back now (supervisors).
    LoginLockouts,
    /// An engine service. `Supervise` with an empty `supervisor` means the logged-in one.
    Engine(Service),
}

/// A request that could not be read: the invoke id if one was found, and what was
/// expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    pub invoke: Option<u32>,
    pub message: String,
}

/// Read a device written as on the wire.
pub fn parse_device(s: &str) -> Result<DeviceId, String> {
    let (kind, rest) = s.split_once(':').ok_or_else(|| {
        format!("bad device {s:?}: expected station:EXT, trunk:C/S/T, queue:NAME or ivr:NAME")
    })?;
    if rest.is_empty() {
        return Err(format!("bad device {s:?}: nothing after the colon"));
    }
    match kind {
        "station" => Ok(DeviceId::Station(rest.to_string())),
        "queue" => Ok(DeviceId::Queue(rest.to_string())),
        "ivr" => Ok(DeviceId::Ivr(rest.to_string())),
        "trunk" => {
            ChannelId::from_str(rest).map(DeviceId::Trunk).map_err(|e| format!("bad device {s:?}: {e}"))
        }
        other => {
            Err(format!("bad device {s:?}: unknown kind {other:?}, expected station, trunk, queue or ivr"))
        }
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    service: &'a str,
}

impl Fields<'_> {
    fn missing(&self, key: &str, what: &str) -> String {
        format!("{}: missing field `{key}` ({what})", self.service)
    }
    fn str(&self, key: &str) -> Result<String, String> {
        match self.obj.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => {
                Err(format!("{}: field `{key}` must be a string, found {}", self.service, kind(other)))
            }
            None => Err(self.missing(key, "a string")),
        }
    }
    fn opt_str(&self, key: &str) -> Result<Option<String>, String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.str(key).map(Some),
        }
    }
    fn u64(&self, key: &str) -> Result<u64, String> {
        match self.obj.get(key) {
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
            Some(other) => Err(format!(
                "{}: field `{key}` must be a non-negative integer, found {}",
                self.service,
                kind(other)
            )),
            None => Err(self.missing(key, "a non-negative integer")),
        }
    }
    fn call(&self, key: &str) -> Result<CallId, String> {
        self.u64(key).map(CallId)
    }
    fn device(&self, key: &str) -> Result<DeviceId, String> {
        let s = self.str(key)?;
        parse_device(&s).map_err(|e| format!("{}: field `{key}`: {e}", self.service))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Read one request (one TCP line or one WebSocket text message).
pub fn parse_request(text: &str) -> Result<(u32, Request), Bad> {
    let value: Value = serde_json::from_str(text).map_err(|e| Bad {
        invoke: None,
        message: format!("not JSON: {e} (at line {} column {})", e.line(), e.column()),
    })?;
    let Value::Object(obj) = value else {
        return Err(Bad { invoke: None, message: format!("expected a JSON object, found {}", kind(&value)) });
    };
    let invoke = match obj.get("invoke") {
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(i) => i,
            None => {
                return Err(Bad {
                    invoke: None,
                    message: "`invoke` must be an integer from 0 to 4294967295".into(),
                })
            }
        },
        Some(other) => {
            return Err(Bad {
                invoke: None,
                message: format!("`invoke` must be an integer, found {}", kind(other)),
            })
        }
        None => {
            return Err(Bad {
                invoke: None,
                message: "missing `invoke` (a request id the reply carries)".into(),
            })
        }
    };
    let service = match obj.get("service") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(Bad {
                invoke: Some(invoke),
                message: format!("`service` must be a string, found {}", kind(other)),
            })
        }
        None => return Err(Bad { invoke: Some(invoke), message: "missing `service`".into() }),
    };
    let f = Fields { obj: &obj, service };
    parse_service(&f).map(|r| (invoke, r)).map_err(|message| Bad { invoke: Some(invoke), message })
}

fn parse_service(f: &Fields<'_>) -> Result<Request, String> {
    let svc = |s: Service| Ok(Request::Engine(s));
    match f.service {
        "Login" => Ok(Request::Login {
            user: f.str("user")?,
            password: f.str("password")?,
            station: f.opt_str("station")?,
        }),
        "Logout" => Ok(Request::Logout),
        "Ping" => Ok(Request::Ping),
        "Monitor" => {
            let target = match f.obj.get("target") {
                Some(Value::String(s)) if s == "all" => Target::All,
                Some(Value::Object(t)) if t.len() == 1 => {
                    let (k, v) = t.iter().next().expect("one entry");
                    let v = v.as_str().ok_or_else(|| format!("Monitor: target.{k} must be a string"))?.to_string();
                    match k.as_str() {
                        "device" => {
                            parse_device(&v).map_err(|e| format!("Monitor: target.device: {e}"))?;
                            Target::Device(v)
                        }
                        "agent" => Target::Agent(v),
                        "queue" => Target::Queue(v),
                        other => return Err(format!("Monitor: unknown target kind {other:?}: expected device, agent or queue")),
                    }
                }
                _ => {
                    return Err(
                        "Monitor: `target` must be \"all\" or one of {\"device\":..}, {\"agent\":..}, {\"queue\":..}".into()
                    )
                }
            };
            Ok(Request::Monitor(target))
        }
        "MonitorStop" => Ok(Request::MonitorStop(u32::try_from(f.u64("monitor")?).unwrap_or(u32::MAX))),
        "AgentCallsToday" => Ok(Request::AgentCallsToday { agent: f.opt_str("agent")? }),
        "UnlockAccount" => {
            let (user, address) = (f.opt_str("user")?, f.opt_str("address")?);
            if user.is_none() && address.is_none() {
                return Err("UnlockAccount: give `user` (an agent or supervisor id), `address` (a client IP address) or both".into());
            }
            Ok(Request::UnlockAccount { user, address })
        }
        "LoginLockouts" => Ok(Request::LoginLockouts),
        "MakeCall" => svc(Service::MakeCall { calling: f.str("calling")?, called: f.str("called")? }),
        "AnswerCall" => svc(Service::AnswerCall { call: f.call("call")?, device: f.device("device")? }),
        "ClearConnection" => {
            svc(Service::ClearConnection { call: f.call("call")?, device: f.device("device")? })
        }
        "ClearCall" => svc(Service::ClearCall { call: f.call("call")? }),
        "StartRecording" => svc(Service::StartRecording { call: f.call("call")? }),
        "StopRecording" => svc(Service::StopRecording { call: f.call("call")? }),
        "HoldCall" => svc(Service::HoldCall { call: f.call("call")?, device: f.device("device")? }),
        "RetrieveCall" => svc(Service::RetrieveCall { call: f.call("call")?, device: f.device("device")? }),
        "ConsultationCall" => svc(Service::ConsultationCall {
            held: f.call("held")?,
            device: f.device("device")?,
            called: f.str("called")?,
        }),
        "TransferCall" => svc(Service::TransferCall {
            held: f.call("held")?,
            active: f.call("active")?,
            device: f.device("device")?,
        }),
        "SingleStepTransferCall" => svc(Service::SingleStepTransferCall {
            call: f.call("call")?,
            device: f.device("device")?,
            to: f.str("to")?,
        }),
        "ConferenceCall" => svc(Service::ConferenceCall {
            held: f.call("held")?,
            active: f.call("active")?,
            device: f.device("device")?,
        }),
        "AlternateCall" => svc(Service::AlternateCall {
            held: f.call("held")?,
            active: f.call("active")?,
            device: f.device("device")?,
        }),
        "ReconnectCall" => svc(Service::ReconnectCall {
            held: f.call("held")?,
            active: f.call("active")?,
            device: f.device("device")?,
        }),
        "DeflectCall" => {
            svc(Service::DeflectCall { call: f.call("call")?, device: f.device("device")?, to: f.str("to")? })
        }
        "GenerateDigits" => svc(Service::GenerateDigits {
            call: f.call("call")?,
            device: f.device("device")?,
            digits: f.str("digits")?,
        }),
        "SetCallData" => {
            svc(Service::SetCallData { call: f.call("call")?, key: f.str("key")?, value: f.str("value")? })
        }
        "SetAgentState" => {
            let agent = f.str("agent")?;
            let request = match f.str("state")?.as_str() {
                "ready" => AgentRequest::Ready,
                "not_ready" => AgentRequest::NotReady { reason: f.opt_str("reason")?.unwrap_or_default() },
                "logged_out" => AgentRequest::LogOut,
                "logged_in" => {
                    return Err("SetAgentState: state logged_in is not accepted here: use Login".into())
                }
                other => {
                    return Err(format!(
                        "SetAgentState: unknown state {other:?}: expected ready, not_ready or logged_out"
                    ))
                }
            };
            svc(Service::SetAgentState { agent, request })
        }
        "GetAgentState" => svc(Service::GetAgentState { agent: f.str("agent")? }),
        "Supervise" => {
            let mode = match f.str("mode")?.as_str() {
                "monitor" => SupervisionMode::Monitor,
                "whisper" => SupervisionMode::Whisper,
                "barge" => SupervisionMode::Barge,
                "intercept" => SupervisionMode::Intercept,
                other => {
                    return Err(format!(
                        "Supervise: unknown mode {other:?}: expected monitor, whisper, barge or intercept"
                    ))
                }
            };
            svc(Service::Supervise {
                supervisor: f.opt_str("supervisor")?.unwrap_or_default(),
                agent: f.str("agent")?,
                mode,
            })
        }
        "SnapshotCall" => svc(Service::SnapshotCall { call: f.call("call")? }),
        "SnapshotDevice" => svc(Service::SnapshotDevice { device: f.device("device")? }),
        "SnapshotQueue" => svc(Service::SnapshotQueue { queue: f.str("queue")? }),
        "SnapshotAgents" => svc(Service::SnapshotAgents { group: f.opt_str("group")? }),
        other => Err(format!("unknown service {other:?} (see docs/protocol.md for the list)")),
    }
}

pub fn connection_state(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::Null => "null",
        ConnectionState::Initiated => "initiated",
        ConnectionState::Alerting => "alerting",
        ConnectionState::Connected => "connected",
        ConnectionState::Held => "held",
        ConnectionState::Queued => "queued",
        ConnectionState::Fail => "fail",
    }
}

/// An agent state as the wire names it, and its reason.
pub fn agent_state(s: &AgentState) -> (&'static str, Option<&str>) {
    match s {
        AgentState::LoggedOut => ("logged_out", None),
        AgentState::Ready => ("ready", None),
        AgentState::NotReady(r) => ("not_ready", Some(r.as_str())),
        AgentState::Ringing => ("ringing", None),
        AgentState::Busy => ("busy", None),
        AgentState::WorkingAfterCall => ("working_after_call", None),
    }
}

pub fn supervision_mode(m: SupervisionMode) -> &'static str {
    match m {
        SupervisionMode::Monitor => "monitor",
        SupervisionMode::Whisper => "whisper",
        SupervisionMode::Barge => "barge",
        SupervisionMode::Intercept => "intercept",
    }
}

/// The wire code of a CSTA error.
pub fn error_code(e: &CstaError) -> &'static str {
    match e {
        CstaError::InvalidCallId => "invalid_call_id",
        CstaError::InvalidDeviceId(_) => "invalid_device_id",
        CstaError::InvalidAgentId(_) => "invalid_agent_id",
        CstaError::InvalidConnectionState => "invalid_connection_state",
        CstaError::InvalidDeviceState => "invalid_device_state",
        CstaError::InvalidAgentState => "invalid_agent_state",
        CstaError::InvalidPassword => "invalid_password",
        CstaError::ServiceNotSupported => "service_not_supported",
        CstaError::ResourceBusy => "resource_busy",
        CstaError::PrivilegeViolation => "privilege_violation",
        CstaError::ReservedForInbound(_) => "reserved_for_inbound",
    }
}

fn dev(d: &DeviceId) -> Value {
    Value::String(d.to_string())
}

fn opt_dev(d: &Option<DeviceId>) -> Value {
    d.as_ref().map(dev).unwrap_or(Value::Null)
}

/// A CSTA event as a JSON object (without `monitor`, which depends on the receiver).
pub fn event(ev: &CstaEvent, time: &str) -> Value {
    let mut v = match ev {
        CstaEvent::ServiceInitiated { call, device } => {
            json!({"event":"ServiceInitiated","call":call.0,"device":dev(device)})
        }
        CstaEvent::Originated { call, calling, called } => {
            json!({"event":"Originated","call":call.0,"device":dev(calling),"calling":dev(calling),"called":called})
        }
        CstaEvent::Delivered { call, alerting, calling, called, cause } => {
            json!({"event":"Delivered","call":call.0,
            "alerting":dev(alerting),"calling":calling,"called":called,"cause":cause.name()})
        }
        CstaEvent::Established { call, answering, calling, called } => {
            json!({"event":"Established","call":call.0,
            "answering":dev(answering),"calling":calling,"called":called})
        }
        CstaEvent::Queued { call, queue, position, cause, calling, called } => {
            json!({"event":"Queued","call":call.0,"queue":queue,
            "position":position,"cause":cause.name(),"calling":calling,"called":called})
        }
        CstaEvent::Diverted { call, from, to, cause } => {
            json!({"event":"Diverted","call":call.0,"from":dev(from),
            "to":dev(to),"cause":cause.name()})
        }
        CstaEvent::Held { call, holding } => json!({"event":"Held","call":call.0,"holding":dev(holding)}),
        CstaEvent::Retrieved { call, retrieving } => {
            json!({"event":"Retrieved","call":call.0,"retrieving":dev(retrieving)})
        }
        CstaEvent::ConnectionCleared { call, releasing, cause } => {
            json!({"event":"ConnectionCleared","call":call.0,"releasing":dev(releasing),"cause":cause.0})
        }
        CstaEvent::CallCleared { call, cause } => {
            json!({"event":"CallCleared","call":call.0,"cause":cause.0})
        }
        CstaEvent::Transferred { primary, secondary, transferring, transferred_to } => {
            json!({"event":"Transferred",
            "primary":primary.0,"secondary":secondary.0,"transferring":dev(transferring),
            "transferred_to":opt_dev(transferred_to)})
        }
        CstaEvent::Conferenced { primary, secondary, controller, added } => json!({"event":"Conferenced",
            "primary":primary.0,"secondary":secondary.0,"controller":dev(controller),"added":opt_dev(added)}),
        CstaEvent::Failed { call, failing, cause } => {
            json!({"event":"Failed","call":call.0,"failing":dev(failing),"cause":cause.0})
        }
        CstaEvent::HandedOff { call, to, .. } => json!({"event":"HandedOff","call":call.0,"to":dev(to)}),
        CstaEvent::Supervising { call, supervisor, mode } => json!({"event":"Supervising","call":call.0,
            "supervisor":supervisor,"mode":supervision_mode(*mode)}),
        CstaEvent::Agent { agent, kind } => match kind {
            AgentEventKind::LoggedOn { station } => {
                json!({"event":"AgentLoggedOn","agent":agent,"station":station})
            }
            AgentEventKind::LoggedOff => json!({"event":"AgentLoggedOff","agent":agent}),
            AgentEventKind::Ready => json!({"event":"AgentReady","agent":agent}),
            AgentEventKind::NotReady { reason } => {
                json!({"event":"AgentNotReady","agent":agent,"reason":reason})
            }
            AgentEventKind::WorkingAfterCall => json!({"event":"AgentWorkingAfterCall","agent":agent}),
            AgentEventKind::Missed { call } => json!({"event":"AgentMissed","agent":agent,"call":call.0}),
        },
    };
    v["time"] = Value::String(time.to_string());
    v
}

/// A reply carrying a result.
pub fn reply_ok(invoke: u32, result: Value) -> String {
    json!({"invoke":invoke,"result":result}).to_string()
}

/// A reply carrying an error.
pub fn reply_err(invoke: u32, code: &str, message: &str) -> String {
    json!({"invoke":invoke,"error":{"code":code,"message":message}}).to_string()
}

/// An `Error` event (not a reply to one request).
pub fn error_event(code: &str, reason: &str, time: &str) -> String {
    json!({"event":"Error","code":code,"reason":reason,"time":time}).to_string()
}

/// String map as a JSON object.
pub fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_request_reads_into_the_csta_service() {
        let (invoke, r) =
            parse_request(r#"{"invoke":3,"service":"AnswerCall","call":12,"device":"station:2001"}"#)
                .expect("valid");
        assert_eq!(invoke, 3);
        assert_eq!(
            r,
            Request::Engine(Service::AnswerCall {
                call: CallId(12),
                device: DeviceId::Station("2001".into())
            })
        );
    }

    #[test]
    fn a_trunk_device_reads_as_its_channel() {
        assert_eq!(parse_device("trunk:1/1/5"), Ok(DeviceId::Trunk(ChannelId::e1(1, 1, 5))));
        assert!(parse_device("phone:1").is_err());
    }

    #[test]
    fn a_missing_field_is_named_with_the_invoke_kept() {
        let bad = parse_request(r#"{"invoke":9,"service":"HoldCall","call":12}"#).expect_err("no device");
        assert_eq!(bad.invoke, Some(9));
        assert!(bad.message.contains("`device`"), "{}", bad.message);
    }

    #[test]
    fn text_that_is_not_json_says_where() {
        let bad = parse_request("{\"invoke\":1,").expect_err("truncated");
        assert_eq!(bad.invoke, None);
        assert!(bad.message.contains("column"), "{}", bad.message);
    }
}
