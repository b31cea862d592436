//! What an abusive client costs the others (issue 13, points 2 and 3): a measuring
//! program, not a criterion bench (each figure is one scenario run for a few seconds).
//!
//!     cargo bench -p hotline-cti --bench link_abuse
//!
//! The link server runs on loopback with a real engine. A good client, logged in and
//! monitoring itself, sends Pings back to back and is offered a call now and then; its
//! round trips and the call's `Delivered` delay are measured while an abusive client
//! does one thing at a time. Then the password checks: Logins per second, and a real
//! user's Login time during a flood of wrong Logins from many addresses (loopback
//! addresses 127.0.x.y stand for other machines). Figures in docs/protocol.md.
#![allow(unsafe_code)] // bind() before connect(), for the source address

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use hotline_cti::link::{self, LinkConfig, LinkHandle, LinkMsg, NoHistory};
use hotline_cti::runtime::{run, RealClock};
use hotline_cti::{Config, Engine, Input};
use hotline_drivers::{CardEvent, ChannelId, EventKind};
use serde_json::{json, Value};

const CONFIG: &str = r#"
[[station]]
port = "1/fxs/1"
extension = "2001"

[[station]]
port = "1/fxs/2"
extension = "2002"

[[queue]]
name = "sales"
ring_timeout = 600

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[agent]]
id = "1001"
name = "Li Wei"
password = "pw1001"
queues = { sales = 5 }

[[agent]]
id = "1002"
name = "Zhang Min"
password_hash = "HASH"
queues = { sales = 5 }

[[supervisor]]
id = "9001"
name = "Chen Jing"
password_hash = "HASH"
"#;

struct Center {
    link: LinkHandle,
    engine: Sender<Input>,
}

impl Drop for Center {
    fn drop(&mut self) {
        self.link.shutdown();
    }
}

impl Center {
    fn start(tune: impl FnOnce(&mut LinkConfig)) -> Center {
        let hash = link::auth::hash_password("secret").expect("hash");
        let cfg = Config::parse(&CONFIG.replace("HASH", &hash), "bench.toml").expect("valid config");
        let mut lcfg = LinkConfig::new(&cfg);
        lcfg.tcp = Some("127.0.0.1:0".parse().expect("addr"));
        lcfg.http = Some("127.0.0.1:0".parse().expect("addr"));
        tune(&mut lcfg);
        let (in_tx, in_rx) = crossbeam_channel::bounded::<Input>(1024);
        let (out_tx, out_rx) = crossbeam_channel::bounded(1024);
        let link = link::spawn(lcfg, in_tx.clone(), Arc::new(NoHistory)).expect("link starts");
        std::thread::spawn(move || run(Engine::new(cfg), &RealClock::new(), &in_rx, &out_tx));
        let handle = link.clone();
        std::thread::spawn(move || {
            for output in out_rx {
                handle.send(LinkMsg::Output { at_unix_ms: link::now_unix_ms(), output });
            }
        });
        Center { link, engine: in_tx }
    }

    fn tcp(&self) -> SocketAddr {
        self.link.addrs().tcp.expect("tcp")
    }

    fn http(&self) -> SocketAddr {
        self.link.addrs().http.expect("http")
    }
}

fn connect_from(src: [u8; 4], dst: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(dst) = dst else { panic!("IPv4 listener expected") };
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip.octets()) },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, owned by the TcpStream at once; sockaddr_in values of the
    // size passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(Ipv4Addr::from(src), 0);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sockaddr(*dst.ip(), dst.port());
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next: u32,
}

impl Client {
    fn new(s: TcpStream) -> Client {
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let _ = s.set_nodelay(true);
        Client { reader: BufReader::new(s.try_clone().expect("clone")), writer: s, next: 0 }
    }

    fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => serde_json::from_str(&line).ok(),
        }
    }

    /// Send a request; its reply (other messages are passed to `other`).
    fn request(&mut self, mut req: Value, mut other: impl FnMut(&Value)) -> Option<Value> {
        self.next += 1;
        req["invoke"] = json!(self.next);
        self.writer.write_all(format!("{req}\n").as_bytes()).ok()?;
        loop {
            let v = self.recv()?;
            if v["invoke"] == json!(self.next) {
                return Some(v);
            }
            other(&v);
        }
    }
}

#[derive(Default)]
struct Stats(Vec<Duration>);

impl Stats {
    fn line(&mut self) -> String {
        let v = &mut self.0;
        if v.is_empty() {
            return "none".into();
        }
        v.sort();
        let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
        format!(
            "n={} median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            v.len(),
            ms(q(0.5)),
            ms(q(0.99)),
            ms(v[v.len() - 1])
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The good client, for `secs` seconds: Pings back to back, and a call offered every
/// 500 ms (its `Delivered` delay measured). Returns (ping round trips, event delays).
fn good_client(center: &Center, secs: f64) -> (Stats, Stats) {
    let mut c = Client::new(connect_from([127, 0, 0, 1], center.tcp()).expect("connect"));
    let r = c.request(json!({"service":"Login","user":"1001","password":"pw1001","station":"2001"}), |_| {});
    assert!(r.is_some_and(|r| r["result"].is_object()), "the good client logs in");
    c.request(json!({"service":"Monitor","target":{"agent":"1001"}}), |_| {}).expect("monitor");
    let (mut pings, mut events) = (Stats::default(), Stats::default());
    let start = Instant::now();
    let mut offered: Option<Instant> = None;
    let mut next_call = start;
    let mut slot = 1u8;
    while start.elapsed().as_secs_f64() < secs {
        if offered.is_none() && Instant::now() >= next_call {
            slot = slot % 30 + 1;
            let kind = EventKind::Offered {
                ch: ChannelId::e1(1, 1, slot),
                ani: Some("13800138000".into()),
                dnis: "4008001000".into(),
                category: Default::default(),
            };
            let now = hotline_drivers::Instant::ZERO;
            center.engine.send(Input::Card(CardEvent { time: now, kind })).expect("engine");
            offered = Some(Instant::now());
        }
        // 40 requests a second: within the default rate (50/s). While a call is on its
        // way, back to back (a few), so its Delivered is seen when it comes.
        if offered.is_none() {
            std::thread::sleep(Duration::from_millis(25));
        }
        let t = Instant::now();
        let mut delivered = None;
        let r = c.request(json!({"service":"Ping"}), |v| {
            if v["event"] == "Delivered" {
                delivered = Some(Instant::now());
            }
        });
        if r.is_none() {
            println!("    the good client was disconnected!");
            break;
        }
        pings.0.push(t.elapsed());
        if let (Some(at), Some(o)) = (delivered, offered) {
            events.0.push(at - o);
            offered = None;
            // The caller hangs up, so the agent is free for the next call.
            next_call = Instant::now() + Duration::from_millis(500);
            let kind = EventKind::Released {
                ch: ChannelId::e1(1, 1, slot),
                cause: hotline_drivers::Cause::NORMAL_CLEARING,
                by: hotline_drivers::event::Side::Remote,
            };
            let now = hotline_drivers::Instant::ZERO;
            let _ = center.engine.send(Input::Card(CardEvent { time: now, kind }));
        }
    }
    (pings, events)
}

fn report(name: &str, (mut pings, mut events): (Stats, Stats)) {
    println!("  {name}");
    println!("    good client's Ping round trip: {}", pings.line());
    println!("    good client's Delivered delay: {}", events.line());
}

fn main() {
    println!("link_abuse: what an abusive client costs a good one (loopback, one good client)");
    {
        let center = Center::start(|_| {});
        report("nothing else going on", good_client(&center, 3.0));
    }

    // 1. A 100 MB request head, as fast as loopback takes it.
    {
        let center = Center::start(|_| {});
        let http = center.http();
        let attacker = std::thread::spawn(move || {
            let mut s = TcpStream::connect(http).expect("connect");
            let chunk = vec![b'A'; 64 * 1024];
            let t = Instant::now();
            let mut sent = 0usize;
            let _ = s.write_all(b"GET / HTTP/1.1\r\nX: ");
            while sent < 100 << 20 {
                match s.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            (sent, t.elapsed())
        });
        let r = good_client(&center, 3.0);
        let (sent, took) = attacker.join().expect("attacker");
        report("a 100 MB HTTP request head", r);
        println!(
            "    the attacker got {} KiB into the kernel before the server reset it, {:.1} ms after it began",
            sent / 1024,
            ms(took)
        );
    }

    // 2. Slow heads and lines: 60 HTTP heads and 60 TCP lines, a byte every 100 ms.
    {
        let center = Center::start(|c| c.head_timeout = Duration::from_secs(2));
        let (http, tcp) = (center.http(), center.tcp());
        let cut = Arc::new(AtomicU64::new(0));
        let mut slow = Vec::new();
        for n in 0..120u8 {
            let cut = cut.clone();
            slow.push(std::thread::spawn(move || {
                let to = if n % 2 == 0 { http } else { tcp };
                let Ok(mut s) = connect_from([127, 0, 2, n / 2], to) else { return };
                s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
                let t = Instant::now();
                let mut buf = [0u8; 512];
                while t.elapsed() < Duration::from_secs(5) {
                    if s.write_all(b"x").is_err() {
                        break;
                    }
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                }
                if t.elapsed() < Duration::from_secs(5) {
                    cut.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let r = good_client(&center, 4.0);
        for s in slow {
            let _ = s.join();
        }
        report("120 clients sending a head or line a byte every 100 ms (head_timeout_s = 2)", r);
        println!("    {} of 120 were cut off before 5 s", cut.load(Ordering::Relaxed));
    }

    // 3. Garbage lines as fast as possible from 4 connections.
    {
        let center = Center::start(|_| {});
        let tcp = center.tcp();
        let mut floods = Vec::new();
        for n in 0..4u8 {
            floods.push(std::thread::spawn(move || {
                let mut s = connect_from([127, 0, 3, n], tcp).expect("connect");
                let junk = "not json\n".repeat(8000);
                let t = Instant::now();
                let mut sent = 0usize;
                while t.elapsed() < Duration::from_secs(3) {
                    match s.write(junk.as_bytes()) {
                        Ok(n) => sent += n,
                        Err(_) => break,
                    }
                }
                (sent, t.elapsed())
            }));
        }
        let r = good_client(&center, 3.0);
        report("4 clients sending malformed lines as fast as they can", r);
        for f in floods {
            let (sent, took) = f.join().expect("flood");
            println!(
                "    a flooder sent {} KiB before it was disconnected after {:.1} ms",
                sent / 1024,
                ms(took)
            );
        }
    }

    // 4. Password checks per second (wrong passwords from 16 addresses, no backoff).
    for workers in [1usize, 2] {
        let center = Center::start(|c| {
            c.login_workers = workers;
            c.login.free_failures = u32::MAX;
            c.login.address_free_failures = u32::MAX;
            c.login.lockout_failures = 0;
        });
        let tcp = center.tcp();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut flood = Vec::new();
        for n in 0..16u8 {
            let (stop, done) = (stop.clone(), done.clone());
            flood.push(std::thread::spawn(move || {
                let mut c = Client::new(connect_from([127, 0, 4, n], tcp).expect("connect"));
                while !stop.load(Ordering::Relaxed) {
                    let r = c.request(json!({"service":"Login","user":"1002","password":"guess"}), |_| {});
                    match r {
                        Some(r) if r["error"]["code"] == "invalid_password" => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(_) => std::thread::sleep(Duration::from_millis(5)),
                        None => break,
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(500));
        let (d0, t0) = (done.load(Ordering::Relaxed), Instant::now());
        std::thread::sleep(Duration::from_secs(3));
        let rate = (done.load(Ordering::Relaxed) - d0) as f64 / t0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for f in flood {
            let _ = f.join();
        }
        println!("  password checks: {rate:.0} Logins/s with login_workers = {workers}");
    }

    // 5. A real user's Login during a flood of wrong Logins from 64 addresses (the
    //    defaults: backoff on), and the good client's figures meanwhile.
    for workers in [1usize, 2] {
        let center = Center::start(|c| c.login_workers = workers);
        let tcp = center.tcp();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut flood = Vec::new();
        for n in 0..64u8 {
            let (stop, sent) = (stop.clone(), sent.clone());
            flood.push(std::thread::spawn(move || {
                let Ok(s) = connect_from([127, 0, 5, n], tcp) else { return };
                let mut c = Client::new(s);
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let user = format!("guess{}", i % 7);
                    let r = c.request(json!({"service":"Login","user":user,"password":"x"}), |_| {});
                    sent.fetch_add(1, Ordering::Relaxed);
                    match r {
                        Some(r) if r["error"]["code"] == "rate_limited" => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        Some(_) => {}
                        None => {
                            let Ok(s) = connect_from([127, 0, 5, n], tcp) else { return };
                            c = Client::new(s);
                        }
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(500));
        let real = std::thread::spawn(move || {
            let mut times = Stats::default();
            let mut failures = 0;
            for _ in 0..10 {
                let mut c = Client::new(connect_from([127, 0, 0, 9], tcp).expect("connect"));
                let t = Instant::now();
                let r = c.request(json!({"service":"Login","user":"9001","password":"secret"}), |_| {});
                if r.is_some_and(|r| r["result"].is_object()) {
                    times.0.push(t.elapsed());
                } else {
                    failures += 1;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (times, failures)
        });
        let r = good_client(&center, 3.0);
        let (mut times, failures) = real.join().expect("real user");
        stop.store(true, Ordering::Relaxed);
        for f in flood {
            let _ = f.join();
        }
        report(&format!("a flood of wrong Logins from 64 addresses (login_workers = {workers})"), r);
        println!("    the flood sent {} Logins", sent.load(Ordering::Relaxed));
        println!("    a real user's Login (hashed password, its own address): {}", times.line());
        println!("    real Logins that failed: {failures}");
    }
    {
        let center = Center::start(|_| {});
        let tcp = center.tcp();
        let mut times = Stats::default();
        for _ in 0..10 {
            let mut c = Client::new(connect_from([127, 0, 0, 9], tcp).expect("connect"));
            let t = Instant::now();
            let r = c.request(json!({"service":"Login","user":"9001","password":"secret"}), |_| {});
            if r.is_some_and(|r| r["result"].is_object()) {
                times.0.push(t.elapsed());
            }
        }
        println!("  without a flood, a real user's Login: {}", times.line());
    }
}
