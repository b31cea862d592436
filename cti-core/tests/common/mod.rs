//! A test rig: the engine driven in virtual time with card events, outputs collected.
#![allow(dead_code)]

use std::time::Duration;

use hotline_cti::csta::{AgentRequest, CstaError, CstaEvent, Service, ServiceResult};
use hotline_cti::{Config, Engine, Input, Output};
use hotline_drivers::event::Side;
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::{CardEvent, Cause, ChannelId, Command, EventKind, Instant};

pub struct Rig {
    pub engine: Engine,
    pub now: Instant,
    /// Everything emitted since the last `take`.
    pub out: Vec<Output>,
    invoke: u32,
}

/// A small installation: one E1 span and FXO lines, eight stations, three queues.
pub const BASE: &str = r#"
[[card]]
model = "simulator"      # the drivers' table: ignored by the engine

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]
caller_id = "4008001000"
dial_prefix = "9"

[[station]]
port = "1/fxs/1-8"
extension = "2001"

[[queue]]
name = "sales"
number = "3001"
strategy = "longest_idle"
ring_timeout = 15
max_misses = 3
wrap_up = 0
max_wait = 60
max_wait_action = "queue:support"

[[queue]]
name = "support"
strategy = "longest_idle"
ring_timeout = 15
wrap_up = 10

[[queue]]
name = "vipq"
strategy = "round_robin"

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[access_number]]
dnis = "4008002000"
target = "queue:support"

[[agent]]
id = "1001"
name = "Li Wei"
queues = { sales = 5, support = 5 }

[[agent]]
id = "1002"
name = "Wang Fang"
queues = { sales = 5, support = 5 }

[[agent]]
id = "1003"
name = "Zhao Min"
queues = { sales = 5 }

[[agent]]
id = "1004"
name = "Chen Jie"
queues = { support = 5 }

[[agent_group]]
name = "team-a"
agents = ["1001", "1002", "1003", "1004"]

[[supervisor]]
id = "9001"
name = "Sun Li"
groups = ["team-a"]

[[vip]]
number = "13900000001"

[[blacklist]]
number = "13800000000"
action = "reject"
cause = 21

[[location]]
prefix = "010"
name = "Beijing"

[[location]]
prefix = "021"
name = "Shanghai"
"#;

pub fn fxs(port: u16) -> ChannelId {
    ChannelId::fxs(1, port)
}

pub fn ts(t: u8) -> ChannelId {
    ChannelId::e1(1, 1, t)
}

impl Rig {
    pub fn new(toml: &str) -> Rig {
        let cfg = Config::parse(toml, "test.toml").unwrap_or_else(|p| panic!("config problems: {p:?}"));
        Rig { engine: Engine::new(cfg), now: Instant::ZERO, out: Vec::new(), invoke: 0 }
    }

    pub fn base() -> Rig {
        Rig::new(BASE)
    }

    fn drain(&mut self) {
        while let Some(o) = self.engine.poll_output() {
            self.out.push(o);
        }
    }

    pub fn card(&mut self, kind: EventKind) {
        self.engine.handle(self.now, Input::Card(CardEvent { time: self.now, kind }));
        self.drain();
    }

    /// Let `d` pass, handling every deadline on the way, as a runtime would.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.engine.next_deadline() {
            if at > end {
                break;
            }
            self.now = at.max(self.now);
            self.engine.handle(self.now, Input::Timeout);
            self.drain();
        }
        self.now = end;
    }

    pub fn request(&mut self, service: Service) -> Result<ServiceResult, CstaError> {
        self.invoke += 1;
        let invoke = self.invoke;
        self.engine.handle(self.now, Input::Request { client: 7, invoke, service });
        self.drain();
        self.out
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::Response { client: 7, invoke: i, result } if *i == invoke => Some(result.clone()),
                _ => None,
            })
            .expect("every request gets a response")
    }

    pub fn login(&mut self, agent: &str, ext: &str) {
        let r = self.request(Service::SetAgentState {
            agent: agent.into(),
            request: AgentRequest::LogIn { station: Some(ext.into()), password: None },
        });
        assert_eq!(r, Ok(ServiceResult::Ok), "login {agent} at {ext}");
    }

    pub fn offer(&mut self, t: u8, ani: &str, dnis: &str) {
        self.card(EventKind::Offered {
            ch: ts(t),
            ani: Some(ani.into()),
            dnis: dnis.into(),
            category: CallerCategory::Ordinary,
        });
    }

    pub fn caller_hangs_up(&mut self, t: u8) {
        self.card(EventKind::Released { ch: ts(t), cause: Cause::NORMAL_CLEARING, by: Side::Remote });
    }

    pub fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    pub fn commands(&self) -> Vec<&Command> {
        self.out.iter().filter_map(|o| if let Output::Command(c) = o { Some(c) } else { None }).collect()
    }

    pub fn events(&self) -> Vec<&CstaEvent> {
        self.out.iter().filter_map(|o| if let Output::Event(e) = o { Some(e) } else { None }).collect()
    }

    /// The stations rung since the last `take`, with the caller ID they were sent.
    pub fn rung(&self) -> Vec<(ChannelId, Option<String>)> {
        self.commands()
            .into_iter()
            .filter_map(|c| match c {
                Command::RingStation { ch, caller_id } => {
                    Some((*ch, caller_id.as_ref().and_then(|c| c.number.clone())))
                }
                _ => None,
            })
            .collect()
    }

    pub fn has_command(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.commands().into_iter().any(f)
    }

    pub fn has_event(&self, f: impl Fn(&CstaEvent) -> bool) -> bool {
        self.events().into_iter().any(f)
    }

    pub fn connected(&self, a: ChannelId, b: ChannelId) -> bool {
        self.has_command(
            |c| matches!(c, Command::Connect { a: x, b: y } if (*x, *y) == (a, b) || (*x, *y) == (b, a)),
        )
    }
}
