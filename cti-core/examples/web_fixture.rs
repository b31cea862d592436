//! A small call center for developing and testing the web pages: the engine, a
//! simulated card in signalling mode driven in real time, and the link server that
//! serves `/agent`, `/wallboard` and the WebSocket. It prints its URL; each line
//! `call [ANI [DNIS]]` on stdin makes a simulated caller arrive on the first E1 span
//! (the caller waits for an agent, then talks until released).
//!
//!     cargo run -p hotline-cti --example web_fixture -- --config tests/browser/center.toml \
//!         --http 127.0.0.1:0 --print-addr
//!
//! It is deliberately thin (`hotline serve` is the real installation): no store, no IVR;
//! the screen pop and the wallboard figures are built here from the engine's events.
//! Every station goes off hook at start (headset agents), so calls are answered from
//! the desktop.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, select, unbounded};
use hotline_cti::config::Config;
use hotline_cti::coupled::{self, Seen};
use hotline_cti::csta::{AgentEventKind, CallId, CstaEvent, DeviceId};
use hotline_cti::link::{
    self, pages, LinkConfig, LinkHandle, LinkMsg, QueueStats, ScreenPop, WallboardStats,
};
use hotline_cti::runtime::{Clock, RealClock};
use hotline_cti::{Engine, Input, Output};
use hotline_drivers::config::{self as card_config, Backend, MediaMode};
use hotline_drivers::sim::{CallerScript, CallerStep, InboundCall, SimCard, Spread, Trunk};
use hotline_drivers::{Card, Instant};

/// A queue's service-level target: answered within this counts as in service.
const SERVICE_LEVEL_TARGET: Duration = Duration::from_secs(20);

struct Args {
    config: PathBuf,
    http: Option<String>,
    print_addr: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser/center.toml")),
        http: None,
        print_addr: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => args.config = it.next().ok_or("--config needs a file")?.into(),
            "--http" => args.http = Some(it.next().ok_or("--http needs an address such as 127.0.0.1:0")?),
            "--print-addr" => args.print_addr = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; expected --config FILE, --http ADDR, --print-addr"
                ))
            }
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web_fixture: {e}");
            ExitCode::FAILURE
        }
    }
}

fn problems(list: Vec<hotline_cti::Problem>) -> String {
    list.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

enum Control {
    Call { ani: String, dnis: String },
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let origin = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config).map_err(|e| format!("cannot read {origin}: {e}"))?;
    let mut cards = card_config::parse(&text, &origin).map_err(|e| e.to_string())?;
    // Real time without audio: events only, light on the CPU.
    cards.simulator.media = MediaMode::Signalling;
    let card = cards
        .cards
        .iter()
        .find(|c| c.backend == Backend::Simulator)
        .ok_or_else(|| format!("{origin}: no card with backend = \"simulator\""))?;
    let card_id = card.id;
    let span =
        card.spans.first().map(|s| s.span).ok_or_else(|| format!("{origin}: the card has no E1 span"))?;
    let engine_cfg = Config::parse(&text, &origin).map_err(problems)?;
    let mut link_cfg = LinkConfig::parse(&text, &origin, &engine_cfg).map_err(problems)?;
    if let Some(a) = &args.http {
        link_cfg.http = Some(a.parse().map_err(|_| format!("bad --http address {a:?}: expected IP:PORT"))?);
    }
    if link_cfg.http.is_none() {
        return Err(format!("{origin}: [link] http is disabled; the pages need it"));
    }
    link_cfg.pages = pages::web_pages();
    let clock = RealClock::new();
    let wall_base = unix_ms();
    link_cfg.wall_base_unix_ms = wall_base;

    let (to_engine, inputs) = bounded::<Input>(4096);
    let link = link::spawn(link_cfg, to_engine, Arc::new(link::NoHistory))
        .map_err(|e| format!("cannot start the link server: {e}"))?;
    let addr = link.addrs().http.ok_or("the link server has no HTTP listener")?;
    if args.print_addr {
        println!("http://{addr}");
    } else {
        println!("Hotline web fixture: http://{addr}/agent (agent desktop), http://{addr}/wallboard");
        println!("type `call [ANI [DNIS]]` to make a caller arrive");
    }
    let _ = std::io::stdout().flush();

    let (ctl_tx, ctl) = bounded::<Control>(64);
    let default_dnis = engine_cfg.access_numbers.first().map(|a| a.dnis.clone()).unwrap_or_default();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let mut words = line.split_whitespace();
            match words.next() {
                Some("call") => {
                    let ani = words.next().unwrap_or("13800138000").to_string();
                    let dnis = words.next().map(str::to_string).unwrap_or_else(|| default_dnis.clone());
                    if ctl_tx.send(Control::Call { ani, dnis }).is_err() {
                        break;
                    }
                }
                Some(other) => {
                    eprintln!("web_fixture: unknown command {other:?}; expected `call [ANI [DNIS]]`")
                }
                None => {}
            }
        }
        // End of stdin: keep serving; the caller stops the process.
    });

    let (card_tx, card_rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, card_id, card_tx).map_err(|e| e.to_string())?;
    for st in &engine_cfg.stations {
        sim.go_off_hook(Instant::ZERO, st.port).map_err(|e| e.to_string())?;
    }
    let mut engine = Engine::new(engine_cfg.clone());
    let mut glue = Glue::new(link.clone(), wall_base, &engine_cfg);
    let mut next_stats = Instant::ZERO;

    loop {
        let now = clock.now();
        let card_next = loop {
            let next = sim.poll(now).map_err(|e| format!("the simulated card failed: {e}"))?;
            let mut any = false;
            while let Ok(ev) = card_rx.try_recv() {
                any = true;
                engine.handle(now, Input::Card(ev));
                coupled::carry(&mut engine, &mut sim, now, &mut |t, s| glue.seen(t, s));
                glue.send_pops(&engine);
            }
            if !any {
                break next;
            }
        };
        if engine.next_deadline().is_some_and(|d| d <= now) {
            engine.handle(now, Input::Timeout);
            coupled::carry(&mut engine, &mut sim, now, &mut |t, s| glue.seen(t, s));
            glue.send_pops(&engine);
        }
        if now >= next_stats {
            glue.push_stats(now);
            next_stats = Instant::from_micros(now.as_micros() + 1_000_000);
        }
        let wake = [card_next, engine.next_deadline(), Some(next_stats)].into_iter().flatten().min();
        let wait = wake.map_or(Duration::from_secs(1), |w| w.saturating_duration_since(clock.now()));
        select! {
            recv(inputs) -> input => match input {
                Ok(input) => {
                    let t = clock.now();
                    engine.handle(t, input);
                    coupled::carry(&mut engine, &mut sim, t, &mut |t, s| glue.seen(t, s));
                    glue.send_pops(&engine);
                }
                Err(_) => return Ok(()),
            },
            recv(ctl) -> c => if let Ok(Control::Call { ani, dnis }) = c {
                let script = CallerScript::new(
                    Spread::secs(120.0),
                    vec![CallerStep::WaitForAgent(None), CallerStep::Talk(Spread::secs(600.0)), CallerStep::HangUp],
                );
                sim.schedule_inbound(clock.now(), InboundCall::new(Trunk::Span(span), Some(&ani), &dnis, script));
            },
            default(wait) => {}
        }
    }
}

/// What the fixture adds to the engine's outputs before the link gets them: screen
/// pops on delivery to an agent's station and the queues' figures for the wallboard.
struct Glue {
    link: LinkHandle,
    wall_base: i64,
    /// Extension -> the agent logged in there.
    at_station: HashMap<String, String>,
    /// Calls delivered to an agent: (call, agent, extension, when), popped once the
    /// engine can be asked for the call's data.
    pops: Vec<(CallId, String, String, Instant)>,
    queues: BTreeMap<String, QueueDay>,
    /// Calls queued and not yet answered: (queue, first queued at).
    waiting_since: HashMap<CallId, (String, Instant)>,
}

#[derive(Default)]
struct QueueDay {
    /// Calls in the queue now (not ringing an agent), and since when.
    waiting: BTreeMap<CallId, Instant>,
    answered: u64,
    answered_in_target: u64,
    abandoned: u64,
}

impl Glue {
    fn new(link: LinkHandle, wall_base: i64, cfg: &Config) -> Glue {
        Glue {
            link,
            wall_base,
            at_station: HashMap::new(),
            pops: Vec::new(),
            queues: cfg.queues.iter().map(|q| (q.name.clone(), QueueDay::default())).collect(),
            waiting_since: HashMap::new(),
        }
    }

    fn wall(&self, t: Instant) -> i64 {
        self.wall_base + (t.as_micros() / 1000) as i64
    }

    fn seen(&mut self, t: Instant, s: Seen<'_>) {
        match s {
            Seen::Output(o @ (Output::Event(_) | Output::Response { .. })) => {
                self.link.send(LinkMsg::Output { at_unix_ms: self.wall(t), output: o.clone() });
                if let Output::Event(ev) = o {
                    self.track(t, ev);
                }
            }
            Seen::Refused { command, error } => {
                eprintln!("web_fixture: the card refused {command:?}: {error}")
            }
            _ => {}
        }
    }

    fn track(&mut self, t: Instant, ev: &CstaEvent) {
        match ev {
            CstaEvent::Agent { agent, kind: AgentEventKind::LoggedOn { station: Some(ext) } } => {
                self.at_station.insert(ext.clone(), agent.clone());
            }
            CstaEvent::Agent { agent, kind: AgentEventKind::LoggedOff } => {
                self.at_station.retain(|_, a| a != agent);
            }
            CstaEvent::Delivered { call, alerting: DeviceId::Station(ext), .. } => {
                self.stop_waiting(*call);
                if let Some(agent) = self.at_station.get(ext) {
                    self.pops.push((*call, agent.clone(), ext.clone(), t));
                }
            }
            CstaEvent::Queued { call, queue, .. } => {
                self.stop_waiting(*call);
                self.waiting_since.entry(*call).or_insert((queue.clone(), t));
                if let Some(q) = self.queues.get_mut(queue) {
                    q.waiting.insert(*call, t);
                }
            }
            CstaEvent::Diverted { call, .. } | CstaEvent::HandedOff { call, .. } => {
                self.stop_waiting(*call);
                if matches!(ev, CstaEvent::HandedOff { .. }) {
                    self.waiting_since.remove(call);
                }
            }
            CstaEvent::Established { call, answering: DeviceId::Station(_), .. } => {
                if let Some((queue, since)) = self.waiting_since.remove(call) {
                    if let Some(q) = self.queues.get_mut(&queue) {
                        q.answered += 1;
                        if t.saturating_duration_since(since) <= SERVICE_LEVEL_TARGET {
                            q.answered_in_target += 1;
                        }
                    }
                }
            }
            CstaEvent::CallCleared { call, .. } => {
                self.stop_waiting(*call);
                if let Some((queue, _)) = self.waiting_since.remove(call) {
                    if let Some(q) = self.queues.get_mut(&queue) {
                        q.abandoned += 1;
                    }
                }
            }
            _ => {}
        }
    }

    fn stop_waiting(&mut self, call: CallId) {
        for q in self.queues.values_mut() {
            q.waiting.remove(&call);
        }
    }

    /// The screen pops of the calls just delivered, with what the engine knows of
    /// each call (no IVR here, so all its data counts as attached).
    fn send_pops(&mut self, engine: &Engine) {
        for (call, agent, ext, t) in std::mem::take(&mut self.pops) {
            let Some(info) = engine.call_info(call) else { continue };
            let pop = ScreenPop {
                call,
                agent,
                station: Some(ext),
                calling: info.ani,
                access_number: info.dnis,
                location: info.location,
                vip: info.vip,
                ivr_data: BTreeMap::new(),
                attached: info.data,
                at_unix_ms: self.wall(t),
            };
            self.link.send(LinkMsg::ScreenPop(pop));
        }
    }

    fn push_stats(&self, now: Instant) {
        let queues = self
            .queues
            .iter()
            .map(|(name, q)| {
                let done = q.answered + q.abandoned;
                let frac = |n: u64| (done > 0).then(|| n as f64 / done as f64);
                QueueStats {
                    queue: name.clone(),
                    waiting: q.waiting.len(),
                    longest_wait_secs: q
                        .waiting
                        .values()
                        .min()
                        .map_or(0, |since| now.saturating_duration_since(*since).as_secs()),
                    answered: q.answered,
                    abandoned: q.abandoned,
                    service_level: frac(q.answered_in_target),
                    abandon_rate: frac(q.abandoned),
                }
            })
            .collect();
        self.link.send(LinkMsg::Stats(WallboardStats { at_unix_ms: self.wall(now), queues }));
    }
}
