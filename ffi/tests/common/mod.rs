//! A small call center for the C tests: a real `Engine` on its own thread with a real
//! clock, a real link server on a loopback port, and the glue between them (outputs to
//! the link, a screen pop on Delivered to an agent's station). There is no card: the
//! test plays the card by handing the engine card events, and the engine's commands
//! are dropped. The lead's `hotline serve` may replace this later.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{RecvTimeoutError, Sender};
use hotline_cti::csta::{AgentEventKind, CstaEvent, DeviceId};
use hotline_cti::link::{self, LinkConfig, LinkHandle, LinkMsg, NoHistory, ScreenPop};
use hotline_cti::runtime::{Clock, RealClock};
use hotline_cti::{Config, Engine, Input, Output};
use hotline_drivers::{CardEvent, EventKind};

/// One station, one queue, one access number, one agent with a plain password.
pub const CONFIG: &str = r#"
[[station]]
port = "1/fxs/1"
extension = "2001"

[[queue]]
name = "sales"

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[agent]]
id = "1001"
name = "Li Wei"
password = "secret"
queues = { sales = 5 }
"#;

pub struct Center {
    pub port: u16,
    inputs: Sender<Input>,
    clock: RealClock,
    link: LinkHandle,
    engine: Option<JoinHandle<()>>,
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Center {
    pub fn start() -> Center {
        Center::start_with(None)
    }

    /// As [`Center::start`], with the link's `max_message` set to `max_message`.
    pub fn start_with(max_message: Option<usize>) -> Center {
        let config = Config::parse(CONFIG, "c-test.toml").expect("the test configuration is valid");
        let clock = RealClock::new();
        let wall_base = unix_ms();
        let (inputs, rx) = crossbeam_channel::bounded::<Input>(1024);
        let mut cfg = LinkConfig::new(&config);
        cfg.tcp = Some("127.0.0.1:0".parse().expect("address"));
        cfg.http = None;
        cfg.wall_base_unix_ms = wall_base;
        if let Some(m) = max_message {
            cfg.max_message = m;
        }
        let link = link::spawn(cfg, inputs.clone(), Arc::new(NoHistory)).expect("link server starts");
        let port = link.addrs().tcp.expect("TCP listener").port();
        let to_link = link.clone();
        let mut engine = Engine::new(config);
        let engine = std::thread::spawn(move || {
            // Which agent sits at which extension, from the engine's own agent events.
            let mut seated: HashMap<String, String> = HashMap::new();
            loop {
                let input = match engine.next_deadline() {
                    Some(at) => match rx.recv_timeout(at.saturating_duration_since(clock.now())) {
                        Ok(i) => i,
                        Err(RecvTimeoutError::Timeout) => Input::Timeout,
                        Err(RecvTimeoutError::Disconnected) => return,
                    },
                    None => match rx.recv() {
                        Ok(i) => i,
                        Err(_) => return,
                    },
                };
                let now = clock.now();
                engine.handle(now, input);
                while let Some(out) = engine.poll_output() {
                    let at_unix_ms = wall_base + (now.as_micros() / 1000) as i64;
                    let pop = match &out {
                        Output::Event(CstaEvent::Agent {
                            agent,
                            kind: AgentEventKind::LoggedOn { station },
                        }) => {
                            seated.retain(|_, a| a != agent);
                            if let Some(s) = station {
                                seated.insert(s.clone(), agent.clone());
                            }
                            None
                        }
                        Output::Event(CstaEvent::Agent { agent, kind: AgentEventKind::LoggedOff }) => {
                            seated.retain(|_, a| a != agent);
                            None
                        }
                        Output::Event(CstaEvent::Delivered {
                            call,
                            alerting: DeviceId::Station(ext),
                            ..
                        }) => match (seated.get(ext), engine.call_info(*call)) {
                            (Some(agent), Some(info)) => Some(ScreenPop {
                                call: *call,
                                agent: agent.clone(),
                                station: Some(ext.clone()),
                                calling: info.ani,
                                access_number: info.dnis,
                                location: info.location,
                                vip: info.vip,
                                ivr_data: info.data,
                                attached: Default::default(),
                                ivr_labels: Default::default(),
                                at_unix_ms,
                            }),
                            _ => None,
                        },
                        _ => None,
                    };
                    to_link.send(LinkMsg::Output { at_unix_ms, output: out });
                    if let Some(p) = pop {
                        to_link.send(LinkMsg::ScreenPop(p));
                    }
                }
            }
        });
        Center { port, inputs, clock, link, engine: Some(engine) }
    }

    /// Hand the engine a card event, as a card backend would.
    pub fn card(&self, kind: EventKind) {
        let ev = CardEvent { time: self.clock.now(), kind };
        self.inputs.send(Input::Card(ev)).expect("the engine thread runs");
    }
}

impl Drop for Center {
    fn drop(&mut self) {
        self.link.shutdown();
        // The link's sender went with its thread; ours goes now, which ends the engine.
        let (dead, _) = crossbeam_channel::bounded(1);
        self.inputs = dead;
        if let Some(t) = self.engine.take() {
            let _ = t.join();
        }
    }
}
