//! Reports checked against a simulated hour whose answers are known: the engine and
//! the card simulator run in virtual time, every engine output goes through the
//! `CdrBuilder` into a store, and the report figures are compared with counts taken
//! independently from the card's side (offers, rings, connects, releases).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded};
use hotline_cti::cdr::CdrBuilder;
use hotline_cti::coupled::{self, Seen};
use hotline_cti::csta::{AgentRequest, Service};
use hotline_cti::report::{self, By, Params};
use hotline_cti::store::{CallFilter, Store, StoreOp, StoreWriter};
use hotline_cti::{Config, Engine, Input, Output};
use hotline_drivers::event::Side;
use hotline_drivers::sim::{CallerScript, CallerStep, InboundCall, SimCard, Spread, Trunk};
use hotline_drivers::{ChannelId, Command, EventKind, Instant};

const INSTALLATION: &str = r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[[card.span]]
span = 2
signalling = "isdn_pri"

[card.fxs]
ports = "1-6"

[simulator]
media = "signalling"
seed = 7

[[simulator.station]]
ports = "1-3"
answer_after_s = 2
hang_up_after_release_s = 0

# The support agent's phone: nobody answers it.
[[simulator.station]]
ports = "5"

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/2/31"]

[[station]]
port = "1/fxs/1-6"
extension = "2001"

[[queue]]
name = "sales"
ring_timeout = 15
wrap_up = 5

[[queue]]
name = "support"
ring_timeout = 10
max_misses = 1000
wrap_up = 0

[[queue]]
name = "closed"
no_agents_wait = 30
no_agents_action = "hangup"

[[access_number]]
dnis = "100"
target = "queue:sales"

[[access_number]]
dnis = "200"
target = "queue:support"

[[access_number]]
dnis = "300"
target = "queue:closed"

[[access_number]]
dnis = "400"
target = "ivr:menu"

[[agent]]
id = "1001"
name = "A"
queues = { sales = 5 }

[[agent]]
id = "1002"
name = "B"
queues = { sales = 5 }

[[agent]]
id = "1003"
name = "C"
queues = { sales = 5 }

[[agent]]
id = "1005"
name = "E"
queues = { support = 5 }

[[agent]]
id = "1006"
name = "F"
queues = { closed = 5 }

[[agent_group]]
name = "front"
agents = ["1001", "1002"]
"#;

const OFFSET: i32 = 8 * 3600;

/// One caller as the card saw them.
#[derive(Clone, Debug)]
struct Seen1 {
    dnis: String,
    offered: Instant,
    rang: bool,
    connected: Option<(Instant, ChannelId)>,
    released: Option<(Instant, Side)>,
}

#[derive(Default)]
struct Tally {
    by_trunk: HashMap<ChannelId, usize>,
    ani_of: HashMap<String, usize>,
    callers: Vec<Seen1>,
    rings_at: HashMap<ChannelId, u64>,
    anis: HashMap<ChannelId, String>,
}

impl Tally {
    fn card(&mut self, now: Instant, kind: &EventKind) {
        match kind {
            EventKind::Offered { ch, ani, dnis, .. } => {
                let i = self.callers.len();
                self.callers.push(Seen1 {
                    dnis: dnis.clone(),
                    offered: now,
                    rang: false,
                    connected: None,
                    released: None,
                });
                self.by_trunk.insert(*ch, i);
                if let Some(a) = ani {
                    self.ani_of.insert(a.clone(), i);
                    self.anis.insert(*ch, a.clone());
                }
            }
            EventKind::Released { ch, by, .. } if ch.is_trunk() => {
                if let Some(i) = self.by_trunk.remove(ch) {
                    self.callers[i].released = Some((now, *by));
                }
            }
            _ => {}
        }
    }

    fn command(&mut self, now: Instant, c: &Command) {
        match c {
            Command::RingStation { ch, caller_id } => {
                *self.rings_at.entry(*ch).or_default() += 1;
                let n = caller_id.as_ref().and_then(|c| c.number.clone()).unwrap_or_default();
                if let Some(&i) = self.ani_of.get(&n) {
                    self.callers[i].rang = true;
                }
            }
            Command::Connect { a, b } => {
                let (trunk, station) = if a.is_trunk() { (*a, *b) } else { (*b, *a) };
                if let Some(&i) = self.by_trunk.get(&trunk) {
                    if self.callers[i].connected.is_none() {
                        self.callers[i].connected = Some((now, station));
                    }
                }
            }
            _ => {}
        }
    }
}

struct Day {
    store: PathBuf,
    tally: Tally,
    wall_base: i64,
    end: Instant,
}

/// xorshift64*, seeded.
struct Rng(u64);
impl Rng {
    fn exp(&mut self, mean: f64) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let u = ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -u.ln() * mean
    }
}

fn temp_store(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("hotline-{name}-{}.db", std::process::id()));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
    }
    p
}

/// Run the simulated hour and store what the builder made of it.
fn simulate(name: &str) -> Day {
    let cards = hotline_drivers::config::parse(INSTALLATION, "sim.toml").expect("card tables");
    let cfg = Config::parse(INSTALLATION, "sim.toml").expect("engine tables");
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).expect("simulator");
    let mut engine = Engine::new(cfg.clone());
    let wall_base = report::parse_local("2026-11-02 09:00", OFFSET).unwrap();
    let mut cdr = CdrBuilder::new(wall_base).with_config(&cfg);
    let mut tally = Tally::default();
    let mut ops: Vec<StoreOp> = Vec::new();

    let seen = |t: Instant, s: Seen<'_>, cdr: &mut CdrBuilder, tally: &mut Tally| match s {
        Seen::Card(ev) => {
            tally.card(t, &ev.kind);
            cdr.handle_card(t, ev);
        }
        Seen::Output(o) => {
            if let Output::Command(c) = o {
                tally.command(t, c);
            }
            cdr.handle_output(t, o);
        }
        Seen::Refused { command, error } => panic!("the card refused {command:?}: {error}"),
    };
    for (agent, ext) in [("1001", "2001"), ("1002", "2002"), ("1003", "2003"), ("1005", "2005")] {
        let service = Service::SetAgentState {
            agent: agent.into(),
            request: AgentRequest::LogIn { station: Some(ext.into()), password: None },
        };
        engine.handle(Instant::ZERO, Input::Request { client: 1, invoke: 1, service });
    }
    coupled::carry(&mut engine, &mut sim, Instant::ZERO, &mut |t, s| seen(t, s, &mut cdr, &mut tally));

    // Arrivals: sales at random (60 an hour, 2-minute calls, a minute's patience on
    // average); support, closed and IVR callers on fixed schedules that make their
    // fate certain.
    let mut arrivals: Vec<(Instant, &str, CallerScript)> = Vec::new();
    let mut rng = Rng(42);
    let mut t = 0.0;
    loop {
        t += rng.exp(60.0);
        if t > 3600.0 {
            break;
        }
        let patience = Spread::fixed(Duration::from_secs_f64(rng.exp(60.0)));
        let talk = Spread::fixed(Duration::from_secs_f64(rng.exp(120.0)));
        let steps =
            vec![CallerStep::WaitForAgent(Some(patience)), CallerStep::Talk(talk), CallerStep::HangUp];
        arrivals.push((
            Instant::from_millis((t * 1000.0) as u64),
            "100",
            CallerScript::new(Spread::secs(3600.0), steps),
        ));
    }
    let waiter = |secs: f64| {
        let steps = vec![
            CallerStep::WaitForAgent(Some(Spread::fixed(Duration::from_secs_f64(secs)))),
            CallerStep::HangUp,
        ];
        CallerScript::new(Spread::secs(3600.0), steps)
    };
    for k in 0..8u64 {
        // Support: the only agent never answers; each caller gives up after 25 s, long
        // after the first ring.
        arrivals.push((Instant::from_secs(100 + k * 400), "200", waiter(25.0)));
        // Closed: nobody logged in; half give up at 12 s, half are cut at 30 s.
        let patience = if k % 2 == 0 { 12.0 } else { 300.0 };
        arrivals.push((Instant::from_secs(130 + k * 400), "300", waiter(patience)));
        // IVR: nothing takes the call back; the caller hangs up after 20 + k s.
        arrivals.push((Instant::from_secs(160 + k * 400), "400", waiter(20.0 + k as f64)));
    }
    arrivals.sort_by_key(|a| a.0);

    let mut now = Instant::ZERO;
    for (i, (at, dnis, script)) in arrivals.into_iter().enumerate() {
        coupled::run_until(&mut engine, &mut sim, &rx, &mut now, at, &mut |t, s| {
            seen(t, s, &mut cdr, &mut tally)
        })
        .expect("card");
        while let Some(op) = cdr.poll() {
            ops.push(op);
        }
        let ani = format!("0105{i:07}");
        sim.schedule_inbound(now, InboundCall::new(Trunk::Span(1 + (i % 2) as u8), Some(&ani), dnis, script));
    }
    let mut next = Some(now);
    while let Some(t) = next.filter(|_| engine.call_count() > 0) {
        next = coupled::run_until(&mut engine, &mut sim, &rx, &mut now, t, &mut |t, s| {
            seen(t, s, &mut cdr, &mut tally)
        })
        .expect("card");
    }
    // Let the last wrap-up end.
    let end = now + Duration::from_secs(10);
    coupled::run_until(&mut engine, &mut sim, &rx, &mut now, end, &mut |t, s| {
        seen(t, s, &mut cdr, &mut tally)
    })
    .expect("card");
    while let Some(op) = cdr.poll() {
        ops.push(op);
    }
    assert_eq!(cdr.open_calls(), 0, "every call closed");
    assert_eq!(sim.stats().inbound_lost, 0);

    let path = temp_store(name);
    let (tx, handle, _) = StoreWriter::spawn(&path).expect("store");
    for op in ops {
        tx.send(op).expect("writer alive");
    }
    let (done_tx, done_rx) = bounded(1);
    tx.send(StoreOp::Flush(done_tx)).unwrap();
    done_rx.recv_timeout(Duration::from_secs(30)).expect("flushed");
    drop(tx);
    let stats = handle.join().expect("writer");
    assert_eq!(stats.failed_batches, 0);
    Day { store: path, tally, wall_base, end: now }
}

fn ms(t: Instant, base: i64) -> i64 {
    base + t.as_millis() as i64
}

fn params(day: &Day) -> Params {
    let mut p = Params::new(day.wall_base, day.wall_base + 3 * 3_600_000);
    p.utc_offset_secs = OFFSET;
    p.now_ms = ms(day.end, day.wall_base);
    p
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.002
}

#[test]
fn the_queue_report_agrees_with_what_the_callers_went_through() {
    let day = simulate("queue");
    // HOTLINE_KEEP_STORE=FILE keeps a copy of the simulated day's store (to try the CLI on).
    if let Ok(keep) = std::env::var("HOTLINE_KEEP_STORE") {
        let _ = std::fs::copy(&day.store, keep);
    }
    let store = Store::open(&day.store).unwrap();
    let p = params(&day);
    let rows = report::queue_report(&store, &p).unwrap();
    let row = |q: &str| {
        rows.iter().find(|r| r.queue == q).cloned().unwrap_or_else(|| panic!("no row for {q}: {rows:#?}"))
    };

    // Sales, counted from the card's side.
    let sales: Vec<&Seen1> = day.tally.callers.iter().filter(|c| c.dnis == "100").collect();
    let answered: Vec<&Seen1> = sales.iter().copied().filter(|c| c.connected.is_some()).collect();
    let waits: Vec<f64> =
        answered.iter().map(|c| (c.connected.unwrap().0 - c.offered).as_secs_f64()).collect();
    let longest = sales
        .iter()
        .map(|c| (c.connected.map(|x| x.0).or(c.released.map(|x| x.0)).unwrap() - c.offered).as_secs_f64())
        .fold(0.0, f64::max);
    let talk: Vec<f64> =
        answered.iter().map(|c| (c.released.unwrap().0 - c.connected.unwrap().0).as_secs_f64()).collect();
    let s = row("sales");
    assert!(
        sales.len() > 40 && answered.len() > 20 && answered.len() < sales.len(),
        "a busy hour: {}",
        sales.len()
    );
    assert_eq!(s.offered, sales.len() as u64);
    assert_eq!(s.answered, answered.len() as u64);
    assert_eq!(s.abandoned, (sales.len() - answered.len()) as u64);
    assert_eq!(s.timed_out, 0);
    assert!(close(s.avg_wait_s, waits.iter().sum::<f64>() / waits.len() as f64), "{s:?}");
    assert!(close(s.longest_wait_s, longest), "{s:?} vs {longest}");
    assert!(close(s.avg_talk_s, talk.iter().sum::<f64>() / talk.len() as f64), "{s:?}");
    let within = waits.iter().filter(|&&w| w <= 20.0).count();
    assert!(close(s.service_level_pct, 100.0 * within as f64 / sales.len() as f64), "{s:?}");
    assert!(close(s.abandon_rate_pct, 100.0 * (sales.len() - answered.len()) as f64 / sales.len() as f64));
    // A sum of per-call times, each read to the millisecond: allow each its rounding.
    assert!((s.talk_s - talk.iter().sum::<f64>()).abs() < 0.002 * talk.len() as f64, "{s:?}");
    assert_eq!(s.timeout_rate_pct, 0.0);

    // Support: nobody answers, every caller gives up.
    let support = row("support");
    assert_eq!((support.offered, support.answered, support.abandoned, support.timed_out), (8, 0, 8, 0));
    // Closed: half gave up at 12 s, half were cut by the no-agents limit at 30 s.
    let closed = row("closed");
    assert_eq!((closed.offered, closed.answered, closed.abandoned, closed.timed_out), (8, 0, 4, 4));
    assert!(close(closed.longest_wait_s, 30.0), "{closed:?}");
    assert!(close(closed.timeout_rate_pct, 50.0), "{closed:?}");

    // By hour: the periods add up to the whole.
    let by_hour = report::queue_report(&store, &Params { by: Some(By::Hour), ..p.clone() }).unwrap();
    let offered: u64 = by_hour.iter().filter(|r| r.queue == "sales").map(|r| r.offered).sum();
    assert_eq!(offered, s.offered);
    assert!(by_hour.iter().any(|r| r.period == "2026-11-02 09:00:00"));
    std::fs::remove_file(&day.store).ok();
}

#[test]
fn missed_calls_fall_into_their_four_kinds() {
    let day = simulate("missed");
    let store = Store::open(&day.store).unwrap();
    let p = params(&day);
    let missed = report::missed_calls(&store, &p).unwrap();
    let count = |k: &str| missed.iter().filter(|m| m.kind == k).count();
    let sales_lost: Vec<&Seen1> =
        day.tally.callers.iter().filter(|c| c.dnis == "100" && c.connected.is_none()).collect();
    let rang = sales_lost.iter().filter(|c| c.rang).count();
    assert_eq!(count("in_ivr"), 8, "every IVR caller hung up there");
    assert_eq!(count("no_agent"), 8, "the closed queue");
    assert_eq!(count("not_answered"), 8 + rang, "support, and sales callers who heard a phone ring");
    assert_eq!(count("abandoned"), sales_lost.len() - rang);
    assert!(missed
        .iter()
        .filter(|m| m.kind == "not_answered" && m.queue == "support")
        .all(|m| m.agents_rung == "1005"));
    let counts = report::missed_counts(&store, &p).unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].total as usize, missed.len());

    // Every answered sales call in the detail list, with the agent who took it.
    let calls = store.calls(&CallFilter::default()).unwrap();
    assert_eq!(calls.len(), day.tally.callers.len());
    assert!(calls.iter().all(|c| c.state == "closed"));
    let answered = calls.iter().filter(|c| c.outcome.as_deref() == Some("answered")).count();
    assert_eq!(answered, day.tally.callers.iter().filter(|c| c.connected.is_some()).count());
    for c in &calls {
        let seen = &day.tally.callers[day.tally.ani_of[c.caller.as_ref().unwrap()]];
        let side = if seen.released.unwrap().1 == Side::Remote { "caller" } else { "system" };
        if c.answered_ms.is_none() {
            assert_eq!(c.released_side.as_deref(), Some(side), "{c:?}");
        }
    }
    std::fs::remove_file(&day.store).ok();
}

#[test]
fn agent_and_ivr_reports_add_up() {
    let day = simulate("agent");
    let store = Store::open(&day.store).unwrap();
    let p = params(&day);
    let agents = report::agent_report(&store, &p).unwrap();
    let run_s = (day.end - Instant::ZERO).as_secs_f64();
    let stations = [("1001", 1u16), ("1002", 2), ("1003", 3)];
    for (id, port) in stations {
        let a = agents.iter().find(|a| a.agent == id).unwrap();
        let mine: Vec<&Seen1> = day
            .tally
            .callers
            .iter()
            .filter(|c| c.connected.is_some_and(|(_, st)| st == ChannelId::fxs(1, port)))
            .collect();
        assert_eq!(a.handled, mine.len() as u64, "{a:?}");
        let talk: f64 =
            mine.iter().map(|c| (c.released.unwrap().0 - c.connected.unwrap().0).as_secs_f64()).sum();
        assert!((a.talk_s - talk).abs() < 0.01 * mine.len() as f64 + 0.01, "{a:?} vs {talk}");
        assert!((a.logged_in_s - run_s).abs() < 0.01, "logged in all along: {a:?} vs {run_s}");
        let parts = a.ready_s + a.ringing_s + a.busy_s + a.wrap_up_s + a.not_ready_s;
        assert!((parts - a.logged_in_s).abs() < 0.01, "{a:?}");
        assert!(a.wrap_up_s >= 5.0 * a.handled as f64 - 0.01, "5 s wrap-up after each call: {a:?}");
    }
    let e = agents.iter().find(|a| a.agent == "1005").unwrap();
    assert_eq!(e.handled, 0);
    assert_eq!(e.offered, day.tally.rings_at[&ChannelId::fxs(1, 5)]);
    assert!(e.not_answered >= 8, "{e:?}");

    let mut pg = p.clone();
    pg.groups = vec![("front".into(), vec!["1001".into(), "1002".into()])];
    let g = report::agent_group_report(&store, &pg).unwrap();
    let sum: u64 = agents.iter().filter(|a| a.agent == "1001" || a.agent == "1002").map(|a| a.handled).sum();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].handled, sum);

    let ivr = report::ivr_report(&store, &p).unwrap();
    assert_eq!(ivr.len(), 1);
    assert_eq!((ivr[0].entries, ivr[0].caller_hung_up), (8, 8));
    let avg = day
        .tally
        .callers
        .iter()
        .filter(|c| c.dnis == "400")
        .map(|c| (c.released.unwrap().0 - c.offered).as_secs_f64())
        .sum::<f64>()
        / 8.0;
    assert!(close(ivr[0].avg_time_s, avg), "{:?} vs {avg}", ivr[0]);

    // The printable forms carry the same rows.
    let t = report::run(&store, report::Kind::Queue, &p).unwrap();
    assert_eq!(t.rows.len(), 3);
    assert!(t.to_csv().starts_with("period,queue,offered,answered,abandoned,timed_out"));
    assert!(t.to_csv().contains(",service_level_pct,abandon_rate_pct,timeout_rate_pct"));
    // Tables for people: headings in words, durations m:ss, rates as percentages.
    let text = t.to_text();
    let head = text.lines().next().unwrap();
    assert!(
        head.contains("Average wait") && head.contains("Service level") && head.contains("Timeout rate"),
        "{head}"
    );
    let sales_line = text.lines().find(|l| l.contains("sales")).unwrap();
    let queues = report::queue_report(&store, &p).unwrap();
    let sales = queues.iter().find(|r| r.queue == "sales").unwrap();
    let sl = format!("{:.1}%", sales.service_level_pct);
    assert!(sales_line.contains(&sl), "{sales_line} lacks {sl}");
    let wait = report::clock_duration(sales.avg_wait_s);
    assert!(wait.contains(':') && sales_line.contains(&wait), "{sales_line} lacks {wait}");
    for cell in sales_line.split_whitespace() {
        assert!(!cell.contains('.') || cell.ends_with('%'), "a raw number of seconds in {sales_line}");
    }
    let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    std::fs::remove_file(&day.store).ok();
}
