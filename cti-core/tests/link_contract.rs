//! Issue 12, points 1-5: the link keeps the contract of docs/protocol.md. The engine
//! and what runs beside it on the engine thread (`Center`: screen pops) on a thread in
//! real time, the link server on loopback TCP, card events injected by hand; clients
//! written from the protocol document. Each test names the point it guards.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use hotline_cti::center::{Center, CenterInput, CenterOutput};
use hotline_cti::link::{self, LinkHandle, LinkMsg, NoHistory};
use hotline_cti::{Config, Engine, Input};
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::{CardEvent, ChannelId, EventKind, Instant};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
const WALL: i64 = 1_780_000_000_000;

const CONFIG: &str = r#"
[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]
dial_prefix = "9"

[[station]]
port = "1/fxs/1-8"
extension = "2001"

[[queue]]
name = "sales"

[[queue]]
name = "support"

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[access_number]]
dnis = "4008002000"
target = "queue:support"

[[agent]]
id = "1001"
name = "Li Wei"
password = "pw"
queues = { sales = 5 }

[[agent]]
id = "1002"
name = "Wang Fang"
password = "pw"
queues = { sales = 5 }

[[agent]]
id = "1003"
name = "Zhao Min"
password = "pw"
queues = { support = 5 }

[[agent_group]]
name = "team-a"
agents = ["1001", "1002"]

[[agent_group]]
name = "team-b"
agents = ["1003"]

[[supervisor]]
id = "9001"
name = "Sun Li"
password = "boss"
groups = ["team-a"]

[[supervisor]]
id = "9002"
name = "Chen Jing"
password = "boss"
"#;

struct Rig {
    link: LinkHandle,
    engine: Sender<Input>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.link.shutdown();
    }
}

impl Rig {
    fn start() -> Rig {
        let cfg = Config::parse(CONFIG, "test.toml").expect("valid config");
        let mut lcfg = link::LinkConfig::new(&cfg);
        lcfg.tcp = Some("127.0.0.1:0".parse().expect("addr"));
        lcfg.http = None;
        lcfg.wall_base_unix_ms = WALL;
        let (in_tx, in_rx) = crossbeam_channel::bounded::<Input>(1024);
        let link = link::spawn(lcfg, in_tx.clone(), Arc::new(NoHistory)).expect("link starts");
        let handle = link.clone();
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
            let mut center = Center::new(Engine::new(cfg), WALL);
            loop {
                let wait = center.next_deadline().map_or(Duration::from_secs(1), |d| {
                    d.saturating_duration_since(now()).min(Duration::from_secs(1))
                });
                let input = match in_rx.recv_timeout(wait) {
                    Ok(i) => i,
                    Err(RecvTimeoutError::Timeout) => Input::Timeout,
                    Err(RecvTimeoutError::Disconnected) => return,
                };
                center.handle(now(), CenterInput::Engine(input));
                while let Some(o) = center.poll_output() {
                    match o {
                        CenterOutput::Link { at_unix_ms, output } => {
                            handle.send(LinkMsg::Output { at_unix_ms, output })
                        }
                        CenterOutput::ScreenPop(pop) => handle.send(LinkMsg::ScreenPop(pop)),
                        _ => {}
                    }
                }
            }
        });
        Rig { link, engine: in_tx }
    }

    fn client(&self) -> Tcp {
        let s = TcpStream::connect(self.link.addrs().tcp.expect("tcp")).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        Tcp { reader: BufReader::new(s.try_clone().expect("clone")), writer: s, next: 0 }
    }

    fn card(&self, kind: EventKind) {
        self.engine.send(Input::Card(CardEvent { time: Instant::ZERO, kind })).expect("engine runs");
    }

    /// A caller dials an access number on an E1 timeslot.
    fn offer(&self, timeslot: u8, ani: &str, dnis: &str) {
        self.card(EventKind::Offered {
            ch: ChannelId::e1(1, 1, timeslot),
            ani: Some(ani.into()),
            dnis: dnis.into(),
            category: CallerCategory::Ordinary,
        });
    }

    fn off_hook(&self, port: u16) {
        self.card(EventKind::OffHook { ch: ChannelId::fxs(1, port) });
    }

    /// A desktop logged in and monitoring itself.
    fn desk(&self, agent: &str, station: Option<&str>) -> Tcp {
        let mut c = self.client();
        let r = c.login(agent, "pw", station);
        assert!(r["result"].is_object(), "login {agent}: {r}");
        let r = c.request(json!({"service":"Monitor","target":{"agent":agent}}));
        assert!(r["result"]["monitor"].is_u64(), "{r}");
        c
    }

    fn supervisor(&self, id: &str, station: Option<&str>) -> Tcp {
        let mut c = self.client();
        let r = c.login(id, "boss", station);
        assert_eq!(r["result"]["role"], "supervisor", "{r}");
        c
    }
}

struct Tcp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next: u32,
}

impl Tcp {
    fn send(&mut self, v: &Value) {
        self.writer.write_all(format!("{v}\n").as_bytes()).expect("write");
    }

    fn recv(&mut self) -> Value {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line).expect("JSON lines"),
            other => panic!("no message within {WAIT:?}: {other:?}"),
        }
    }

    /// Send a request; the messages before its reply, and the reply.
    fn exchange(&mut self, mut req: Value) -> (Vec<Value>, Value) {
        self.next += 1;
        let invoke = self.next;
        req["invoke"] = json!(invoke);
        self.send(&req);
        let mut before = Vec::new();
        loop {
            let v = self.recv();
            if v["invoke"] == json!(invoke) {
                return (before, v);
            }
            before.push(v);
        }
    }

    fn request(&mut self, req: Value) -> Value {
        self.exchange(req).1
    }

    fn login(&mut self, user: &str, password: &str, station: Option<&str>) -> Value {
        self.request(json!({"service":"Login","user":user,"password":password,"station":station}))
    }

    /// Read until an event matches.
    fn until(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.recv();
            if f(&v) {
                return v;
            }
            assert!(v["event"] != "Error", "waiting for {what}: {v}");
        }
    }

    /// Everything the server sent before the answer to a Ping sent now.
    fn drain(&mut self) -> Vec<Value> {
        self.exchange(json!({"service":"Ping"})).0
    }

    fn code(&mut self, req: Value) -> String {
        let r = self.request(req);
        match r["error"]["code"].as_str() {
            Some(c) => c.to_string(),
            None => "ok".into(),
        }
    }
}

fn events<'a>(v: &'a [Value], name: &str) -> Vec<&'a Value> {
    v.iter().filter(|e| e["event"] == name).collect()
}

/// Point 1: an agent who transferred a call away keeps no control of it, nor a look
/// into it; the colleague who has it now does.
#[test]
fn p12_1_an_agent_who_transferred_a_call_can_no_longer_clear_rewrite_or_read_it() {
    let rig = Rig::start();
    let mut li = rig.desk("1001", Some("2001"));
    let mut wang = rig.desk("1002", Some("2002"));
    // Wang is busy with nothing but not ready, so the call goes to Li.
    let r = wang.request(json!({"service":"SetAgentState","agent":"1002","state":"not_ready","reason":"x"}));
    assert_eq!(r["result"], json!({}), "{r}");
    rig.offer(1, "13800138000", "4008001000");
    let call = li.until("Delivered", |v| v["event"] == "Delivered")["call"].clone();
    rig.off_hook(1);
    li.until("Established", |v| v["event"] == "Established");
    let r = li
        .request(json!({"service":"SingleStepTransferCall","call":call,"device":"station:2001","to":"2002"}));
    assert_eq!(r["result"], json!({}), "{r}");
    wang.until("Delivered at 2002", |v| v["event"] == "Delivered" && v["alerting"] == "station:2002");

    for req in [
        json!({"service":"ClearCall","call":call}),
        json!({"service":"SetCallData","call":call,"key":"order","value":"forged"}),
        json!({"service":"SnapshotCall","call":call}),
        json!({"service":"HoldCall","call":call,"device":"station:2001"}),
        json!({"service":"StartRecording","call":call}),
    ] {
        let r = li.request(req.clone());
        assert_eq!(r["error"]["code"], "privilege_violation", "{req} after the transfer: {r}");
    }
    // The colleague the call rings at may read it and attach data.
    assert_eq!(wang.code(json!({"service":"SnapshotCall","call":call})), "ok");
    assert_eq!(wang.code(json!({"service":"SetCallData","call":call,"key":"order","value":"A-1"})), "ok");
}

/// Point 1: a deflected call no longer belongs to the station that deflected it.
#[test]
fn p12_1_an_agent_who_deflected_a_call_can_no_longer_clear_it() {
    let rig = Rig::start();
    let mut li = rig.desk("1001", Some("2001"));
    let mut caller = rig.desk("1002", Some("2002"));
    let r =
        caller.request(json!({"service":"SetAgentState","agent":"1002","state":"not_ready","reason":"x"}));
    assert_eq!(r["result"], json!({}), "{r}");
    rig.off_hook(2);
    let r = caller.request(json!({"service":"MakeCall","calling":"2002","called":"2001"}));
    let call = r["result"]["call"].clone();
    assert!(call.is_u64(), "{r}");
    li.until("Delivered", |v| v["event"] == "Delivered" && v["alerting"] == "station:2001");
    let r = li.request(json!({"service":"DeflectCall","call":call,"device":"station:2001","to":"2003"}));
    assert_eq!(r["result"], json!({}), "{r}");
    let r = li.request(json!({"service":"ClearCall","call":call}));
    assert_eq!(r["error"]["code"], "privilege_violation", "{r}");
    let r = li.request(json!({"service":"SnapshotCall","call":call}));
    assert_eq!(r["error"]["code"], "privilege_violation", "{r}");
    // A call that does not exist is said so.
    let r = li.request(json!({"service":"ClearCall","call":999_999}));
    assert_eq!(r["error"]["code"], "invalid_call_id", "{r}");
}

/// Points 1 and 2: a supervisor limited to groups reads and watches only their scope;
/// `Monitor all` gives them only that; GetAgentState works within it.
#[test]
fn p12_2_a_scoped_supervisor_sees_and_touches_only_their_groups() {
    let rig = Rig::start();
    let mut li = rig.desk("1001", Some("2001"));
    let mut zhao = rig.desk("1003", Some("2003"));
    let mut sup = rig.supervisor("9001", None);
    let mut boss = rig.supervisor("9002", None);

    let r = sup.request(json!({"service":"Monitor","target":"all"}));
    let snap = &r["result"]["snapshot"];
    let agents: Vec<&str> =
        snap["agents"].as_array().expect("agents").iter().filter_map(|a| a["agent"].as_str()).collect();
    assert!(agents.contains(&"1001") && agents.contains(&"1002"), "{agents:?}");
    assert!(!agents.contains(&"1003") && !agents.contains(&"9002"), "out of scope: {agents:?}");
    let queues: Vec<&str> =
        snap["queues"].as_array().expect("queues").iter().filter_map(|q| q["queue"].as_str()).collect();
    assert_eq!(queues, vec!["sales"], "support has none of team-a");
    let r = boss.request(json!({"service":"Monitor","target":"all"}));
    assert_eq!(r["result"]["snapshot"]["agents"].as_array().map(Vec::len), Some(5), "{r}");

    // A call to support (team-b) and one to sales (team-a).
    rig.offer(1, "13800000001", "4008002000");
    let other = zhao.until("Delivered", |v| v["event"] == "Delivered")["call"].clone();
    rig.offer(2, "13800000002", "4008001000");
    let mine = li.until("Delivered", |v| v["event"] == "Delivered")["call"].clone();
    let seen = sup.drain();
    assert!(seen.iter().any(|e| e["call"] == mine), "the sales call is in scope: {seen:?}");
    assert!(!seen.iter().any(|e| e["call"] == other), "the support call is not: {seen:?}");
    assert!(!seen.iter().any(|e| e["agent"] == "1003"), "agent 1003 is not: {seen:?}");
    let seen = boss.drain();
    assert!(seen.iter().any(|e| e["call"] == other), "an unscoped supervisor sees everything");

    for (req, want) in [
        (json!({"service":"Monitor","target":{"agent":"1003"}}), "privilege_violation"),
        (json!({"service":"Monitor","target":{"queue":"support"}}), "privilege_violation"),
        (json!({"service":"Monitor","target":{"device":"station:2003"}}), "privilege_violation"),
        (json!({"service":"Monitor","target":{"device":"trunk:1/1/1"}}), "privilege_violation"),
        (json!({"service":"SnapshotCall","call":other}), "privilege_violation"),
        (json!({"service":"SnapshotDevice","device":"station:2003"}), "privilege_violation"),
        (json!({"service":"SnapshotQueue","queue":"support"}), "privilege_violation"),
        (json!({"service":"SnapshotAgents","group":"team-b"}), "privilege_violation"),
        (json!({"service":"GetAgentState","agent":"1003"}), "privilege_violation"),
        (
            json!({"service":"SetAgentState","agent":"1003","state":"not_ready","reason":"x"}),
            "privilege_violation",
        ),
        (json!({"service":"Supervise","agent":"1003","mode":"monitor"}), "privilege_violation"),
        (json!({"service":"StartRecording","call":other}), "privilege_violation"),
        (json!({"service":"Monitor","target":{"agent":"1001"}}), "ok"),
        (json!({"service":"Monitor","target":{"queue":"sales"}}), "ok"),
        (json!({"service":"Monitor","target":{"device":"station:2001"}}), "ok"),
        (json!({"service":"SnapshotCall","call":mine}), "ok"),
        (json!({"service":"SnapshotDevice","device":"station:2001"}), "ok"),
        (json!({"service":"SnapshotQueue","queue":"sales"}), "ok"),
    ] {
        assert_eq!(sup.code(req.clone()), want, "{req}");
    }
    let r = sup.request(json!({"service":"GetAgentState","agent":"1001"}));
    assert_eq!(r["result"]["agent"], "1001", "{r}");
    assert_eq!(r["result"]["state"], "ringing", "{r}");
    let r = sup.request(json!({"service":"SnapshotAgents"}));
    let listed: Vec<&str> = r["result"]["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["agent"].as_str())
        .collect();
    assert!(listed.contains(&"1001") && !listed.contains(&"1003"), "{listed:?}");
    let r = boss.request(json!({"service":"GetAgentState","agent":"1003"}));
    assert_eq!(r["result"]["state"], "ringing", "{r}");
    assert_eq!(boss.code(json!({"service":"GetAgentState","agent":"9001"})), "ok");
}

/// Point 3: one person, several clients at once.
#[test]
fn p12_3_a_supervisor_and_an_agent_log_in_from_several_clients() {
    let rig = Rig::start();
    // A supervisor at a desk with a phone, a wallboard and a CRM without one.
    let mut desk = rig.supervisor("9002", Some("2008"));
    let mut wallboard = rig.supervisor("9002", None);
    let mut crm = rig.supervisor("9002", None);
    assert_eq!(wallboard.code(json!({"service":"Monitor","target":"all"})), "ok");
    assert_eq!(crm.code(json!({"service":"Monitor","target":{"queue":"sales"}})), "ok");
    assert_eq!(desk.code(json!({"service":"Monitor","target":{"agent":"1001"}})), "ok");
    // Another station is refused: one station per person.
    let mut other = rig.client();
    assert_eq!(other.login("9002", "boss", Some("2007"))["error"]["code"], "invalid_agent_state");

    // A supervisor who started without a station sits down at a phone later.
    let mut watch = rig.supervisor("9001", None);
    let mut phone = rig.supervisor("9001", Some("2007"));
    let r = phone.request(json!({"service":"GetAgentState","agent":"9001"}));
    assert!(r["result"]["state"].is_string(), "{r}");
    assert_eq!(watch.code(json!({"service":"Monitor","target":"all"})), "ok");

    // An agent's desktop and CRM: the CRM names no station and is at the desktop's.
    let mut li = rig.desk("1001", Some("2001"));
    let mut li_crm = rig.client();
    let r = li_crm.login("1001", "pw", None);
    assert_eq!(r["result"]["station"], "2001", "{r}");
    assert_eq!(li_crm.code(json!({"service":"Monitor","target":{"device":"station:2001"}})), "ok");
    let mut li_elsewhere = rig.client();
    assert_eq!(li_elsewhere.login("1001", "pw", Some("2002"))["error"]["code"], "invalid_agent_state");
    // Each connection has its own subscriptions: both hear the call.
    rig.offer(3, "13800000003", "4008001000");
    li.until("Delivered at the desk", |v| v["event"] == "Delivered");
    li_crm.until("Delivered at the CRM", |v| v["event"] == "Delivered");
    desk.until("Delivered for the supervisor", |v| v["event"] == "Delivered");
}

/// Point 4: the pop comes after Delivered, so answering on it is never refused.
#[test]
fn p12_4_the_pop_follows_delivered_and_answering_on_it_works() {
    let rig = Rig::start();
    // A headset agent: the station is off hook, so AnswerCall works from the desk.
    let mut li = rig.client();
    assert!(li.login("1001", "pw", Some("2001"))["result"].is_object());
    rig.off_hook(1);
    let (seen, r) = li.exchange(json!({"service":"Monitor","target":{"agent":"1001"}}));
    assert!(r["result"].is_object(), "{r} {seen:?}");
    for n in 0..3u8 {
        rig.offer(1 + n, "13800138000", "4008001000");
        let mut got = Vec::new();
        let pop = loop {
            let v = li.recv();
            if v["event"] == "ScreenPop" {
                break v;
            }
            got.push(v);
        };
        assert!(
            got.iter().any(|e| e["event"] == "Delivered" && e["call"] == pop["call"]),
            "Delivered before the pop: {got:?}"
        );
        let r = li.request(json!({"service":"AnswerCall","call":pop["call"],"device":"station:2001"}));
        assert_eq!(r["result"], json!({}), "answer on pop: {r}");
        let r = li.request(json!({"service":"ClearConnection","call":pop["call"],"device":"station:2001"}));
        assert_eq!(r["result"], json!({}), "{r}");
        // After-call work has no timer here: ready again by hand (the headset stays up).
        li.request(json!({"service":"SetAgentState","agent":"1001","state":"ready"}));
    }
}

/// Point 4: a call that rings the agent's phone while the desktop logs in still pops.
#[test]
fn p12_4_a_call_ringing_during_login_still_pops() {
    let rig = Rig::start();
    rig.offer(1, "13800138000", "4008001000");
    let mut watcher = rig.supervisor("9002", None);
    let r = watcher.request(json!({"service":"Monitor","target":{"queue":"sales"}}));
    assert_eq!(r["result"]["snapshot"]["queues"][0]["waiting"].as_array().map(Vec::len), Some(1), "{r}");
    let mut li = rig.client();
    let (before, r) = li.exchange(json!({"service":"Login","user":"1001","password":"pw","station":"2001"}));
    assert!(r["result"].is_object(), "{r}");
    assert!(before.is_empty(), "nothing before the Login reply: {before:?}");
    let after = li.drain();
    let pop = events(&after, "ScreenPop");
    assert_eq!(pop.len(), 1, "the pop of the call that rang while logging in: {after:?}");
    assert_eq!(pop[0]["calling"], "13800138000");
}

/// Point 5: one Originated per MakeCall, with its device; DeflectCall from a headset.
#[test]
fn p12_5_makecall_reports_originated_once_with_its_device() {
    let rig = Rig::start();
    let mut li = rig.desk("1001", Some("2001"));
    rig.off_hook(1);
    li.drain();
    let (seen, r) = li.exchange(json!({"service":"MakeCall","calling":"2001","called":"9013912345678"}));
    assert!(r["result"]["call"].is_u64(), "{r}");
    let mut seen = seen;
    seen.extend(li.drain());
    let originated = events(&seen, "Originated");
    assert_eq!(originated.len(), 1, "{seen:?}");
    assert_eq!(originated[0]["device"], "station:2001");
    assert_eq!(originated[0]["calling"], "station:2001");
    assert_eq!(originated[0]["call"], r["result"]["call"]);
}

#[test]
fn p12_5_a_headset_station_deflects_a_call() {
    let rig = Rig::start();
    let mut li = rig.desk("1001", Some("2001"));
    let mut wang = rig.desk("1002", Some("2002"));
    wang.request(json!({"service":"SetAgentState","agent":"1002","state":"not_ready","reason":"x"}));
    li.request(json!({"service":"SetAgentState","agent":"1001","state":"not_ready","reason":"x"}));
    rig.off_hook(1); // the headset
    rig.off_hook(2);
    let (seen, r) = wang.exchange(json!({"service":"MakeCall","calling":"2002","called":"2001"}));
    let call = r["result"]["call"].clone();
    assert!(call.is_u64(), "{r} {seen:?}");
    let seen = li.drain();
    assert!(seen.iter().any(|v| v["event"] == "Delivered" && v["alerting"] == "station:2001"), "{seen:?}");
    // The engine's events of a service come before its reply.
    let (seen, r) =
        li.exchange(json!({"service":"DeflectCall","call":call,"device":"station:2001","to":"2003"}));
    assert_eq!(r["result"], json!({}), "{r}");
    let d = seen.iter().find(|v| v["event"] == "Diverted").expect("Diverted").clone();
    assert_eq!(d["from"], "station:2001");
    assert_eq!(d["to"], "station:2003");
    let r = wang.request(json!({"service":"SnapshotCall","call":call}));
    let parties = r["result"]["parties"].as_array().expect("parties").clone();
    assert!(parties.contains(&json!({"device":"station:2003","state":"alerting"})), "{r}");
    assert!(!parties.iter().any(|p| p["device"] == "station:2001"), "{r}");
}

/// Point 5: snapshots carry real times and the numbers of queued calls as strings.
#[test]
fn p12_5_snapshots_give_real_times_and_the_numbers_of_queued_calls() {
    let rig = Rig::start();
    let mut boss = rig.supervisor("9002", None);
    let q = boss.request(json!({"service":"Monitor","target":{"queue":"sales"}}));
    assert!(q["result"]["monitor"].is_u64(), "{q}");
    rig.offer(1, "13800138000", "4008001000");
    let queued = boss.until("Queued", |v| v["event"] == "Queued");
    assert_eq!(
        (queued["calling"].as_str(), queued["called"].as_str()),
        (Some("13800138000"), Some("4008001000"))
    );
    let r = boss.request(json!({"service":"Monitor","target":"all"}));
    let snap = &r["result"]["snapshot"];
    let call = &snap["calls"][0];
    assert_eq!(call["calling"], "13800138000", "{snap}");
    assert_eq!(call["called"], "4008001000", "{snap}");
    assert_eq!(call["queue"], "sales", "{snap}");
    let year = |v: &Value| v.as_str().and_then(|s| s.get(..4)).map(str::to_string);
    let wall_year = year(&json!(link::rfc3339(WALL)));
    assert_eq!(year(&call["started"]), wall_year, "{snap}");
    for a in snap["agents"].as_array().expect("agents") {
        assert!(a["since"].is_string() && year(&a["since"]) != Some("1970".into()), "{a}");
        assert!(a["name"].is_string(), "{a}");
    }
    let waiting =
        &snap["queues"].as_array().expect("queues").iter().find(|q| q["queue"] == "sales").expect("sales")
            ["waiting"];
    assert_eq!(waiting[0]["call"], call["call"], "{snap}");
    let r = boss.request(json!({"service":"SnapshotQueue","queue":"sales"}));
    assert_eq!(r["result"]["waiting"], 1, "{r}");
    assert_eq!(year(&r["result"]["oldest_since"]), wall_year, "{r}");
}

/// Point 5: a headset agent deflects a call the queue offered (desktop only: the
/// handset is already off hook).
#[test]
fn p12_5_a_headset_agent_deflects_an_acd_offer() {
    let rig = Rig::start();
    let mut li = rig.desk("1001", Some("2001"));
    rig.off_hook(1); // the headset
    li.drain();
    rig.offer(1, "13800138000", "4008001000");
    let call = li.until("Delivered", |v| v["event"] == "Delivered" && v["alerting"] == "station:2001")
        ["call"]
        .clone();
    // The engine's events of a service come before its reply.
    let (seen, r) =
        li.exchange(json!({"service":"DeflectCall","call":call,"device":"station:2001","to":"2003"}));
    assert_eq!(r["result"], json!({}), "{r}");
    let d = seen.iter().find(|v| v["event"] == "Diverted").expect("Diverted").clone();
    assert_eq!((d["from"].as_str(), d["to"].as_str()), (Some("station:2001"), Some("station:2003")), "{d}");
    // The agent is free again and the call is no longer theirs.
    let r = li.request(json!({"service":"GetAgentState","agent":"1001"}));
    assert_eq!(r["result"]["state"], "ready", "{r}");
    assert_eq!(li.code(json!({"service":"ClearCall","call":call})), "privilege_violation");
    // A destination that does not exist is refused and the call stays.
    rig.offer(2, "13800138001", "4008001000");
    let call = li.until("Delivered", |v| v["event"] == "Delivered" && v["alerting"] == "station:2001")
        ["call"]
        .clone();
    assert_eq!(
        li.code(json!({"service":"DeflectCall","call":call,"device":"station:2001","to":"7777"})),
        "invalid_device_id"
    );
    assert_eq!(li.code(json!({"service":"AnswerCall","call":call,"device":"station:2001"})), "ok");
}

#[test]
fn p12_2_a_scoped_supervisor_gets_the_stats_of_their_queues_only() {
    let rig = Rig::start();
    let mut sup = rig.supervisor("9001", None);
    let mut boss = rig.supervisor("9002", None);
    let queue = |name: &str| link::QueueStats { queue: name.into(), ..Default::default() };
    rig.link.send(LinkMsg::Stats(link::WallboardStats {
        at_unix_ms: 1_764_000_000_000,
        queues: vec![queue("sales"), queue("support")],
        ..Default::default()
    }));
    let names = |v: &Value| -> Vec<String> {
        v["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .filter_map(|q| q["queue"].as_str().map(String::from))
            .collect()
    };
    let mine = sup.until("Stats", |v| v["event"] == "Stats");
    assert_eq!(names(&mine), vec!["sales"], "support has none of team-a: {mine}");
    let all = boss.until("Stats", |v| v["event"] == "Stats");
    assert_eq!(names(&all), vec!["sales", "support"], "an unscoped supervisor sees every queue: {all}");
}
