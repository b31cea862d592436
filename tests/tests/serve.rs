//! `hotline serve` end to end, in real time on loopback: the card simulator, the
//! engine thread, the CTI link. An agent's desktop (a TCP client speaking
//! docs/protocol.md) logs in, gets the screen pop of a simulated caller and the CRM's
//! answer about them, sees the call answered at the phone, stops and restarts its
//! recording, and sees it cleared; then a drain refuses the next caller and ends when
//! no call is left.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hotline_cti::serve::{self, ServeOptions};
use serde_json::{json, Value};

const CENTER: &str = r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-2"

[simulator]
media = "signalling"
seed = 5

[[simulator.inbound]]
at_s = 2
trunk = "1/1"
ani = "13800138000"
dnis = "4008001000"
caller = { patience_s = 30, script = ["wait_agent", "talk 5", "hang_up"] }

[[simulator.inbound]]
at_s = 9
trunk = "1/1"
ani = "13900139000"
dnis = "4008001000"
caller = { patience_s = 30, script = ["wait_agent", "talk 2", "hang_up"] }

[[simulator.station]]
ports = "1-2"
answer_after_s = [1, 1]
hang_up_after_release_s = 1

[[trunk_group]]
name = "pri"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-2"
extension = "2001"

[[queue]]
name = "service"
wrap_up = 1

[[access_number]]
dnis = "4008001000"
target = "queue:service"

[[agent]]
id = "1001"
name = "Li Wei"
password = "pw"
queues = { service = 5 }
"#;

/// A customer database on loopback: `GET /customer?number=N` answers a JSON record.
fn crm_service() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut head = String::new();
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            while r.read_line(&mut head).is_ok_and(|n| n > 2) && !head.ends_with("\r\n\r\n") {}
            let number = head.split("number=").nth(1).and_then(|t| t.split([' ', '&']).next()).unwrap_or("");
            let body = json!({"name": "Wang Fang", "tier": "gold", "number": number}).to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

struct Desk {
    out: TcpStream,
    lines: BufReader<TcpStream>,
    seen: Vec<Value>,
}

impl Desk {
    fn connect(addr: std::net::SocketAddr) -> Desk {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        Desk { out: s.try_clone().expect("clone"), lines: BufReader::new(s), seen: Vec::new() }
    }

    fn send(&mut self, v: Value) {
        writeln!(self.out, "{v}").expect("send");
    }

    /// Wait up to `within` for a message that `f` accepts.
    fn wait_for(&mut self, within: Duration, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + within;
        if let Some(v) = self.seen.iter().find(|v| f(v)) {
            return v.clone();
        }
        while Instant::now() < end {
            let mut line = String::new();
            match self.lines.read_line(&mut line) {
                Ok(0) => panic!("the server closed the connection waiting for {what}"),
                Ok(_) => {
                    let v: Value = serde_json::from_str(&line).expect("the server sends JSON lines");
                    self.seen.push(v.clone());
                    if f(&v) {
                        return v;
                    }
                }
                Err(_) => {}
            }
        }
        panic!("no {what} within {within:?}; saw {:#?}", self.seen)
    }
}

#[test]
fn an_agent_desktop_gets_the_pop_and_follows_the_call_then_a_drain_refuses_new_callers() {
    let dir = std::env::temp_dir().join(format!("hotline-serve-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let crm = crm_service();
    let text = format!(
        "{CENTER}\n[store]\npath = \"{}\"\n\n[recording]\ndir = \"{}\"\n\n[link.crm]\nurl = \"http://{crm}/customer?number={{number}}\"\ntimeout_ms = 2000\n",
        dir.join("hotline.db").display(),
        dir.join("recordings").display()
    );
    let mut opts = ServeOptions::new(text, "center.toml".into(), 1_700_000_000_000);
    opts.link_override = Some(|l| {
        l.tcp = Some("127.0.0.1:0".parse().expect("addr"));
        l.http = None;
    });
    let running = serve::start(opts).expect("the center starts");
    let addr = running.link.addrs().tcp.expect("a TCP listener");

    let mut desk = Desk::connect(addr);
    desk.send(json!({"invoke":1,"service":"Login","user":"1001","password":"pw","station":"2001"}));
    let r = desk.wait_for(Duration::from_secs(5), "the login reply", |v| v["invoke"] == 1);
    assert_eq!(r["result"]["role"], "agent", "{r}");
    desk.send(json!({"invoke":2,"service":"SetAgentState","agent":"1001","state":"ready"}));
    let r = desk.wait_for(Duration::from_secs(5), "the ready reply", |v| v["invoke"] == 2);
    assert!(r.get("error").is_none(), "{r}");

    let pop = desk.wait_for(Duration::from_secs(10), "the screen pop", |v| v["event"] == "ScreenPop");
    assert_eq!(pop["calling"], "13800138000");
    assert_eq!(pop["access_number"], "4008001000");
    assert_eq!(pop["agent"], "1001");
    let call = pop["call"].clone();
    // The CRM's answer follows the pop, never holding it up.
    let update =
        desk.wait_for(Duration::from_secs(5), "the CRM's answer", |v| v["event"] == "ScreenPopUpdate");
    assert_eq!(update["call"], call);
    assert_eq!(update["crm"]["name"], "Wang Fang", "{update}");
    assert_eq!(update["crm"]["number"], "13800138000", "{update}");

    desk.send(json!({"invoke":3,"service":"Monitor","target":{"agent":"1001"}}));
    desk.wait_for(Duration::from_secs(5), "the monitor reply", |v| v["invoke"] == 3);
    // The phone answers; the call is recorded from answer. The agent stops the
    // recording, cannot stop it twice, and starts it again on demand.
    let answered =
        |v: &Value| v["event"] == "Established" || v["event"] == "AgentState" && v["state"] == "busy";
    desk.wait_for(Duration::from_secs(10), "the call answered", answered);
    desk.send(json!({"invoke":4,"service":"StopRecording","call":call}));
    let r = desk.wait_for(Duration::from_secs(5), "the stop reply", |v| v["invoke"] == 4);
    assert!(r.get("error").is_none(), "{r}");
    desk.send(json!({"invoke":5,"service":"StopRecording","call":call}));
    let r = desk.wait_for(Duration::from_secs(5), "the second stop reply", |v| v["invoke"] == 5);
    assert_eq!(r["error"]["code"], "invalid_connection_state", "{r}");
    desk.send(json!({"invoke":6,"service":"StartRecording","call":call}));
    let r = desk.wait_for(Duration::from_secs(5), "the start reply", |v| v["invoke"] == 6);
    assert!(r.get("error").is_none(), "{r}");
    desk.wait_for(Duration::from_secs(10), "the call cleared", |v| {
        v["event"] == "CallCleared" && v["call"] == call
    });

    // Drain: the caller due at 9 s is refused; the drain ends with no call left.
    running.drain(Duration::from_secs(30));
    running.drained.recv_timeout(Duration::from_secs(10)).expect("the drain ends");
    // Figures from after the second caller's arrival (9 s).
    let end = Instant::now() + Duration::from_secs(15);
    let s = loop {
        let s = running.stats.recv_timeout(Duration::from_secs(3)).expect("figures arrive each second");
        if s.uptime_s >= 10.5 {
            break s;
        }
        assert!(Instant::now() < end, "the center's clock stalled");
    };
    assert!(s.draining);
    assert_eq!(s.calls_today, 1, "the second caller was refused, not queued");
    let engine = running.stop().expect("stops cleanly");
    assert_eq!(engine.call_count(), 0);

    // The store has the call, answered by 1001.
    let store = hotline_cti::store::Store::open(dir.join("hotline.db")).expect("the store");
    let contacts = store.previous_contacts("13800138000", 5).expect("query");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].agent.as_deref(), Some("1001"));
    // Two recordings of the call: the policy's from answer, and the agent's on demand.
    let recordings = store.recordings(&Default::default()).expect("query");
    let reasons: Vec<&str> = recordings.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{recordings:?}");
    assert!(reasons.contains(&"policy") && reasons.contains(&"on_demand"), "{reasons:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
