//! Contact-center scenarios on the card simulator: the engine and a simulated card run
//! together in virtual time from one installation file, and each test checks what a
//! supervisor would see: the CSTA events, the agents' states, and what the card and the
//! people on its lines did and heard.

use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use hotline_cti::coupled::{self, Seen};
use hotline_cti::csta::{
    AgentEventKind, AgentRequest, CstaEvent, DeviceId, EventCause, Service, SupervisionMode,
};
use hotline_cti::{AgentState, CallId, Config, CstaError, Engine, Input, Output, ServiceResult};
use hotline_drivers::event::Side;
use hotline_drivers::sim::SimCard;
use hotline_drivers::{CardEvent, Cause, ChannelId, EventKind, Instant};

/// One E1 span and eight stations; queues sales (VIPs, misses), orders (overflows to
/// support after 30 s) and support (10 s wrap-up); agents 1001, 1002 in sales and
/// orders, 1004 in support; supervisor 9001; one VIP and one blacklisted number.
/// `MEDIA` is the simulator's media mode; each test appends its callers and phones.
const INSTALLATION: &str = r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-8"

[simulator]
media = "MEDIA"
seed = 23

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-8"
extension = "2001"

[[queue]]
name = "sales"
ring_timeout = 10
max_misses = 3
wrap_up = 0

[[queue]]
name = "orders"
wrap_up = 0
max_wait = 30
max_wait_action = "queue:support"

[[queue]]
name = "support"
wrap_up = 10

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[access_number]]
dnis = "4008003000"
target = "queue:orders"

[[access_number]]
dnis = "4008002000"
target = "queue:support"

[[agent]]
id = "1001"
name = "Li Wei"
queues = { sales = 5, orders = 5 }

[[agent]]
id = "1002"
name = "Wang Fang"
queues = { sales = 5, orders = 5 }

[[agent]]
id = "1004"
name = "Chen Jie"
queues = { support = 5 }

[[agent_group]]
name = "team-a"
agents = ["1001", "1002", "1004"]

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
"#;

const SALES: &str = "4008001000";
const ORDERS: &str = "4008003000";
const SUPPORT: &str = "4008002000";
const VIP: &str = "13900000001";

/// A caller at `at_s` from `ani` to `dnis` who waits for an agent and then follows `steps`.
fn caller(at_s: f64, ani: &str, dnis: &str, steps: &str) -> String {
    format!(
        "\n[[simulator.inbound]]\nat_s = {at_s}\ntrunk = \"1/1\"\nani = \"{ani}\"\ndnis = \"{dnis}\"\n\
         caller = {{ patience_s = 60, script = [\"wait_agent\", {steps}] }}\n"
    )
}

/// Phones on `ports` that answer after `answer` seconds (`None`: nobody answers) and
/// hang up a second after their call is cut.
fn phones(ports: &str, answer: Option<f64>) -> String {
    let answer = answer.map(|s| format!("answer_after_s = {s}\n")).unwrap_or_default();
    format!("\n[[simulator.station]]\nports = \"{ports}\"\n{answer}hang_up_after_release_s = 1\n")
}

fn station(ext: &str) -> DeviceId {
    DeviceId::Station(ext.into())
}

/// The engine and the simulated card, run together in virtual time.
/// Keep what the loop saw: CSTA events with their time, card events, refusals, responses.
fn note(
    now: Instant,
    seen: Seen<'_>,
    events: &mut Vec<(Instant, CstaEvent)>,
    card: &mut Vec<CardEvent>,
    refused: &mut Vec<String>,
    responses: &mut Vec<(u32, Result<ServiceResult, CstaError>)>,
) {
    match seen {
        Seen::Card(ev) => card.push(ev.clone()),
        Seen::Output(Output::Event(e)) => events.push((now, e.clone())),
        Seen::Output(Output::Response { invoke, result, .. }) => responses.push((*invoke, result.clone())),
        Seen::Refused { command, error } => refused.push(format!("{command:?}: {error}")),
        Seen::Output(_) => {}
    }
}

struct Center {
    engine: Engine,
    sim: SimCard,
    rx: Receiver<CardEvent>,
    now: Instant,
    /// CSTA events with the virtual time they were emitted.
    events: Vec<(Instant, CstaEvent)>,
    /// Card events as the card reported them.
    card: Vec<CardEvent>,
    /// Commands the card refused.
    refused: Vec<String>,
    responses: Vec<(u32, Result<ServiceResult, CstaError>)>,
    invoke: u32,
}

impl Center {
    fn new(media: &str, extra: &str) -> Center {
        let text = INSTALLATION.replace("MEDIA", media) + extra;
        assert_eq!(hotline_cti::check_config(&text, "center.toml"), vec![]);
        let cards = hotline_drivers::config::parse(&text, "center.toml").expect("card tables are valid");
        let (tx, rx) = unbounded();
        let sim = SimCard::from_config(&cards, 1, tx).expect("simulator");
        let engine = Engine::new(Config::parse(&text, "center.toml").expect("engine tables are valid"));
        Center {
            engine,
            sim,
            rx,
            now: Instant::ZERO,
            events: Vec::new(),
            card: Vec::new(),
            refused: Vec::new(),
            responses: Vec::new(),
            invoke: 0,
        }
    }

    /// Hand the engine's commands to the card; keep its events and responses.
    fn carry(&mut self) {
        let Center { engine, sim, now, events, card, refused, responses, .. } = self;
        coupled::carry(engine, sim, *now, &mut |t, seen| note(t, seen, events, card, refused, responses));
    }

    /// Run to `until`, always handling the earliest pending thing: the card's deadline
    /// or the engine's.
    fn run_until(&mut self, until: Instant) {
        let Center { engine, sim, rx, now, events, card, refused, responses, .. } = self;
        coupled::run_until(engine, sim, rx, now, until, &mut |t, seen| {
            note(t, seen, events, card, refused, responses)
        })
        .expect("card poll");
    }

    fn run_to(&mut self, secs: f64) {
        self.run_until(Instant::from_micros((secs * 1e6) as u64));
    }

    fn request(&mut self, service: Service) -> Result<ServiceResult, CstaError> {
        self.invoke += 1;
        let invoke = self.invoke;
        self.engine.handle(self.now, Input::Request { client: 1, invoke, service });
        self.carry();
        self.responses.iter().rev().find(|(i, _)| *i == invoke).map(|(_, r)| r.clone()).expect("a response")
    }

    fn login(&mut self, agent: &str, ext: &str) {
        let request = AgentRequest::LogIn { station: Some(ext.into()), password: None };
        let r = self.request(Service::SetAgentState { agent: agent.into(), request });
        assert_eq!(r, Ok(ServiceResult::Ok), "login {agent} at {ext}");
    }

    fn state(&self, agent: &str) -> AgentState {
        self.engine.agent_state(agent).expect("configured agent").0
    }

    /// The callers (calling numbers) delivered to a station, in order.
    fn delivered_to(&self, ext: &str) -> Vec<String> {
        let dev = station(ext);
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                CstaEvent::Delivered { alerting, calling, .. } if *alerting == dev => Some(calling.clone()),
                _ => None,
            })
            .collect()
    }

    /// The callers a station answered, in order.
    fn answered_by(&self, ext: &str) -> Vec<String> {
        let dev = station(ext);
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                CstaEvent::Established { answering, calling, .. } if *answering == dev => {
                    Some(calling.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The call a caller's number was delivered with.
    fn call_of(&self, ani: &str) -> CallId {
        self.events
            .iter()
            .find_map(|(_, e)| match e {
                CstaEvent::Delivered { call, calling, .. } | CstaEvent::Established { call, calling, .. }
                    if calling == ani =>
                {
                    Some(*call)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no call from {ani}"))
    }

    /// When an agent event first happened.
    fn agent_event_at(&self, who: &str, f: impl Fn(&AgentEventKind) -> bool) -> Option<Instant> {
        self.events.iter().find_map(|(t, e)| match e {
            CstaEvent::Agent { agent, kind } if agent == who && f(kind) => Some(*t),
            _ => None,
        })
    }

    /// The trunk channel a caller's number was offered on.
    fn trunk_of(&self, ani: &str) -> ChannelId {
        self.card
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Offered { ch, ani: Some(a), .. } if a == ani => Some(*ch),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{ani} was never offered"))
    }

    fn finish(&self) {
        assert!(self.refused.is_empty(), "the card refused commands: {:#?}", self.refused);
        self.engine.check_invariants().unwrap();
    }
}

#[test]
fn a_vip_caller_jumps_ahead_of_two_ordinary_callers_waiting() {
    let talk = "\"talk 20\", \"hang_up\"";
    let extra = phones("1-8", Some(2.0))
        + &caller(2.0, "01000000001", SALES, talk)
        + &caller(4.0, "01000000002", SALES, talk)
        + &caller(5.0, "01000000003", SALES, talk)
        + &caller(8.0, VIP, SALES, talk);
    let mut c = Center::new("signalling", &extra);
    c.login("1001", "2001");
    c.run_to(10.0);
    // The only agent talks with the first caller; two wait, and the VIP goes first in line.
    assert_eq!(c.state("1001"), AgentState::Busy);
    assert_eq!(c.engine.queue_length("sales"), Some(3));
    let positions: Vec<usize> = c
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CstaEvent::Queued { position, cause: EventCause::NewCall, .. } => Some(*position),
            _ => None,
        })
        .collect();
    assert_eq!(positions.last(), Some(&1), "the VIP is queued first in line: {positions:?}");

    c.run_to(150.0);
    assert_eq!(
        c.answered_by("2001"),
        vec!["01000000001", VIP, "01000000002", "01000000003"],
        "the VIP is served next, then first come first served"
    );
    assert_eq!(c.sim.stats().caller_cleared, 4, "{:?}", c.sim.stats());
    assert_eq!(c.state("1001"), AgentState::Ready);
    assert_eq!(c.engine.call_count(), 0);
    c.finish();
}

#[test]
fn a_missed_call_returns_to_the_head_of_the_queue_and_three_misses_make_the_agent_not_ready() {
    // Nobody sits at 2001: the phone rings on. 2002 answers after 2 s.
    let talk = "\"talk 10\", \"hang_up\"";
    let extra = phones("1", None)
        + &phones("2-8", Some(2.0))
        + &caller(2.0, "01000000001", SALES, talk)
        + &caller(5.0, VIP, SALES, talk);
    let mut c = Center::new("signalling", &extra);
    c.login("1001", "2001");
    c.run_to(45.0);

    // The first caller rang 2001 three times (10 s ring timeout); the VIP who arrived
    // meanwhile never jumped ahead of the missed call.
    assert_eq!(c.delivered_to("2001"), vec!["01000000001"; 3]);
    let missed: Vec<Instant> = c
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            CstaEvent::Agent { agent, kind: AgentEventKind::Missed { .. } } if agent == "1001" => Some(*t),
            _ => None,
        })
        .collect();
    assert_eq!(missed.len(), 3, "{missed:?}");
    let first = c.call_of("01000000001");
    let requeued: Vec<usize> = c
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CstaEvent::Queued { call, position, cause: EventCause::Redirected, .. } if *call == first => {
                Some(*position)
            }
            _ => None,
        })
        .collect();
    assert!(!requeued.is_empty() && requeued.iter().all(|&p| p == 1), "back at the head: {requeued:?}");
    assert_eq!(c.engine.queue_length("sales"), Some(2), "both callers wait");
    assert_eq!(c.state("1001"), AgentState::NotReady("missed calls".into()));
    let not_ready = c
        .agent_event_at(
            "1001",
            |k| matches!(k, AgentEventKind::NotReady { reason } if reason == "missed calls"),
        )
        .expect("NotReady with the reason");
    assert_eq!(not_ready, missed[2], "made not ready by the third miss");
    assert_eq!(c.sim.handset_off_hook(ChannelId::fxs(1, 1)), Some(false), "nobody picked up at 2001");

    // A colleague logs in: the missed caller is served first, then the VIP.
    c.login("1002", "2002");
    c.run_to(90.0);
    assert_eq!(c.answered_by("2002"), vec!["01000000001", VIP]);
    assert_eq!(c.sim.stats().caller_cleared, 2);
    c.finish();
}

#[test]
fn a_caller_overflows_to_another_queue_when_the_maximum_wait_is_reached() {
    let extra = phones("1-8", Some(2.0)) + &caller(2.0, "02155556666", ORDERS, "\"talk 5\", \"hang_up\"");
    let mut c = Center::new("signalling", &extra);
    // The orders agent is on a break; the support agent is ready.
    c.login("1001", "2001");
    let request = AgentRequest::NotReady { reason: "break".into() };
    c.request(Service::SetAgentState { agent: "1001".into(), request }).unwrap();
    c.login("1004", "2004");
    c.run_to(60.0);

    let queued_at = |q: &str| {
        c.events.iter().find_map(|(t, e)| match e {
            CstaEvent::Queued { queue, .. } if queue == q => Some(*t),
            _ => None,
        })
    };
    let in_orders = queued_at("orders").expect("queued in orders");
    let overflow = c
        .events
        .iter()
        .find_map(|(t, e)| match e {
            CstaEvent::Diverted {
                from: DeviceId::Queue(a),
                to: DeviceId::Queue(b),
                cause: EventCause::Overflow,
                ..
            } if a == "orders" && b == "support" => Some(*t),
            _ => None,
        })
        .expect("diverted from orders to support");
    assert_eq!(overflow - in_orders, Duration::from_secs(30), "after the 30 s maximum wait");
    assert_eq!(queued_at("support"), Some(overflow));
    assert!(c.delivered_to("2001").is_empty(), "the agent on a break was not rung");
    assert_eq!(c.answered_by("2004"), vec!["02155556666"]);
    assert_eq!(c.sim.stats().caller_cleared, 1);
    c.finish();
}

#[test]
fn after_the_call_the_agent_works_after_call_and_is_ready_when_the_timer_ends() {
    let extra = phones("1-8", Some(2.0))
        + &caller(2.0, "01000000001", SUPPORT, "\"talk 15\", \"hang_up\"")
        // A second caller arrives during the wrap-up and waits for it to end.
        + &caller(22.0, "01000000002", SUPPORT, "\"talk 5\", \"hang_up\"");
    let mut c = Center::new("signalling", &extra);
    c.login("1004", "2004");
    c.run_to(15.0);
    assert_eq!(c.state("1004"), AgentState::Busy);
    c.run_to(24.0);
    let wrap = c
        .agent_event_at("1004", |k| matches!(k, AgentEventKind::WorkingAfterCall))
        .expect("after-call work when the caller hung up");
    let cleared = c
        .card
        .iter()
        .find(|e| matches!(e.kind, EventKind::Released { by: Side::Remote, .. }))
        .expect("the caller hung up")
        .time;
    assert_eq!(wrap, cleared, "wrap-up starts when the call ends");
    assert_eq!(c.state("1004"), AgentState::WorkingAfterCall);
    assert_eq!(c.engine.queue_length("support"), Some(1), "the second caller waits");
    assert_eq!(c.delivered_to("2004").len(), 1);

    c.run_to(60.0);
    let ready = c
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            CstaEvent::Agent { agent, kind: AgentEventKind::Ready } if agent == "1004" && *t > wrap => {
                Some(*t)
            }
            _ => None,
        })
        .next()
        .expect("ready after wrap-up");
    assert_eq!(ready - wrap, Duration::from_secs(10), "the queue's 10 s wrap-up timer");
    assert_eq!(c.answered_by("2004"), vec!["01000000001", "01000000002"]);
    c.finish();
}

#[test]
fn a_blacklisted_caller_is_rejected_with_its_cause_on_the_trunk() {
    let extra = phones("1-8", Some(2.0))
        + &caller(2.0, "13800000000", SALES, "\"talk 5\", \"hang_up\"")
        + &caller(4.0, "01000000001", SALES, "\"talk 5\", \"hang_up\"");
    let mut c = Center::new("signalling", &extra);
    c.login("1001", "2001");
    c.run_to(30.0);

    let trunk = c.trunk_of("13800000000");
    let released: Vec<(Cause, Side)> = c
        .card
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Released { ch, cause, by } if ch == trunk => Some((cause, by)),
            _ => None,
        })
        .collect();
    assert_eq!(released.first(), Some(&(Cause(21), Side::Local)), "rejected: call rejected (21)");
    let until_released =
        c.card.iter().take_while(|e| !matches!(e.kind, EventKind::Released { ch, .. } if ch == trunk));
    assert!(
        !until_released.into_iter().any(|e| e.kind == EventKind::Answered { ch: trunk }),
        "never answered"
    );
    assert!(c
        .events
        .iter()
        .any(|(_, e)| matches!(e, CstaEvent::Failed { cause, .. } if *cause == Cause(21))));
    assert!(!c.delivered_to("2001").contains(&"13800000000".to_string()));
    // Other callers are served as usual.
    assert_eq!(c.answered_by("2001"), vec!["01000000001"]);
    assert_eq!(c.sim.stats().inbound_answered, 1);
    c.finish();
}

#[test]
fn a_supervisor_whispers_to_the_agent_and_then_intercepts_the_call() {
    // Audio mode: what each person hears is found in the sound by their own detectors.
    let steps = "\"wait 10\", \"press 3\", \"wait 12\", \"press 5\", \"wait 20\", \"hang_up\"";
    let extra = phones("1-7", Some(1.0)) + &caller(1.0, "01066668888", SALES, steps);
    let mut c = Center::new("audio", &extra);
    let (agent, supervisor) = (ChannelId::fxs(1, 1), ChannelId::fxs(1, 8));
    c.login("1001", "2001");
    c.login("9001", "2008");
    c.run_to(5.0);
    assert_eq!(c.answered_by("2001"), vec!["01066668888"]);
    let caller = c.trunk_of("01066668888");

    // The supervisor lifts the handset and whispers: presses 7 (the agent alone hears
    // it); the caller presses 3 (both hear it).
    c.sim.go_off_hook(Instant::from_secs(5), supervisor).unwrap();
    c.run_to(6.0);
    let whisper = Service::Supervise {
        supervisor: "9001".into(),
        agent: "1001".into(),
        mode: SupervisionMode::Whisper,
    };
    assert_eq!(c.request(whisper), Ok(ServiceResult::Ok));
    c.sim.dial_from_station(Instant::from_secs(7), supervisor, "7").unwrap();
    c.run_to(16.0);
    assert_eq!(c.sim.heard(agent).unwrap().digits, "73", "the agent hears the supervisor and the caller");
    assert_eq!(c.sim.heard(supervisor).unwrap().digits, "3", "the supervisor hears the caller");
    assert_eq!(c.sim.heard(caller).unwrap().digits, "", "the caller does not hear the whisper");

    // Intercept: the agent drops, the caller and the supervisor talk.
    let intercept = Service::Supervise {
        supervisor: "9001".into(),
        agent: "1001".into(),
        mode: SupervisionMode::Intercept,
    };
    assert_eq!(c.request(intercept), Ok(ServiceResult::Ok));
    c.sim.dial_from_station(Instant::from_secs(20), supervisor, "9").unwrap();
    c.run_to(30.0);
    let modes: Vec<SupervisionMode> = c
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CstaEvent::Supervising { supervisor, mode, .. } if supervisor == "9001" => Some(*mode),
            _ => None,
        })
        .collect();
    assert_eq!(modes, vec![SupervisionMode::Whisper, SupervisionMode::Intercept]);
    assert!(c.events.iter().any(|(_, e)| matches!(e,
        CstaEvent::ConnectionCleared { releasing, .. } if *releasing == station("2001"))));
    assert!(c
        .card
        .iter()
        .any(|e| matches!(e.kind, EventKind::Released { ch, by: Side::Local, .. } if ch == agent)));
    assert_eq!(c.sim.heard(caller).unwrap().digits, "9", "the caller now hears the supervisor");
    assert_eq!(c.sim.heard(supervisor).unwrap().digits, "35", "and the supervisor the caller");
    assert_eq!(c.sim.heard(agent).unwrap().digits, "73", "the agent is out of the call");

    c.run_to(60.0);
    assert!(c.events.iter().any(|(_, e)| matches!(e, CstaEvent::CallCleared { .. })));
    assert_eq!(c.sim.stats().caller_cleared, 1);
    c.finish();
}
