//! Issue 13 point 1: property-test round trips of the link's JSON lines. What the engine
//! emits (events, replies, error events) is parsed back and every field reads as what
//! was written, including device ids and arbitrary text (quotes, control characters,
//! non-ASCII); requests written as docs/protocol.md shows them read back into the same
//! service.

use hotline_cti::csta::{CallId, CstaEvent, DeviceId, Service};
use hotline_cti::link::wire::{self, Request};
use hotline_drivers::ChannelId;
use proptest::prelude::*;
use serde_json::{json, Value};

fn device() -> impl Strategy<Value = DeviceId> {
    let name = "\\PC{1,12}";
    prop_oneof![
        name.prop_map(DeviceId::Station),
        name.prop_map(DeviceId::Queue),
        name.prop_map(DeviceId::Ivr),
        (any::<u16>(), any::<u8>(), 1u8..=31).prop_map(|(c, s, t)| DeviceId::Trunk(ChannelId::e1(
            c,
            s,
            if t == 16 { 15 } else { t }
        ))),
        (any::<u16>(), any::<u16>()).prop_map(|(c, p)| DeviceId::Trunk(ChannelId::fxo(c, p))),
    ]
}

fn line_back(v: &Value) -> Value {
    let line = v.to_string();
    assert!(!line.contains('\n'), "one event is one line: {line}");
    serde_json::from_str(&line).expect("an emitted line is JSON")
}

fn dev_back(v: &Value, key: &str) -> DeviceId {
    wire::parse_device(v[key].as_str().expect("device as a string")).expect("device reads back")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn p13_1_events_emitted_read_back(
        call in any::<u64>(),
        a in device(),
        b in device(),
        calling in "\\PC{0,20}",
        called in "\\PC{0,20}",
        time in "[0-9T:.Z-]{0,24}",
    ) {
        let ev = CstaEvent::Established { call: CallId(call), answering: a.clone(), calling: calling.clone(), called: called.clone() };
        let v = line_back(&wire::event(&ev, &time));
        prop_assert_eq!(v["event"].as_str(), Some("Established"));
        prop_assert_eq!(v["call"].as_u64(), Some(call));
        prop_assert_eq!(dev_back(&v, "answering"), a.clone());
        prop_assert_eq!(v["calling"].as_str(), Some(calling.as_str()));
        prop_assert_eq!(v["called"].as_str(), Some(called.as_str()));

        let ev = CstaEvent::Held { call: CallId(call), holding: b.clone() };
        let v = line_back(&wire::event(&ev, &time));
        prop_assert_eq!(dev_back(&v, "holding"), b.clone());

        let ev = CstaEvent::Originated { call: CallId(call), calling: a.clone(), called: called.clone() };
        let v = line_back(&wire::event(&ev, &time));
        prop_assert_eq!(dev_back(&v, "calling"), a);
        prop_assert_eq!(v["called"].as_str(), Some(called.as_str()));
    }

    #[test]
    fn p13_1_replies_emitted_read_back(invoke in any::<u32>(), code in "[a-z_]{1,20}", message in "\\PC{0,40}") {
        let v: Value = serde_json::from_str(&wire::reply_err(invoke, &code, &message)).unwrap();
        prop_assert_eq!(v["invoke"].as_u64(), Some(u64::from(invoke)));
        prop_assert_eq!(v["error"]["code"].as_str(), Some(code.as_str()));
        prop_assert_eq!(v["error"]["message"].as_str(), Some(message.as_str()));
        let v: Value = serde_json::from_str(&wire::error_event(&code, &message, "t")).unwrap();
        prop_assert_eq!(v["reason"].as_str(), Some(message.as_str()));
        let v: Value = serde_json::from_str(&wire::reply_ok(invoke, json!({ "text": message }))).unwrap();
        prop_assert_eq!(v["result"]["text"].as_str(), Some(message.as_str()));
    }

    #[test]
    fn p13_1_requests_written_read_back(invoke in any::<u32>(), call in any::<u64>(), d in device(), user in "\\PC{1,16}", password in "\\PC{0,16}") {
        let line = json!({"invoke": invoke, "service": "AnswerCall", "call": call, "device": d.to_string()}).to_string();
        let (i, r) = wire::parse_request(&line).map_err(|b| TestCaseError::fail(b.message))?;
        prop_assert_eq!(i, invoke);
        prop_assert_eq!(r, Request::Engine(Service::AnswerCall { call: CallId(call), device: d }));
        let line = json!({"invoke": invoke, "service": "Login", "user": user, "password": password}).to_string();
        let (_, r) = wire::parse_request(&line).map_err(|b| TestCaseError::fail(b.message))?;
        prop_assert_eq!(r, Request::Login { user, password, station: None });
    }
}
