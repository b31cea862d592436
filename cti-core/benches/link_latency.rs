//! Link latency: with 1,000 clients connected over loopback TCP and subscribed to
//! everything, the delay from a card event entering the engine thread to the matching
//! CSTA event reaching a subscribed client. Prints the median and the 99th percentile
//! (the bar: p99 under 2 ms). The probe is the last client to connect, and the server
//! writes to connections oldest first, so the figure is that of the last socket written
//! (the whole fan-out). `LINK_BENCH_CLIENTS=100` runs it with another client count.
//!
//! `LINK_BENCH_MIX=1` measures a call center's mix instead: of the clients, one in
//! twenty is a supervisor monitoring everything and the rest are agent desktops, each
//! logged in at its own station and monitoring itself; the probe is the desktop of the
//! agent the call is delivered to (the screen pop's path).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use criterion::Criterion;
use crossbeam_channel::{Receiver, Sender};
use hotline_cti::link::{self, LinkConfig, LinkHandle, LinkMsg, NoHistory};
use hotline_cti::{Config, Engine, Input};
use hotline_drivers::{CardEvent, Cause, ChannelId, EventKind, Instant};
use serde_json::Value;

const CLIENTS: usize = 1000;

fn clients() -> usize {
    std::env::var("LINK_BENCH_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(CLIENTS)
}

fn mix() -> bool {
    std::env::var("LINK_BENCH_MIX").is_ok_and(|v| v != "0")
}

/// The mix's installation: agent 1001 in `sales` (the probe), agents 1002.. in
/// `other` (logged in, never offered the bench's calls), a station each.
fn mix_config(agents: usize) -> String {
    let mut t = String::from(CONFIG);
    t = t.replace("port = \"1/fxs/1\"", &format!("port = \"1/fxs/1-{agents}\""));
    t.push_str("\n[[queue]]\nname = \"other\"\n");
    for i in 1..agents {
        t.push_str(&format!(
            "\n[[agent]]\nid = \"{}\"\nname = \"Agent {i}\"\npassword = \"agent\"\nqueues = {{ other = 5 }}\n",
            1001 + i
        ));
    }
    t
}

/// An agent desktop: logged in at its station, monitoring itself.
fn login_agent(addr: std::net::SocketAddr, i: usize) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut r = BufReader::new(s);
    let (agent, station) = (1001 + i, 2001 + i);
    let login = format!(
        "{{\"invoke\":1,\"service\":\"Login\",\"user\":\"{agent}\",\"password\":\"agent\",\"station\":\"{station}\"}}\n"
    );
    let monitor = format!("{{\"invoke\":2,\"service\":\"Monitor\",\"target\":{{\"agent\":\"{agent}\"}}}}\n");
    for (req, invoke) in [(login, "\"invoke\":1"), (monitor, "\"invoke\":2")] {
        r.get_mut().write_all(req.as_bytes()).expect("write");
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).expect("read");
            if line.contains(invoke) {
                assert!(line.contains("\"result\""), "{line}");
                break;
            }
        }
    }
    r.into_inner()
}

const CONFIG: &str = r#"
[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/15"]

[[queue]]
name = "sales"

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[station]]
port = "1/fxs/1"
extension = "2001"

[[agent]]
id = "1001"
name = "Agent"
password = "agent"
queues = { sales = 5 }

[[supervisor]]
id = "9001"
name = "Bench"
password = "bench"
"#;

/// The engine thread: stamps when each input enters it, runs the engine, hands every
/// output to the link.
fn engine_thread(
    cfg: Config,
    rx: Receiver<Input>,
    link: LinkHandle,
    entered: Arc<Mutex<Option<StdInstant>>>,
) {
    let start = StdInstant::now();
    let mut engine = Engine::new(cfg);
    for input in rx {
        if let Input::Card(_) = input {
            *entered.lock().expect("lock") = Some(StdInstant::now());
        }
        let now = Instant::from_micros(start.elapsed().as_micros() as u64);
        engine.handle(now, input);
        while let Some(output) = engine.poll_output() {
            link.send(LinkMsg::Output { at_unix_ms: 0, output });
        }
    }
}

fn login(addr: std::net::SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut r = BufReader::new(s);
    let ask = |r: &mut BufReader<TcpStream>, req: &[u8], invoke: &str| {
        r.get_mut().write_all(req).expect("write");
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).expect("read");
            if line.contains(invoke) {
                assert!(line.contains("\"result\""), "{line}");
                return;
            }
        }
    };
    ask(
        &mut r,
        b"{\"invoke\":1,\"service\":\"Login\",\"user\":\"9001\",\"password\":\"bench\"}\n",
        "\"invoke\":1",
    );
    ask(&mut r, b"{\"invoke\":2,\"service\":\"Monitor\",\"target\":\"all\"}\n", "\"invoke\":2");
    r
}

fn offer(tx: &Sender<Input>, ts: u8) {
    let kind = EventKind::Offered {
        ch: ChannelId::e1(1, 1, ts),
        ani: Some("13800138000".into()),
        dnis: "4008001000".into(),
        category: Default::default(),
    };
    tx.send(Input::Card(CardEvent { time: Instant::ZERO, kind })).expect("engine");
}

fn release(tx: &Sender<Input>, ts: u8) {
    let kind = EventKind::Released {
        ch: ChannelId::e1(1, 1, ts),
        cause: Cause::NORMAL_CLEARING,
        by: hotline_drivers::event::Side::Remote,
    };
    tx.send(Input::Card(CardEvent { time: Instant::ZERO, kind })).expect("engine");
}

/// Wait for an event (the offer's `Delivered`, the release's `CallCleared`); return
/// when it arrived.
fn wait_for(r: &mut BufReader<TcpStream>, what: &str) -> StdInstant {
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("read");
        let at = StdInstant::now();
        if std::env::var("LINK_BENCH_DEBUG").is_ok() {
            eprintln!("probe: {line:?}");
        }
        let v: Value = serde_json::from_str(&line).expect("json");
        if v["event"] == what {
            return at;
        }
    }
}

fn main() {
    let mix = mix();
    let text = if mix { mix_config(clients()) } else { CONFIG.to_string() };
    let cfg = Config::parse(&text, "bench.toml").expect("config");
    let mut lcfg = LinkConfig::new(&cfg);
    lcfg.tcp = Some("127.0.0.1:0".parse().expect("addr"));
    lcfg.http = None;
    lcfg.rate = 1e6;
    lcfg.burst = 1e6;
    // Every client comes from 127.0.0.1.
    lcfg.max_connections_per_address = lcfg.max_connections;
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let link = link::spawn(lcfg, tx.clone(), Arc::new(NoHistory)).expect("link");
    let entered = Arc::new(Mutex::new(None));
    {
        let (link, entered) = (link.clone(), entered.clone());
        std::thread::spawn(move || engine_thread(cfg, rx, link, entered));
    }
    let addr = link.addrs().tcp.expect("tcp");
    // One agent ready at a station, so each offered call is delivered to it. In the mix
    // its desktop is the probe and connects last (written last of its subscribers).
    let agent_login = || {
        let mut agent = TcpStream::connect(addr).expect("connect");
        agent.set_nodelay(true).expect("nodelay");
        agent
            .write_all(b"{\"invoke\":1,\"service\":\"Login\",\"user\":\"1001\",\"password\":\"agent\",\"station\":\"2001\"}\n")
            .expect("write");
        let mut agent = BufReader::new(agent);
        let mut line = String::new();
        agent.read_line(&mut line).expect("login reply");
        assert!(line.contains("result"), "agent login: {line}");
        agent
    };
    let _agent = (!mix).then(agent_login);

    // The other clients, drained by one thread (on readiness, like a real client would
    // wait on its socket) so none is dropped as slow and none costs CPU while idle.
    let others: Vec<TcpStream> = if mix {
        // Supervisors watching everything, one per twenty clients; agents for the rest.
        let supervisors = (clients() / 20).max(1);
        let mut v: Vec<TcpStream> = (0..supervisors).map(|_| login(addr).into_inner()).collect();
        v.extend((1..clients() - supervisors).map(|i| login_agent(addr, i)));
        v
    } else {
        (0..clients() - 1).map(|_| login(addr).into_inner()).collect()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        let mut poll = mio::Poll::new().expect("poll");
        let mut socks: Vec<mio::net::TcpStream> = Vec::new();
        for (i, s) in others.into_iter().enumerate() {
            s.set_nonblocking(true).expect("nonblocking");
            let mut s = mio::net::TcpStream::from_std(s);
            poll.registry().register(&mut s, mio::Token(i), mio::Interest::READABLE).expect("register");
            socks.push(s);
        }
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            let mut events = mio::Events::with_capacity(1024);
            while !stop.load(Ordering::Relaxed) {
                if poll.poll(&mut events, Some(Duration::from_millis(50))).is_err() {
                    continue;
                }
                for ev in events.iter() {
                    let s = &mut socks[ev.token().0];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
        })
    };
    let mut probe = if mix {
        // The desktop of the agent who gets the calls: the screen pop's path.
        let mut agent = agent_login();
        let monitor = b"{\"invoke\":2,\"service\":\"Monitor\",\"target\":{\"agent\":\"1001\"}}\n";
        agent.get_mut().write_all(monitor).expect("write");
        agent
    } else {
        login(addr)
    };
    if mix {
        println!(
            "link_latency: {} clients connected: {} supervisors monitoring everything, the rest agent desktops monitoring themselves",
            clients(),
            (clients() / 20).max(1)
        );
    } else {
        println!("link_latency: {} clients connected and monitoring everything", clients());
    }

    let samples = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut c =
        Criterion::default().configure_from_args().sample_size(20).warm_up_time(Duration::from_secs(1));
    let mut ts = 0u8;
    c.bench_function(&format!("card event to subscribed client ({} clients)", clients()), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                ts = ts % 15 + 1;
                offer(&tx, ts);
                let got = wait_for(&mut probe, "Delivered");
                let sent = entered.lock().expect("lock").take().expect("stamped");
                let d = got.saturating_duration_since(sent);
                samples.lock().expect("lock").push(d);
                total += d;
                release(&tx, ts);
                wait_for(&mut probe, "CallCleared");
            }
            total
        })
    });
    c.final_summary();
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();

    let mut s = samples.lock().expect("lock").clone();
    s.sort();
    if s.is_empty() {
        return;
    }
    let pick = |q: f64| s[((s.len() as f64 * q) as usize).min(s.len() - 1)];
    println!(
        "link_latency: {} samples, median {:.3} ms, p99 {:.3} ms (bar: p99 < 2 ms)",
        s.len(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3
    );
    link.shutdown();
}
