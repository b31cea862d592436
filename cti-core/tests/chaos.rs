//! The engine under random inputs: card events and requests in any order must never
//! make it panic or lose its internal consistency, and once everyone hangs up no call
//! is left behind.

mod common;

use std::time::Duration;

use common::{fxs, ts, Rig, BASE};
use hotline_cti::csta::{AgentRequest, DeviceId, Service, SupervisionMode};
use hotline_cti::CallId;
use hotline_drivers::event::Side;
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::{Cause, Command, EventKind, Instant};

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn run(seed: u64, steps: usize) {
    let mut r = Rig::new(&format!("[engine]\nseed = {seed}\n{BASE}"));
    let mut rng = Rng(seed);
    let agents = ["1001", "1002", "1003", "1004", "9001"];
    let callers = ["01066668888", "02155556666", "13900000001", "13800000000", "07550000000"];
    let dnis = ["4008001000", "4008002000", "999"];
    let mut placed: Vec<hotline_drivers::ChannelId> = Vec::new();
    for step in 0..steps {
        let t = 1 + rng.below(8) as u8;
        let port = 1 + rng.below(8) as u16;
        let kind = match rng.below(16) {
            0 | 1 => Some(EventKind::Offered {
                ch: ts(t),
                ani: Some(callers[rng.below(5) as usize].into()),
                dnis: dnis[rng.below(3) as usize].into(),
                category: CallerCategory::Ordinary,
            }),
            2 => Some(EventKind::Released { ch: ts(t), cause: Cause::NORMAL_CLEARING, by: Side::Remote }),
            3 | 4 => Some(EventKind::OffHook { ch: fxs(port) }),
            5 | 6 => Some(EventKind::OnHook { ch: fxs(port) }),
            7 => Some(EventKind::HookFlash { ch: fxs(port) }),
            8 | 9 => {
                let d = b"0123456789*#"[rng.below(12) as usize] as char;
                Some(EventKind::Digit { ch: fxs(port), digit: d, start: Instant::ZERO, end: Instant::ZERO })
            }
            10 => placed.pop().map(|ch| {
                if rng.below(2) == 0 {
                    EventKind::Answered { ch }
                } else {
                    EventKind::Alerting { ch }
                }
            }),
            11 => Some(EventKind::Digit { ch: ts(t), digit: '1', start: Instant::ZERO, end: Instant::ZERO }),
            12 => {
                let call = CallId(1 + rng.below(r.engine.call_count() as u64 + 3));
                let next =
                    ["queue:sales", "hangup", "external:0108888", "ivr:again", "agent:1001", "agent:back"]
                        [rng.below(6) as usize];
                let data = [("choice".to_string(), "2".to_string())].into();
                r.engine.handle(r.now, hotline_cti::Input::IvrDone { call, next: next.into(), data });
                while let Some(o) = r.engine.poll_output() {
                    r.out.push(o);
                }
                None
            }
            _ => None,
        };
        let last;
        if let Some(kind) = kind {
            last = format!("{kind:?}");
            r.card(kind);
        } else {
            let agent = agents[rng.below(5) as usize].to_string();
            let call = CallId(1 + rng.below(r.engine.call_count() as u64 + 3));
            let dev = DeviceId::Station(format!("{}", 2001 + rng.below(8)));
            let other = CallId(1 + rng.below(r.engine.call_count() as u64 + 3));
            let service = match rng.below(20) {
                0 => Service::SetAgentState {
                    agent,
                    request: AgentRequest::LogIn {
                        station: Some(format!("{}", 2001 + rng.below(8))),
                        password: None,
                    },
                },
                1 => Service::SetAgentState { agent, request: AgentRequest::Ready },
                2 => Service::SetAgentState { agent, request: AgentRequest::NotReady { reason: "x".into() } },
                3 => Service::SetAgentState { agent, request: AgentRequest::LogOut },
                4 => Service::MakeCall { calling: format!("{}", 2001 + rng.below(8)), called: "2003".into() },
                5 => Service::ClearConnection { call, device: dev },
                6 => Service::HoldCall { call, device: dev },
                7 => Service::SingleStepTransferCall { call, device: dev, to: "3001".into() },
                8 => Service::Supervise {
                    supervisor: "9001".into(),
                    agent,
                    mode: [SupervisionMode::Whisper, SupervisionMode::Barge, SupervisionMode::Intercept]
                        [rng.below(3) as usize],
                },
                9 => Service::ConsultationCall { held: call, device: dev, called: "2005".into() },
                10 => Service::AnswerCall { call, device: dev },
                11 => Service::TransferCall { held: call, active: other, device: dev },
                12 => Service::ConferenceCall { held: call, active: other, device: dev },
                13 => Service::AlternateCall { held: call, active: other, device: dev },
                14 => Service::ReconnectCall { held: call, active: other, device: dev },
                15 => Service::DeflectCall { call, device: dev, to: "2004".into() },
                16 => Service::ClearCall { call },
                17 => Service::RetrieveCall { call, device: dev },
                18 => Service::SingleStepTransferCall {
                    call,
                    device: dev,
                    to: ["2002", "ivr:survey", "3001", "9123"][rng.below(4) as usize].into(),
                },
                _ => Service::ClearConnection { call, device: DeviceId::Trunk(ts(t)) },
            };
            last = format!("{service:?}");
            let _ = r.request(service);
        }
        let mut refuse = Vec::new();
        for c in r.commands() {
            if let Command::PlaceCall { ch, .. } = c {
                placed.push(*ch);
            }
            // Now and then the card refuses a command that matters to call state.
            if matches!(c, Command::PlaceCall { .. } | Command::RingStation { .. } | Command::Answer { .. })
                && rng.below(12) == 0
            {
                refuse.push(c.clone());
            }
        }
        for command in refuse {
            if let Command::PlaceCall { ch, .. } = &command {
                placed.retain(|p| p != ch);
            }
            let kind = [hotline_drivers::ErrorKind::Blocked, hotline_drivers::ErrorKind::InvalidState]
                [rng.below(2) as usize];
            r.engine.handle(r.now, hotline_cti::Input::CommandFailed { command, kind });
            while let Some(o) = r.engine.poll_output() {
                r.out.push(o);
            }
        }
        if rng.below(4) == 0 {
            r.advance(Duration::from_secs(rng.below(20)));
        }
        let bad = r.engine.check_invariants();
        if let Err(e) = bad {
            panic!("seed {seed} step {step}: {e}\nafter {last}\noutputs: {:#?}", r.out);
        }
        r.take();
    }
    // Everyone hangs up; every trunk is released; then nothing may remain.
    for port in 1..=8 {
        r.card(EventKind::OnHook { ch: fxs(port) });
    }
    for t in 1..=31 {
        if t != 16 {
            r.card(EventKind::Released { ch: ts(t), cause: Cause::NORMAL_CLEARING, by: Side::Remote });
        }
    }
    for port in 1..=8 {
        r.card(EventKind::OnHook { ch: fxs(port) });
    }
    r.advance(Duration::from_secs(600));
    r.engine.check_invariants().unwrap_or_else(|e| panic!("seed {seed} at the end: {e}"));
    if r.engine.call_count() > 0 {
        let left: Vec<String> = (1..100_000)
            .filter_map(|i| match r.request(Service::SnapshotCall { call: CallId(i) }) {
                Ok(snap) => Some(format!("call#{i}: {snap:?}")),
                Err(_) => None,
            })
            .collect();
        panic!("seed {seed}: calls left after everyone hung up:\n{}", left.join("\n"));
    }
}

#[test]
fn random_inputs_never_break_the_engine() {
    let seeds: u64 = std::env::var("CHAOS_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    for seed in 1..=seeds {
        run(seed, 3_000);
    }
}
