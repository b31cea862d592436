//! Traffic simulation for sizing a center: Poisson arrivals, exponential handle times
//! and (optionally) exponential patience, run through the real engine in virtual time.
//!
//! A small world stands in for the network and the agents: callers arrive on E1
//! trunks, phones answer the moment they ring, callers hang up after their handle
//! time or give up after their patience. The loop always handles the earliest pending
//! thing, the world's next event or the engine's deadline, so an 8-hour day runs in
//! well under a second. This is what `hotline sim traffic` reports; once the card
//! simulator's people (callers, phones) exist, they can take the world's place.
//! With no ring delay, no wrap-up and no patience the results follow Erlang C
//! ([`erlang_c`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use hotline_drivers::event::Side;
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::{CardEvent, Cause, ChannelId, Command, EventKind, Instant};
use serde::Serialize;

use crate::config::{problems_to_error, Config};
use crate::csta::{AgentRequest, Service};
use crate::engine::{Engine, Input, Output};

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficParams {
    pub agents: usize,
    pub calls_per_hour: f64,
    /// Mean handle (talk) time.
    pub handle_time: Duration,
    /// Mean patience; `None`: callers wait forever.
    pub patience: Option<Duration>,
    pub duration: Duration,
    pub seed: u64,
}

/// What happened, as planners read it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficReport {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Fraction of offered calls answered within 20 s.
    pub service_level_20s: f64,
    /// Fraction of answered calls that waited at all.
    pub waited: f64,
    /// Average speed of answer of answered calls, in seconds.
    pub average_speed_of_answer: f64,
    /// Fraction of agent time spent talking.
    pub occupancy: f64,
}

/// The installation the simulation runs: one queue, `agents` stations and agents,
/// enough E1 channels for the load.
fn installation(agents: usize, spans: u8) -> String {
    let mut t = format!(
        "[[trunk_group]]\nname = \"pstn\"\nchannels = [\"1/1/1-1/{spans}/31\"]\n\n\
         [[queue]]\nname = \"q\"\nring_timeout = 60\nwrap_up = 0\n\n\
         [[access_number]]\ndnis = \"100\"\ntarget = \"queue:q\"\n\n\
         [[station]]\nport = \"1/fxs/1-{agents}\"\nextension = \"100001\"\n\n"
    );
    for a in 1..=agents {
        let _ = writeln!(t, "[[agent]]\nid = \"{a}\"\nname = \"Agent {a}\"\nqueues = {{ q = 5 }}\n");
    }
    t
}

/// xorshift64*, seeded: the same seed gives the same day.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn exp(&mut self, mean: f64) -> Duration {
        Duration::from_secs_f64(-self.uniform().ln() * mean)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum World {
    Arrival,
    OffHook(ChannelId),
    OnHook(ChannelId),
    /// The caller on the trunk hangs up after talking.
    Hangup(ChannelId),
    /// The caller who arrived as number `n` gives up if still waiting.
    GiveUp(ChannelId, u64),
    /// The card confirms a release we asked for.
    Released(ChannelId),
}

/// Run the simulation. Fails only when the parameters make no sense.
pub fn run_traffic(p: &TrafficParams) -> Result<TrafficReport, hotline_drivers::Error> {
    let bad = |m: &str| hotline_drivers::Error::new(hotline_drivers::ErrorKind::Config, m.to_string());
    if p.agents == 0 || p.agents > 60_000 {
        return Err(bad("agents must be 1 to 60000"));
    }
    if !p.calls_per_hour.is_finite() || p.calls_per_hour <= 0.0 || p.handle_time.is_zero() {
        return Err(bad("calls per hour and handle time must be positive"));
    }
    // Enough trunks that no caller is blocked: the offered load plus a wide margin.
    let erlangs = p.calls_per_hour * p.handle_time.as_secs_f64() / 3600.0;
    let trunks_needed = (p.agents as f64 + erlangs * 3.0 + 60.0) as usize;
    let spans = trunks_needed.div_ceil(30).clamp(1, 255) as u8;
    let cfg = Config::parse(&installation(p.agents, spans), "traffic").map_err(|e| problems_to_error(&e))?;
    let mut engine = Engine::new(cfg);
    for a in 1..=p.agents {
        let service = Service::SetAgentState {
            agent: a.to_string(),
            request: AgentRequest::LogIn { station: Some((100_000 + a).to_string()), password: None },
        };
        engine.handle(Instant::ZERO, Input::Request { client: 0, invoke: 0, service });
    }
    while engine.poll_output().is_some() {}

    let mut rng = Rng(p.seed.max(1));
    let mean_gap = 3600.0 / p.calls_per_hour;
    let handle = p.handle_time.as_secs_f64();
    let end = Instant::ZERO + p.duration;
    let mut world: BinaryHeap<Reverse<(Instant, u64, World)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |w: &mut BinaryHeap<_>, at: Instant, e: World| {
        seq += 1;
        w.push(Reverse((at, seq, e)));
    };
    push(&mut world, Instant::ZERO + rng.exp(mean_gap), World::Arrival);

    let mut free: Vec<ChannelId> = (1..=spans)
        .flat_map(|s| hotline_drivers::channel::e1_bearer_timeslots().map(move |t| ChannelId::e1(1, s, t)))
        .collect();
    free.reverse();
    // Trunk → (caller number, arrival) while waiting.
    let mut waiting: HashMap<ChannelId, (u64, Instant)> = HashMap::new();
    let mut talking: HashMap<ChannelId, (ChannelId, Instant)> = HashMap::new();
    let (mut offered, mut answered, mut abandoned, mut within_20) = (0u64, 0u64, 0u64, 0u64);
    let (mut waited, mut wait_sum, mut talk) = (0u64, 0f64, 0f64);
    let mut last = Instant::ZERO;

    loop {
        let world_next = world.peek().map(|Reverse((at, _, _))| *at);
        let (now, input) = match (world_next, engine.next_deadline()) {
            (None, None) => break,
            (Some(w), Some(e)) if e < w => (e, Input::Timeout),
            (None, Some(e)) => (e, Input::Timeout),
            (Some(_), _) => {
                let Reverse((at, _, ev)) = world.pop().expect("peeked");
                let kind = match ev {
                    World::Arrival => {
                        if at < end {
                            push(&mut world, at + rng.exp(mean_gap), World::Arrival);
                        }
                        offered += 1;
                        let ch = free.pop().ok_or_else(|| bad("ran out of trunks"))?;
                        waiting.insert(ch, (offered, at));
                        if let Some(patience) = p.patience {
                            let give_up = at + rng.exp(patience.as_secs_f64());
                            push(&mut world, give_up, World::GiveUp(ch, offered));
                        }
                        EventKind::Offered {
                            ch,
                            ani: Some(format!("0105{offered:07}")),
                            dnis: "100".into(),
                            category: CallerCategory::Ordinary,
                        }
                    }
                    World::GiveUp(ch, n) => {
                        if waiting.get(&ch).map(|w| w.0) != Some(n) {
                            continue; // answered already (or the trunk serves someone else)
                        }
                        waiting.remove(&ch);
                        abandoned += 1;
                        free.push(ch);
                        EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote }
                    }
                    World::OffHook(ch) => EventKind::OffHook { ch },
                    World::OnHook(ch) => EventKind::OnHook { ch },
                    World::Hangup(ch) => {
                        free.push(ch);
                        if let Some((station, from)) = talking.remove(&ch) {
                            talk += (at - from).as_secs_f64();
                            push(&mut world, at, World::OnHook(station));
                        }
                        EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote }
                    }
                    World::Released(ch) => {
                        free.push(ch);
                        EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Local }
                    }
                };
                (at, Input::Card(CardEvent { time: at, kind }))
            }
        };
        engine.handle(now, input);
        last = now;
        while let Some(o) = engine.poll_output() {
            let Output::Command(c) = o else { continue };
            match c {
                Command::RingStation { ch, .. } => push(&mut world, now, World::OffHook(ch)),
                Command::Connect { a, b } => {
                    let (trunk, station) = if a.is_trunk() { (a, b) } else { (b, a) };
                    if let Some((_, t0)) = waiting.remove(&trunk) {
                        let w = (now - t0).as_secs_f64();
                        answered += 1;
                        wait_sum += w;
                        waited += u64::from(w > 0.0);
                        within_20 += u64::from(w <= 20.0);
                        talking.insert(trunk, (station, now));
                        push(&mut world, now + rng.exp(handle), World::Hangup(trunk));
                    }
                }
                Command::Release { ch, .. } if ch.is_trunk() => push(&mut world, now, World::Released(ch)),
                _ => {}
            }
        }
    }
    let per = |x: f64, n: u64| if n == 0 { 0.0 } else { x / n as f64 };
    Ok(TrafficReport {
        offered,
        answered,
        abandoned,
        service_level_20s: per(within_20 as f64, offered),
        waited: per(waited as f64, answered),
        average_speed_of_answer: per(wait_sum, answered),
        // The run lasts until the last call ends, a little past the duration.
        occupancy: talk / (p.agents as f64 * (last - Instant::ZERO).max(p.duration).as_secs_f64().max(1.0)),
    })
}

/// Erlang C: the probability that a call waits, with `agents` agents and `erlangs` of
/// offered load (1 when the load is at or above capacity).
pub fn erlang_c(agents: usize, erlangs: f64) -> f64 {
    if erlangs >= agents as f64 {
        return 1.0;
    }
    // Erlang B by its stable recurrence, then C from B.
    let mut b = 1.0;
    for k in 1..=agents {
        b = erlangs * b / (k as f64 + erlangs * b);
    }
    let rho = erlangs / agents as f64;
    b / (1.0 - rho + rho * b)
}
