//! The CTI link server on loopback, wired to a real engine running on a thread:
//! TCP and WebSocket clients log in, are refused what their role may not do, see a
//! call in progress when they monitor mid-call, and meet the limits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use hotline_cti::link;
use hotline_cti::Input;
use hotline_drivers::{CardEvent, ChannelId, EventKind, Instant};
use serde_json::{json, Value};

#[path = "common/link_center.rs"]
mod link_center;
use link_center::Center;

const WAIT: Duration = Duration::from_secs(10);

impl Center {
    fn tcp(&self) -> Tcp {
        Tcp::connect(self.link.addrs().tcp.expect("tcp"))
    }

    fn ws(&self) -> Ws {
        let addr = self.link.addrs().http.expect("http");
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let (ws, _) = tungstenite::client(format!("ws://{addr}/cti"), stream).expect("websocket handshake");
        Ws { ws, next: 1 }
    }

    /// A caller dials the sales access number on an E1 timeslot.
    fn offer_call(&self, timeslot: u8) {
        let kind = EventKind::Offered {
            ch: ChannelId::e1(1, 1, timeslot),
            ani: Some("13800138000".into()),
            dnis: "4008001000".into(),
            category: Default::default(),
        };
        self.engine.send(Input::Card(CardEvent { time: Instant::ZERO, kind })).expect("engine runs");
    }
}

trait Client {
    fn send_text(&mut self, text: &str);
    fn recv(&mut self) -> Option<Value>;
    fn next_invoke(&mut self) -> u32;

    fn request(&mut self, mut req: Value) -> Value {
        let invoke = self.next_invoke();
        req["invoke"] = json!(invoke);
        self.send_text(&req.to_string());
        self.until(|v| v["invoke"] == json!(invoke))
    }

    fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.recv().expect("a message before the connection closed or timed out");
            if pred(&v) {
                return v;
            }
        }
    }

    fn login(&mut self, user: &str, password: &str, station: Option<&str>) -> Value {
        self.request(json!({"service":"Login","user":user,"password":password,"station":station}))
    }
}

struct Tcp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next: u32,
}

impl Tcp {
    fn connect(addr: SocketAddr) -> Tcp {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        Tcp { reader: BufReader::new(s.try_clone().expect("clone")), writer: s, next: 1 }
    }

    /// Read until the server closes; false if it is still open after the wait.
    fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        loop {
            match self.reader.get_mut().read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

impl Client for Tcp {
    fn send_text(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("write");
        self.writer.write_all(b"\n").expect("write");
    }
    fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("the server sends JSON lines")),
        }
    }
    fn next_invoke(&mut self) -> u32 {
        self.next += 1;
        self.next
    }
}

struct Ws {
    ws: tungstenite::WebSocket<TcpStream>,
    next: u32,
}

impl Client for Ws {
    fn send_text(&mut self, text: &str) {
        self.ws.send(tungstenite::Message::text(text)).expect("send");
    }
    fn recv(&mut self) -> Option<Value> {
        loop {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).expect("JSON"))
                }
                Ok(tungstenite::Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }
    fn next_invoke(&mut self) -> u32 {
        self.next += 1;
        self.next
    }
}

#[test]
fn an_agent_logs_in_over_tcp_and_is_ready() {
    let center = Center::start(|_| {});
    let mut agent = center.tcp();
    let r = agent.login("1001", "pw1001", Some("2001"));
    assert_eq!(
        r["result"],
        json!({"role":"agent","agent":"1001","name":"Li Wei","station":"2001","reasons":[],"crm":false})
    );
    let r = agent.request(json!({"service":"GetAgentState","agent":"1001"}));
    assert_eq!(r["result"]["state"], "ready", "{r}");
}

#[test]
fn an_agent_with_a_hashed_password_logs_in_over_websocket() {
    let center = Center::start(|_| {});
    let mut agent = center.ws();
    let r = agent.login("1002", "pw1002", Some("2002"));
    assert_eq!(r["result"]["role"], "agent", "{r}");
}

#[test]
fn a_wrong_password_is_refused_and_the_connection_stays_up() {
    let center = Center::start(|_| {});
    let mut agent = center.tcp();
    let r = agent.login("1002", "guess", Some("2002"));
    assert_eq!(r["error"]["code"], "invalid_password", "{r}");
    let r = agent.login("nobody", "guess", None);
    assert_eq!(r["error"]["code"], "invalid_password", "{r}");
    let r = agent.request(json!({"service":"SnapshotQueue","queue":"sales"}));
    assert_eq!(r["error"]["code"], "not_logged_in", "{r}");
    let r = agent.login("1002", "pw1002", Some("2002"));
    assert_eq!(r["result"]["agent"], "1002", "{r}");
}

#[test]
fn an_agent_may_not_touch_another_station_or_supervise() {
    let center = Center::start(|_| {});
    let mut agent = center.tcp();
    agent.login("1001", "pw1001", Some("2001"));
    let r = agent.request(json!({"service":"MakeCall","calling":"2002","called":"2001"}));
    assert_eq!(r["error"]["code"], "privilege_violation", "{r}");
    assert!(r["error"]["message"].as_str().unwrap_or("").contains("station:2001"), "{r}");
    let r = agent.request(json!({"service":"Supervise","agent":"1002","mode":"barge"}));
    assert_eq!(r["error"]["code"], "privilege_violation", "{r}");
    let r = agent.request(json!({"service":"SetAgentState","agent":"1002","state":"ready"}));
    assert_eq!(r["error"]["code"], "privilege_violation", "{r}");
    let r = agent.request(json!({"service":"Monitor","target":"all"}));
    assert_eq!(r["error"]["code"], "privilege_violation", "{r}");
    let r =
        agent.request(json!({"service":"SetAgentState","agent":"1001","state":"not_ready","reason":"lunch"}));
    assert_eq!(r["result"], json!({}), "its own state it may change: {r}");
}

#[test]
fn a_supervisor_who_connects_mid_call_sees_the_ringing_call_in_the_snapshot() {
    let center = Center::start(|_| {});
    let mut agent = center.tcp();
    agent.login("1001", "pw1001", Some("2001"));
    let m = agent.request(json!({"service":"Monitor","target":{"agent":"1001"}}));
    let monitor = m["result"]["monitor"].clone();
    center.offer_call(5);
    let delivered = agent.until(|v| v["event"] == "Delivered");
    assert_eq!(delivered["monitor"], monitor);
    assert_eq!(delivered["alerting"], "station:2001");
    assert_eq!(delivered["calling"], "13800138000");
    let call = delivered["call"].clone();

    let mut sup = center.ws();
    let r = sup.login("9001", "boss", None);
    assert_eq!(r["result"]["role"], "supervisor", "{r}");
    let r = sup.request(json!({"service":"Monitor","target":"all"}));
    let snap = &r["result"]["snapshot"];
    let calls = snap["calls"].as_array().expect("calls");
    let seen = calls.iter().find(|c| c["call"] == call).expect("the call in progress is in the snapshot");
    assert!(seen["parties"]
        .as_array()
        .expect("parties")
        .contains(&json!({"device":"station:2001","state":"alerting"})));
    let agents = snap["agents"].as_array().expect("agents");
    let li = agents.iter().find(|a| a["agent"] == "1001").expect("agent 1001");
    assert_eq!(li["state"], "ringing");
}

#[test]
fn malformed_json_gets_an_error_and_the_connection_stays_up() {
    let center = Center::start(|_| {});
    let mut c = center.tcp();
    c.send_text("{\"invoke\":1,\"service\":");
    let e = c.recv().expect("an answer");
    assert_eq!(e["event"], "Error");
    assert_eq!(e["code"], "malformed");
    c.send_text(r#"{"invoke":7,"service":"HoldCall","call":"twelve"}"#);
    let e = c.recv().expect("an answer");
    assert_eq!(e["invoke"], 7);
    assert_eq!(e["error"]["code"], "malformed");
    let r = c.request(json!({"service":"Ping"}));
    assert!(r["result"]["time"].is_string(), "{r}");
}

#[test]
fn an_oversized_line_is_skipped_with_an_error_and_the_connection_stays_up() {
    let center = Center::start(|c| c.max_message = 1024);
    let mut c = center.tcp();
    let big = format!(r#"{{"invoke":1,"service":"Ping","pad":"{}"}}"#, "x".repeat(5000));
    c.send_text(&big);
    let e = c.recv().expect("an answer");
    assert_eq!(e["code"], "message_too_large", "{e}");
    let r = c.request(json!({"service":"Ping"}));
    assert!(r["result"].is_object(), "{r}");
}

#[test]
fn an_oversized_websocket_message_closes_with_1009() {
    let center = Center::start(|c| c.max_message = 1024);
    let mut c = center.ws();
    let big = format!(r#"{{"invoke":1,"service":"Ping","pad":"{}"}}"#, "x".repeat(5000));
    c.send_text(&big);
    let e = c.recv().expect("an error event first");
    assert_eq!(e["code"], "message_too_large", "{e}");
    match c.ws.read() {
        Ok(tungstenite::Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1009),
        other => panic!("expected a close frame with 1009, got {other:?}"),
    }
}

#[test]
fn a_client_that_never_reads_is_disconnected() {
    let center = Center::start(|c| {
        c.max_queued = 16 * 1024;
        c.rate = 1e6;
        c.burst = 1e6;
    });
    let mut c = center.tcp();
    // Each request echoes its long unknown service name in the error: large replies.
    let req = format!(r#"{{"invoke":1,"service":"{}"}}"#, "x".repeat(60_000));
    for _ in 0..400 {
        if c.writer.write_all(req.as_bytes()).and_then(|_| c.writer.write_all(b"\n")).is_err() {
            break;
        }
    }
    assert!(c.closed_by_server(), "the server drops a client that does not read its output");
}

#[test]
fn an_idle_connection_is_told_and_closed() {
    let center = Center::start(|c| c.idle_timeout = Duration::from_millis(300));
    let mut c = center.tcp();
    let e = c.recv().expect("the idle notice");
    assert_eq!(e["code"], "idle_timeout", "{e}");
    assert!(c.closed_by_server());
}

#[test]
fn too_many_requests_are_refused_with_rate_limited() {
    let center = Center::start(|c| {
        c.rate = 1.0;
        c.burst = 3.0;
    });
    let mut c = center.tcp();
    for i in 0..5 {
        c.send_text(&json!({"invoke":100 + i,"service":"Ping"}).to_string());
    }
    let codes: Vec<Value> = (0..5).map(|_| c.recv().expect("reply")["error"]["code"].clone()).collect();
    assert!(codes.contains(&json!("rate_limited")), "{codes:?}");
}

#[test]
fn web_pages_are_served_and_unknown_paths_get_404() {
    let center = Center::start(|c| {
        c.pages.push(link::Page {
            path: "/agent".into(),
            content_type: "text/html; charset=utf-8".into(),
            body: Arc::from(&b"<h1>agent</h1>"[..]),
        })
    });
    let addr = center.link.addrs().http.expect("http");
    let get = |path: &str| {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let page = get("/agent");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.ends_with("<h1>agent</h1>"), "{page}");
    assert!(get("/nothing").starts_with("HTTP/1.1 404"));
}
