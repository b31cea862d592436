//! Simulated agents for the demo: people at the desktops who log in at their phones,
//! take breaks and come back. Their phones (on the card simulator) answer and hang up
//! by themselves; these agents only make the desktop requests a person would. They
//! leave alone the agents kept for real people and the headset stations (a headset
//! call is answered from the desktop, which only a person does).
//!
//! Sans-IO: [`SimAgents::poll`] returns the requests due at `now`.

use std::time::Duration;

use hotline_drivers::{ChannelId, Instant};

use crate::center::INTERNAL_CLIENT_MIN;
use crate::config::Config;
use crate::csta::{AgentRequest, Service};
use crate::engine::Input;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    LogIn,
    Ready,
    Break,
}

#[derive(Debug, Clone)]
struct Person {
    id: String,
    station: String,
    password: Option<String>,
    next: Instant,
    step: Step,
}

/// Every configured agent, each assigned a station in configuration order.
#[derive(Debug, Clone)]
pub struct SimAgents {
    people: Vec<Person>,
    rng: u64,
    /// Mean time between breaks for one agent.
    pub break_every: Duration,
    invoke: u32,
}

impl SimAgents {
    /// The agents not in `people` log in at the stations not on `headsets`, the i-th
    /// agent at the i-th such station, half a second after the one before. Agents left
    /// without a station stay logged out.
    pub fn new(cfg: &Config, seed: u64, people: &[String], headsets: &[ChannelId]) -> SimAgents {
        let people = cfg
            .agents
            .iter()
            .filter(|a| !people.contains(&a.id))
            .zip(cfg.stations.iter().filter(|s| !headsets.contains(&s.port)))
            .enumerate()
            .map(|(i, (a, s))| Person {
                id: a.id.clone(),
                station: s.extension.clone(),
                password: a.password.clone(),
                next: Instant::from_micros(1_000_000 + 500_000 * i as u64),
                step: Step::LogIn,
            })
            .collect();
        SimAgents { people, rng: seed | 1, break_every: Duration::from_secs(240), invoke: 0 }
    }

    /// The station each simulated agent uses, (agent, extension).
    pub fn seats(&self) -> impl Iterator<Item = (&str, &str)> {
        self.people.iter().map(|p| (p.id.as_str(), p.station.as_str()))
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.people.iter().map(|p| p.next).min()
    }

    fn uniform(&mut self) -> f64 {
        // xorshift64*: deterministic per seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The requests due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Input> {
        let mut out = Vec::new();
        for i in 0..self.people.len() {
            if self.people[i].next > now {
                continue;
            }
            let client = INTERNAL_CLIENT_MIN + i as u32;
            let (request, step, wait) = match self.people[i].step {
                Step::LogIn => (
                    AgentRequest::LogIn {
                        station: Some(self.people[i].station.clone()),
                        password: self.people[i].password.clone(),
                    },
                    Step::Ready,
                    Duration::from_millis(300),
                ),
                Step::Ready => {
                    let u = self.uniform().max(1e-9);
                    let gap = self.break_every.as_secs_f64() * -u.ln();
                    (AgentRequest::Ready, Step::Break, Duration::from_secs_f64(gap.max(20.0)))
                }
                Step::Break => {
                    let u = self.uniform();
                    (
                        AgentRequest::NotReady { reason: "break".into() },
                        Step::Ready,
                        Duration::from_secs_f64(15.0 + 30.0 * u),
                    )
                }
            };
            self.invoke += 1;
            let p = &mut self.people[i];
            out.push(Input::Request {
                client,
                invoke: self.invoke,
                service: Service::SetAgentState { agent: p.id.clone(), request },
            });
            p.step = step;
            p.next = now + wait;
        }
        out
    }
}
