//! Issue 13, points 2 and 3: abusive clients of the CTI link cost the others nothing
//! they would notice. Heads that never end, arrive byte by byte or are huge; lines that
//! never end; too many connections; floods of malformed requests and of Logins;
//! lockouts and their lifting; WebSocket origins. Everything on loopback (several
//! loopback addresses: 127.0.0.2 and so on stand for other machines), bounded in count
//! and time, asserting on behaviour only.
#![allow(unsafe_code)] // bind() before connect(), for the source address (tests only)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotline_cti::link::{self, LinkConfig};
use hotline_cti::{Config, Input};
use hotline_drivers::{CardEvent, ChannelId, EventKind, Instant};
use serde_json::{json, Value};

#[path = "common/link_center.rs"]
mod link_center;
use link_center::{config_text, Center};

const WAIT: Duration = Duration::from_secs(10);

impl Center {
    fn tcp_addr(&self) -> SocketAddr {
        self.link.addrs().tcp.expect("tcp")
    }

    fn http_addr(&self) -> SocketAddr {
        self.link.addrs().http.expect("http")
    }

    fn tcp_from(&self, src: [u8; 4]) -> Tcp {
        Tcp::new(connect_from(src, self.tcp_addr()))
    }

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

/// A TCP connection from loopback address `src` (127.x.y.z) to `dst`.
fn connect_from(src: [u8; 4], dst: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(dst) = dst else { panic!("IPv4 listener expected") };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket is bound and connected with properly sized sockaddr_in
    // values, and owned by the TcpStream from then on (or closed on failure).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(Ipv4Addr::from(src), 0);
        let r = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "bind {src:?}: {}", std::io::Error::last_os_error());
        let remote = sockaddr(*dst.ip(), dst.port());
        let r = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

struct Tcp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next: u32,
}

impl Tcp {
    fn new(s: TcpStream) -> Tcp {
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        Tcp { reader: BufReader::new(s.try_clone().expect("clone")), writer: s, next: 1 }
    }

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

    fn request(&mut self, mut req: Value) -> Value {
        self.next += 1;
        let invoke = self.next;
        req["invoke"] = json!(invoke);
        self.send_text(&req.to_string());
        self.until(|v| v["invoke"] == json!(invoke))
    }

    fn until_or_closed(&mut self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        loop {
            let v = self.recv()?;
            if pred(&v) {
                return Some(v);
            }
        }
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

    /// Log in, waiting out backoffs (at most a few seconds).
    fn login_through_backoff(&mut self, user: &str, password: &str, station: Option<&str>) -> Value {
        for _ in 0..200 {
            let r = self.login(user, password, station);
            if r["error"]["code"] != "login_backoff" {
                return r;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("still held back after 200 tries");
    }

    /// Read until the server closes; false if it is still open after the wait.
    fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        loop {
            match self.reader.read(&mut buf) {
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

/// A good client: logged in as agent 1001 at 2001 and monitoring itself.
fn good_agent(center: &Center) -> Tcp {
    let mut agent = center.tcp_from([127, 0, 0, 1]);
    let r = agent.login("1001", "pw1001", Some("2001"));
    assert_eq!(r["result"]["agent"], "1001", "{r}");
    let r = agent.request(json!({"service":"Monitor","target":{"agent":"1001"}}));
    assert!(r["result"]["monitor"].is_u64(), "{r}");
    agent
}

/// The good client gets its answers and a call's events while something else goes on.
fn still_served(center: &Center, agent: &mut Tcp, timeslot: u8) {
    for _ in 0..5 {
        let r = agent.request(json!({"service":"Ping"}));
        assert!(r["result"]["time"].is_string(), "{r}");
    }
    center.offer_call(timeslot);
    let d = agent.until(|v| v["event"] == "Delivered");
    assert_eq!(d["alerting"], "station:2001", "{d}");
}

/// The whole answer of an HTTP connection (until the server closes it).
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn p13_2_a_100_mb_request_head_is_refused_early_and_others_are_served_meanwhile() {
    let center = Center::start(|_| {});
    let mut agent = good_agent(&center);
    let http = center.http_addr();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let attacker = std::thread::spawn(move || {
        let mut s = TcpStream::connect(http).expect("connect");
        s.set_write_timeout(Some(WAIT)).expect("timeout");
        let chunk = vec![b'A'; 64 * 1024];
        let mut sent = 0usize;
        s.write_all(b"GET /agent HTTP/1.1\r\nX-Pad: ").expect("write");
        while sent < 100 << 20 {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        d2.store(true, Ordering::SeqCst);
        sent
    });
    still_served(&center, &mut agent, 5);
    let sent = attacker.join().expect("attacker thread");
    assert!(done.load(Ordering::SeqCst));
    assert!(sent < 100 << 20, "the server closed the connection before 100 MB: {sent} bytes got through");
    let r = agent.request(json!({"service":"Ping"}));
    assert!(r["result"].is_object(), "the good client is still connected: {r}");
}

#[test]
fn p13_2_an_oversized_head_gets_431() {
    let center = Center::start(|c| c.max_head = 2048);
    let mut s = TcpStream::connect(center.http_addr()).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let head = format!("GET /agent HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(3000));
    s.write_all(head.as_bytes()).expect("write");
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[test]
fn p13_2_a_head_sent_byte_by_byte_is_cut_off_with_408_while_others_are_served() {
    let center = Center::start(|c| c.head_timeout = Duration::from_secs(1));
    let mut agent = good_agent(&center);
    let http = center.http_addr();
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(http).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let head = b"GET /agent HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let mut answer = Vec::new();
        // One byte every 50 ms: the head would take 5 s; the deadline is 1 s.
        for b in head {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            let mut buf = [0u8; 1024];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });
    still_served(&center, &mut agent, 5);
    let answer = slow.join().expect("slow client");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[test]
fn p13_2_a_tcp_line_that_never_ends_is_cut_off_with_message_timeout() {
    let center = Center::start(|c| c.head_timeout = Duration::from_secs(1));
    let mut agent = good_agent(&center);
    let mut slow = center.tcp_from([127, 0, 0, 2]);
    slow.writer.write_all(br#"{"invoke":1,"service":"Pi"#).expect("write");
    still_served(&center, &mut agent, 5);
    let e = slow.until(|v| v["event"] == "Error");
    assert_eq!(e["code"], "message_timeout", "{e}");
    assert!(slow.closed_by_server());
}

#[test]
fn p13_2_connections_are_capped_per_address_and_in_total_with_a_clear_refusal() {
    let center = Center::start(|c| {
        c.max_connections = 5;
        c.max_connections_per_address = 3;
    });
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = center.tcp_from([127, 0, 0, 1]);
        assert!(c.request(json!({"service":"Ping"}))["result"].is_object());
        open.push(c);
    }
    let mut fourth = center.tcp_from([127, 0, 0, 1]);
    let e = fourth.recv().expect("a refusal");
    assert_eq!(e["code"], "too_many_connections", "{e}");
    assert!(e["reason"].as_str().unwrap_or("").contains("this address"), "{e}");
    assert!(fourth.closed_by_server());

    for _ in 0..2 {
        let mut c = center.tcp_from([127, 0, 0, 2]);
        assert!(c.request(json!({"service":"Ping"}))["result"].is_object());
        open.push(c);
    }
    let mut over = center.tcp_from([127, 0, 0, 3]);
    let e = over.recv().expect("a refusal");
    assert_eq!(e["code"], "too_many_connections", "{e}");
    // The refusal is sent at once, before any request.
    let mut page = connect_from([127, 0, 0, 3], center.http_addr());
    page.set_read_timeout(Some(WAIT)).expect("timeout");
    let answer = read_all(&mut page);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    // A closed connection frees its place.
    drop(open.pop());
    let mut c = None;
    for _ in 0..100 {
        let mut t = center.tcp_from([127, 0, 0, 3]);
        t.send_text(r#"{"invoke":1,"service":"Ping"}"#);
        if t.recv().is_some_and(|r| r["result"].is_object()) {
            c = Some(t);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.is_some(), "a place freed by a closed connection is given to the next");
}

#[test]
fn p13_2_many_lines_in_one_read_are_each_answered() {
    // One 64 KiB read of many small requests: each answered, in order.
    let center = Center::start(|c| {
        c.rate = 1e6;
        c.burst = 1e6;
    });
    let mut c = center.tcp_from([127, 0, 0, 1]);
    let mut batch = String::new();
    for i in 0..2000 {
        batch.push_str(&format!("{{\"invoke\":{i},\"service\":\"Ping\"}}\r\n\n"));
    }
    c.writer.write_all(batch.as_bytes()).expect("write");
    for i in 0..2000 {
        let r = c.recv().expect("reply");
        assert_eq!(r["invoke"], i, "{r}");
    }
}

#[test]
fn p13_3_malformed_requests_count_against_the_rate_limit_and_a_flood_is_disconnected() {
    let center = Center::start(|c| {
        c.rate = 5.0;
        c.burst = 10.0;
    });
    let mut agent = good_agent(&center);
    let mut bad = center.tcp_from([127, 0, 0, 2]);
    let flood = "not json\n".repeat(5000);
    let _ = bad.writer.write_all(flood.as_bytes());
    let mut malformed = 0;
    let mut limited = 0;
    while let Some(v) = bad.recv() {
        match v["code"].as_str() {
            Some("malformed") => malformed += 1,
            Some("rate_limited") => limited += 1,
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    assert!(malformed <= 12, "only the burst (and what trickled in) is read as requests: {malformed}");
    assert!(limited >= 10, "then refused as over the rate: {limited}");
    assert!(malformed + limited < 100, "and disconnected soon after: {}", malformed + limited);
    still_served(&center, &mut agent, 5);
}

#[test]
fn p13_3_a_login_flood_does_not_delay_a_real_users_login_or_events() {
    let center = Center::start(|c| {
        c.login_workers = 1;
        c.login.free_failures = 2;
        c.login.address_free_failures = 3;
    });
    let mut agent = good_agent(&center);
    let tcp = center.tcp_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let held_back = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut flooders = Vec::new();
    for n in 0..8u8 {
        let (stop, held_back) = (stop.clone(), held_back.clone());
        flooders.push(std::thread::spawn(move || {
            let mut codes = std::collections::BTreeMap::<String, u32>::new();
            let mut c = Tcp::new(connect_from([127, 0, 1, n], tcp));
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) && i < 5000 {
                i += 1;
                let user = if i % 2 == 0 { "1002".to_string() } else { format!("nobody{n}") };
                let req =
                    json!({"invoke":i,"service":"Login","user":user,"password":"guess","station":"2002"});
                let answer = if c.writer.write_all(format!("{req}\n").as_bytes()).is_ok() {
                    c.until_or_closed(|v| v["invoke"] == json!(i) || v["event"] == "Error")
                } else {
                    None
                };
                let code = match answer {
                    Some(r) if r["result"].is_object() => "ok".to_string(),
                    Some(r) if r["event"] == "Error" => format!("event {}", r["code"].as_str().unwrap_or("")),
                    Some(r) => r["error"]["code"].as_str().unwrap_or("").to_string(),
                    None => {
                        c = Tcp::new(connect_from([127, 0, 1, n], tcp));
                        "closed".to_string()
                    }
                };
                if code == "login_backoff" {
                    held_back.fetch_add(1, Ordering::SeqCst);
                }
                *codes.entry(code).or_default() += 1;
            }
            codes
        }));
    }
    // A real user, from its own address, while the flood goes on and is held back.
    for _ in 0..300 {
        if held_back.load(Ordering::SeqCst) >= 8 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut real = center.tcp_from([127, 0, 0, 9]);
    let r = real.login("9001", "boss", None);
    assert_eq!(r["result"]["role"], "supervisor", "a real login during the flood: {r}");
    still_served(&center, &mut agent, 5);
    stop.store(true, Ordering::SeqCst);
    let mut total = std::collections::BTreeMap::<String, u32>::new();
    for f in flooders {
        for (k, v) in f.join().expect("flooder") {
            *total.entry(k).or_default() += v;
        }
    }
    assert!(!total.contains_key("ok"), "{total:?}");
    assert!(!total.contains_key("engine_busy"), "{total:?}");
    assert!(total.get("login_backoff").copied().unwrap_or(0) > 0, "floods are held back: {total:?}");
    assert!(
        total.get("invalid_password").copied().unwrap_or(0) <= 8 * 20,
        "few passwords were actually checked: {total:?}"
    );
}

#[test]
fn p13_3_an_account_locks_after_repeated_failures_and_a_supervisor_lifts_it() {
    let center = Center::start(|c| {
        c.login.free_failures = 1;
        c.login.address_free_failures = 1;
        c.login.backoff_base = Duration::from_millis(10);
        c.login.lockout_failures = 3;
        c.login.lockout = None;
    });
    let mut guesser = center.tcp_from([127, 0, 0, 2]);
    for _ in 0..3 {
        let r = guesser.login_through_backoff("1002", "guess", Some("2002"));
        assert_eq!(r["error"]["code"], "invalid_password", "{r}");
    }
    let mut owner = center.tcp_from([127, 0, 0, 3]);
    let r = owner.login("1002", "pw1002", Some("2002"));
    assert_eq!(r["error"]["code"], "account_locked", "even the right password: {r}");

    let mut other = center.tcp_from([127, 0, 0, 4]);
    let r = other.login("1001", "pw1001", Some("2001"));
    assert_eq!(r["result"]["agent"], "1001", "{r}");
    let r = other.request(json!({"service":"UnlockAccount","user":"1002"}));
    assert_eq!(r["error"]["code"], "privilege_violation", "agents may not unlock: {r}");

    let mut sup = center.tcp_from([127, 0, 0, 5]);
    assert_eq!(sup.login("9001", "boss", None)["result"]["role"], "supervisor");
    let r = sup.request(json!({"service":"LoginLockouts"}));
    let users = r["result"]["users"].as_array().expect("users");
    assert!(users.iter().any(|u| u["user"] == "1002" && u["locked"] == true), "{r}");
    assert!(r["result"]["addresses"].is_array(), "{r}");
    let r = sup.request(json!({"service":"UnlockAccount","user":"1002"}));
    assert_eq!(r["result"]["lifted"], true, "{r}");
    let r = owner.login("1002", "pw1002", Some("2002"));
    assert_eq!(r["result"]["agent"], "1002", "{r}");
}

#[test]
fn p13_3_unknown_and_known_users_are_refused_alike() {
    let center = Center::start(|c| {
        c.login.free_failures = 2;
        c.login.backoff_base = Duration::from_secs(60);
    });
    // (The address limit is the default, 20: only the user names' limits act here.)
    let mut seen = Vec::new();
    for (n, user) in ["1002", "nobody"].iter().enumerate() {
        let mut c = center.tcp_from([127, 0, 0, 2 + n as u8]);
        let mut answers = Vec::new();
        for _ in 0..4 {
            let r = c.login(user, "guess", Some("2002"));
            answers.push((r["error"]["code"].clone(), r["error"]["message"].clone()));
        }
        seen.push(answers);
    }
    assert_eq!(seen[0], seen[1], "a known and an unknown user get the same answers, in the same order");
    assert_eq!(seen[0][0].0, "invalid_password");
    assert_eq!(seen[0][3].0, "login_backoff", "{:?}", seen[0]);
}

#[test]
fn p13_3_websocket_upgrades_check_origin_and_bad_requests_count_against_the_address() {
    let center = Center::start(|c| {
        c.login.address_free_failures = 5;
        c.login.backoff_base = Duration::from_secs(60);
    });
    let http = center.http_addr();
    let ws = |origin: Option<&str>| {
        let stream = connect_from([127, 0, 0, 2], http);
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut req =
            tungstenite::ClientRequestBuilder::new(format!("ws://{http}/cti").parse().expect("uri"));
        if let Some(o) = origin {
            req = req.with_header("Origin", o);
        }
        tungstenite::client(req, stream).map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(ws(None).is_ok(), "no Origin: not a browser");
    assert!(ws(Some(&format!("http://{http}"))).is_ok(), "the page's own origin");
    for _ in 0..6 {
        let e = ws(Some("http://evil.example")).expect_err("another site's page");
        assert!(e.contains("403"), "{e}");
    }
    // Six refused upgrades from 127.0.0.2: its Logins are held back, others' are not.
    let mut c = center.tcp_from([127, 0, 0, 2]);
    let r = c.login("1001", "pw1001", Some("2001"));
    assert_eq!(r["error"]["code"], "login_backoff", "{r}");
    let mut c = center.tcp_from([127, 0, 0, 3]);
    let r = c.login("1001", "pw1001", Some("2001"));
    assert_eq!(r["result"]["agent"], "1001", "{r}");
}

#[test]
fn p13_2_the_limits_are_read_from_link_and_bad_values_say_where() {
    let hash = link::auth::hash_password("pw1002").expect("hash");
    let engine = Config::parse(&config_text(&hash), "t.toml").expect("engine config");
    let text = r#"
[link]
max_connections = 200
max_connections_per_address = 10
head_timeout_s = 5
max_head = 8192
login_workers = 2
login_queue = 32
login_queue_per_address = 1
login_free_failures = 3
login_free_failures_per_address = 30
login_backoff_max_s = 60
login_lockout_failures = 0
login_lockout_s = 0
allowed_origins = ["https://cc.example.com"]
"#;
    let c = LinkConfig::parse(text, "site.toml", &engine).expect("valid [link]");
    assert_eq!((c.max_connections, c.max_connections_per_address, c.max_head), (200, 10, 8192));
    assert_eq!(c.head_timeout, Duration::from_secs(5));
    assert_eq!((c.login_workers, c.login_queue, c.login_queue_per_address), (2, 32, 1));
    assert_eq!((c.login.free_failures, c.login.address_free_failures), (3, 30));
    assert_eq!(c.login.backoff_max, Duration::from_secs(60));
    assert_eq!((c.login.lockout_failures, c.login.lockout), (0, None));
    assert_eq!(c.allowed_origins, vec!["https://cc.example.com".to_string()]);

    let bad = "[link]\nmax_connections = 0\nallowed_origins = [\"cc.example.com/x\"]\n";
    let problems = LinkConfig::parse(bad, "site.toml", &engine).expect_err("bad values");
    let text: Vec<String> =
        problems.iter().map(|p| format!("{}:{}:{} {}", p.origin, p.line, p.column, p.message)).collect();
    assert!(text.iter().any(|p| p.starts_with("site.toml:2:") && p.contains("max_connections")), "{text:?}");
    assert!(text.iter().any(|p| p.starts_with("site.toml:3:") && p.contains("bad origin")), "{text:?}");
}
