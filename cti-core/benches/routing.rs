//! The engine at center scale: 10,000 agents in 1,000 queues (each agent serves three
//! queues, so thirty agents per queue), all logged in on their own stations.
//!
//! - `routing_decision`: the choice of agent for a caller in a random queue, with the
//!   queue's preferences and strategy (the bar: under 10 µs at the median).
//! - `routing_decision_one_big_queue`: the same in a queue every agent serves (10,000
//!   ready agents in one queue), which shows the decision does not grow with the queue.
//! - `call_cycle`: whole calls through the engine, four inputs each (offered on a
//!   trunk, the agent's phone off hook, the caller hangs up, the phone on hook), with
//!   every output drained; throughput in inputs per second (the bar: 200,000 on one
//!   core).

use std::fmt::Write as _;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hotline_cti::csta::{AgentRequest, Service};
use hotline_cti::{Config, Engine, Input};
use hotline_drivers::event::Side;
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::{CardEvent, Cause, ChannelId, EventKind, Instant};

const AGENTS: usize = 10_000;
const QUEUES: usize = 1_000;
const SPANS: u8 = 34; // 1,020 trunk channels

fn installation() -> String {
    let mut t = String::new();
    writeln!(t, "[[trunk_group]]\nname = \"pstn\"\nchannels = [\"1/1/1-1/{SPANS}/31\"]\n").unwrap();
    writeln!(t, "[[station]]\nport = \"1/fxs/1-{AGENTS}\"\nextension = \"10000\"\n").unwrap();
    let strategies = ["longest_idle", "round_robin", "fewest_answered", "random"];
    for q in 0..QUEUES {
        writeln!(
            t,
            "[[queue]]\nname = \"q{q}\"\nstrategy = \"{}\"\nprefer = [\"location\", \"higher_level\", \"last_agent\"]\nwrap_up = 0\n",
            strategies[q % 4]
        )
        .unwrap();
        writeln!(t, "[[access_number]]\ndnis = \"800{q:04}\"\ntarget = \"queue:q{q}\"\n").unwrap();
    }
    writeln!(
        t,
        "[[queue]]\nname = \"all\"\nstrategy = \"longest_idle\"\nprefer = [\"location\", \"higher_level\"]\n"
    )
    .unwrap();
    let cities = ["Beijing", "Shanghai", "Guangzhou", "Chengdu"];
    for a in 0..AGENTS {
        let q1 = a % QUEUES;
        let q2 = (a * 7 + 3) % QUEUES;
        let q3 = (a * 13 + 5) % QUEUES;
        let mut qs = vec![q1, q2, q3];
        qs.sort_unstable();
        qs.dedup();
        let mut list: Vec<String> = qs.iter().map(|q| format!("q{q} = {}", (a + q) % 10)).collect();
        list.push(format!("all = {}", a % 10));
        writeln!(
            t,
            "[[agent]]\nid = \"{}\"\nname = \"Agent {a}\"\nlocation = \"{}\"\nqueues = {{ {} }}\n",
            50_000 + a,
            cities[a % 4],
            list.join(", ")
        )
        .unwrap();
    }
    for (p, c) in [("010", "Beijing"), ("021", "Shanghai"), ("020", "Guangzhou"), ("028", "Chengdu")] {
        writeln!(t, "[[location]]\nprefix = \"{p}\"\nname = \"{c}\"\n").unwrap();
    }
    t
}

fn center() -> Engine {
    let cfg = Config::parse(&installation(), "bench.toml").expect("bench installation is valid");
    let mut e = Engine::new(cfg);
    for a in 0..AGENTS {
        let service = Service::SetAgentState {
            agent: (50_000 + a).to_string(),
            request: AgentRequest::LogIn { station: Some((10_000 + a).to_string()), password: None },
        };
        e.handle(Instant::from_millis(a as u64), Input::Request { client: 1, invoke: a as u32, service });
        while e.poll_output().is_some() {}
    }
    e
}

/// A small deterministic generator for queue and caller choice.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

const PREFIXES: [&str; 5] = ["010", "021", "020", "028", "139"];

fn routing_decision(c: &mut Criterion) {
    let e = center();
    let names: Vec<String> = (0..QUEUES).map(|q| format!("q{q}")).collect();
    let callers: Vec<String> = (0..4096).map(|i| format!("{}{:08}", PREFIXES[i % 5], i * 7919)).collect();
    let mut rng = Lcg(42);
    c.bench_function("routing_decision", |b| {
        b.iter(|| {
            let q = &names[rng.next() as usize % QUEUES];
            let caller = &callers[rng.next() as usize % callers.len()];
            std::hint::black_box(e.routing_choice(q, Some(caller)));
        })
    });
    assert_eq!(e.ready_agents("all"), Some(AGENTS));
    c.bench_function("routing_decision_one_big_queue", |b| {
        b.iter(|| {
            let caller = &callers[rng.next() as usize % callers.len()];
            std::hint::black_box(e.routing_choice("all", Some(caller)));
        })
    });
}

fn call_cycle(c: &mut Criterion) {
    let mut e = center();
    let mut now = Instant::from_secs(3_600);
    let mut rng = Lcg(7);
    let channels: Vec<ChannelId> = (1..=SPANS)
        .flat_map(|s| hotline_drivers::channel::e1_bearer_timeslots().map(move |t| ChannelId::e1(1, s, t)))
        .collect();
    let mut next_ch = 0usize;
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(4));
    group.bench_function("call_cycle", |b| {
        b.iter(|| {
            let ch = channels[next_ch % channels.len()];
            next_ch += 1;
            let q = rng.next() as usize % QUEUES;
            let ani = format!("{}{:08}", PREFIXES[q % 5], rng.next() % 100_000_000);
            now += std::time::Duration::from_millis(1);
            let feed = |e: &mut Engine, kind: EventKind| {
                e.handle(now, Input::Card(CardEvent { time: now, kind }));
                let mut rung = None;
                while let Some(o) = e.poll_output() {
                    if let hotline_cti::Output::Command(hotline_drivers::Command::RingStation {
                        ch, ..
                    }) = o
                    {
                        rung = Some(ch);
                    }
                }
                rung
            };
            let station = feed(
                &mut e,
                EventKind::Offered {
                    ch,
                    ani: Some(ani),
                    dnis: format!("800{q:04}"),
                    category: CallerCategory::Ordinary,
                },
            )
            .expect("every queue has ready agents");
            feed(&mut e, EventKind::OffHook { ch: station });
            feed(&mut e, EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote });
            feed(&mut e, EventKind::OnHook { ch: station });
        })
    });
    group.finish();
}

criterion_group!(benches, routing_decision, call_cycle);
criterion_main!(benches);
