//! End to end: the engine driving the card simulator (signalling mode) in virtual time,
//! from one installation file that holds both the card tables and the engine's.

use std::time::Duration;

use crossbeam_channel::unbounded;
use hotline_cti::coupled::{self, Seen};
use hotline_cti::csta::{AgentEventKind, AgentRequest, CstaEvent, DeviceId, EventCause, Service};
use hotline_cti::{AgentState, Config, Engine, Input, Output};
use hotline_drivers::sim::SimCard;
use hotline_drivers::{ChannelId, Instant};

const INSTALLATION: &str = r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "isdn_pri"

[card.fxs]
ports = "1-4"

[simulator]
media = "signalling"
seed = 11

[[simulator.inbound]]
at_s = 2
trunk = "1/1"
ani = "01066668888"
dnis = "4008001000"
caller = { patience_s = 60, script = ["talk 30", "hang_up"] }

[[simulator.station]]
ports = "1-4"
answer_after_s = [1, 3]
hang_up_after_release_s = 1

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-4"
extension = "2001"

[[queue]]
name = "sales"
wrap_up = 5

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[agent]]
id = "1001"
name = "Li Wei"
queues = { sales = 5 }
"#;

/// Keep the CSTA events and the commands the card refused.
fn note(seen: Seen<'_>, events: &mut Vec<CstaEvent>, refused: &mut Vec<String>) {
    match seen {
        Seen::Output(Output::Event(e)) => events.push(e.clone()),
        Seen::Refused { command, error } => refused.push(format!("{command:?}: {error}")),
        _ => {}
    }
}

/// Hand the engine's commands to the card; keep the events; count refused commands.
fn carry(
    engine: &mut Engine,
    sim: &mut SimCard,
    now: Instant,
    events: &mut Vec<CstaEvent>,
    refused: &mut Vec<String>,
) {
    coupled::carry(engine, sim, now, &mut |_, seen| note(seen, events, refused));
}

/// Always handle the earliest pending thing, the card's deadline or the engine's,
/// from `now` for `span` of virtual time.
fn run(
    engine: &mut Engine,
    sim: &mut SimCard,
    rx: &crossbeam_channel::Receiver<hotline_drivers::CardEvent>,
    mut now: Instant,
    span: Duration,
    events: &mut Vec<CstaEvent>,
    refused: &mut Vec<String>,
) {
    let end = now + span;
    coupled::run_until(engine, sim, rx, &mut now, end, &mut |_, seen| note(seen, events, refused))
        .expect("card poll");
}

#[test]
fn a_caller_on_the_simulated_span_reaches_the_agent_phone_and_back_to_ready() {
    assert_eq!(hotline_cti::check_config(INSTALLATION, "e2e.toml"), vec![]);
    let cards = hotline_drivers::config::parse(INSTALLATION, "e2e.toml").expect("card tables are valid");
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).expect("simulator");
    let mut engine = Engine::new(Config::parse(INSTALLATION, "e2e.toml").unwrap());
    let (mut events, mut refused) = (Vec::new(), Vec::new());

    let now = Instant::ZERO;
    let login = AgentRequest::LogIn { station: Some("2001".into()), password: None };
    engine.handle(
        now,
        Input::Request {
            client: 1,
            invoke: 1,
            service: Service::SetAgentState { agent: "1001".into(), request: login },
        },
    );
    carry(&mut engine, &mut sim, now, &mut events, &mut refused);

    run(&mut engine, &mut sim, &rx, now, Duration::from_secs(120), &mut events, &mut refused);

    assert!(refused.is_empty(), "the card refused commands: {refused:#?}");
    let station = DeviceId::Station("2001".into());
    assert!(events.iter().any(
        |e| matches!(e, CstaEvent::Queued { queue, cause: EventCause::NewCall, .. } if queue == "sales")
    ));
    assert!(events
        .iter()
        .any(|e| matches!(e, CstaEvent::Delivered { alerting, .. } if *alerting == station)));
    assert!(events
        .iter()
        .any(|e| matches!(e, CstaEvent::Established { answering, .. } if *answering == station)));
    assert!(events.iter().any(|e| matches!(e, CstaEvent::CallCleared { .. })));
    let stats = sim.stats();
    assert_eq!((stats.inbound_offered, stats.inbound_answered, stats.caller_cleared), (1, 1, 1), "{stats:?}");
    let shown = &sim.heard(ChannelId::fxs(1, 1)).expect("station").caller_ids;
    assert!(
        shown.iter().any(|c| c.number.as_deref() == Some("01066668888")),
        "caller ID on the phone: {shown:?}"
    );
    assert_eq!(engine.agent_state("1001").unwrap().0, AgentState::Ready, "wrap-up over, phone hung up");
    assert_eq!(engine.call_count(), 0);
}

#[test]
fn an_agent_consults_a_colleague_by_hook_flash_and_hangs_up_to_transfer() {
    let text = INSTALLATION.replace("\"talk 30\"", "\"talk 90\"");
    let cards = hotline_drivers::config::parse(&text, "e2e.toml").unwrap();
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).unwrap();
    let mut engine = Engine::new(Config::parse(&text, "e2e.toml").unwrap());
    let (mut events, mut refused) = (Vec::new(), Vec::new());
    let login = AgentRequest::LogIn { station: Some("2001".into()), password: None };
    engine.handle(
        Instant::ZERO,
        Input::Request {
            client: 1,
            invoke: 1,
            service: Service::SetAgentState { agent: "1001".into(), request: login },
        },
    );
    carry(&mut engine, &mut sim, Instant::ZERO, &mut events, &mut refused);
    let (agent, colleague) = (ChannelId::fxs(1, 1), ChannelId::fxs(1, 2));
    // The caller arrives at 2 s and the agent answers within 3 s more; at 10 s the
    // agent flashes, dials 2002 (whose phone answers in 1-3 s), and hangs up at 20 s.
    sim.flash_hook(Instant::from_secs(10), agent, Duration::from_millis(300)).unwrap();
    sim.dial_from_station(Instant::from_secs(11), agent, "2002").unwrap();
    sim.go_on_hook(Instant::from_secs(20), agent).unwrap();
    run(&mut engine, &mut sim, &rx, Instant::ZERO, Duration::from_secs(150), &mut events, &mut refused);

    assert!(refused.is_empty(), "the card refused commands: {refused:#?}");
    let (a, c) = (DeviceId::Station("2001".into()), DeviceId::Station("2002".into()));
    assert!(events.iter().any(|e| matches!(e, CstaEvent::Held { holding, .. } if *holding == a)));
    assert!(events.iter().any(|e| matches!(e, CstaEvent::Established { answering, .. } if *answering == c)));
    assert!(events.iter().any(|e| matches!(e,
        CstaEvent::Transferred { transferring, transferred_to: Some(to), .. } if *transferring == a && *to == c)));
    assert!(
        events.iter().any(|e| matches!(e, CstaEvent::CallCleared { call, .. } if call.0 == 1)),
        "the caller's call ends"
    );
    let shown = &sim.heard(colleague).unwrap().caller_ids;
    assert!(
        shown.iter().any(|id| id.number.as_deref() == Some("2001")),
        "the colleague saw who consulted: {shown:?}"
    );
    assert_eq!(sim.stats().caller_cleared, 1);
    assert_eq!(engine.call_count(), 0);
}

/// An hour of Poisson traffic on an R2 span with six agents; phones answer after
/// `answer_after` seconds (a TOML range).
fn traffic_hour(answer_after: &str) -> (Engine, SimCard, Vec<CstaEvent>, Vec<String>) {
    let text = r#"
[[card]]
id = 1
backend = "simulator"

[[card.span]]
span = 1
signalling = "china_no1"

[card.fxs]
ports = "1-6"

[simulator]
media = "signalling"
seed = 5

[[simulator.arrivals]]
trunk = "1/1"
rate_per_hour = 150
dnis = ["4008001000", "4008002000"]
ani = "01XXXXXXXXX"
caller = { patience_s = [10, 90], script = ["talk 20-200", "hang_up"] }

[[simulator.station]]
ports = "1-6"
answer_after_s = ANSWER_AFTER
hang_up_after_release_s = 1

[[trunk_group]]
name = "pstn"
channels = ["1/1/1-1/1/31"]

[[station]]
port = "1/fxs/1-6"
extension = "2001"

[[queue]]
name = "sales"
ring_timeout = 12
max_misses = 2
wrap_up = 5
max_wait = 100
max_wait_action = "queue:support"
announce_every = 30

[[queue]]
name = "support"
wrap_up = 0
max_wait = 60
max_wait_action = "hangup:17"

[[access_number]]
dnis = "4008001000"
target = "queue:sales"

[[access_number]]
dnis = "4008002000"
target = "queue:support"
"#
    .replace("ANSWER_AFTER", answer_after)
        + &(1..=6)
            .map(|i| {
                format!(
                    "[[agent]]\nid = \"{i}\"\nname = \"A{i}\"\nqueues = {{ sales = {i}, support = 5 }}\n\n"
                )
            })
            .collect::<String>();
    let cards = hotline_drivers::config::parse(&text, "traffic.toml").unwrap();
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).unwrap();
    let mut engine = Engine::new(Config::parse(&text, "traffic.toml").unwrap());
    let (mut events, mut refused) = (Vec::new(), Vec::new());
    for i in 1..=6 {
        let login = AgentRequest::LogIn { station: Some(format!("{}", 2000 + i)), password: None };
        engine.handle(
            Instant::ZERO,
            Input::Request {
                client: 1,
                invoke: i,
                service: Service::SetAgentState { agent: i.to_string(), request: login },
            },
        );
    }
    carry(&mut engine, &mut sim, Instant::ZERO, &mut events, &mut refused);
    run(&mut engine, &mut sim, &rx, Instant::ZERO, Duration::from_secs(3600), &mut events, &mut refused);
    (engine, sim, events, refused)
}

#[test]
fn an_hour_of_random_traffic_on_the_simulator_and_the_card_refuses_nothing() {
    let (engine, sim, events, refused) = traffic_hour("[1, 8]");
    let stats = sim.stats().clone();
    assert!(
        refused.is_empty(),
        "the card refused {} commands, first: {:#?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    assert!(stats.inbound_offered > 100, "{stats:?}");
    assert!(stats.inbound_answered > 0 && stats.caller_cleared > 0, "{stats:?}");
    engine.check_invariants().unwrap();
    let answered = events
        .iter()
        .filter(|e| matches!(e, CstaEvent::Established { answering: DeviceId::Station(_), .. }))
        .count();
    println!("answered {answered}, stats {stats:?}");
    assert!(answered > 100, "agents answered {answered} calls");
    // Phones answer within the ring timeout, so no agent was ever made not ready.
    assert!(!events
        .iter()
        .any(|e| matches!(e, CstaEvent::Agent { kind: AgentEventKind::Missed { .. }, .. })));
    for i in 1..=6 {
        let state = engine.agent_state(&i.to_string()).unwrap().0;
        assert!(!matches!(state, AgentState::NotReady(_) | AgentState::LoggedOut), "agent {i} is {state:?}");
    }
}

#[test]
fn slow_phones_miss_calls_overflow_and_the_card_still_refuses_nothing() {
    let (engine, _sim, events, refused) = traffic_hour("[1, 25]");
    assert!(
        refused.is_empty(),
        "the card refused {} commands, first: {:#?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    engine.check_invariants().unwrap();
    assert!(events.iter().any(|e| matches!(e, CstaEvent::Agent { kind: AgentEventKind::Missed { .. }, .. })));
    assert!(events.iter().any(|e| matches!(e, CstaEvent::Diverted { cause: EventCause::Overflow, .. })));
}

#[test]
fn a_station_dials_out_past_a_span_in_alarm_on_the_simulator() {
    let text = INSTALLATION
        .replace(
            "[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n",
            "[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n\n[[card.span]]\nspan = 2\nsignalling = \"isdn_pri\"\n",
        )
        .replace("channels = [\"1/1/1-1/1/31\"]", "channels = [\"1/1/1-1/2/31\"]\ndial_prefix = \"9\"")
        .replace("at_s = 2", "at_s = 200");
    let cards = hotline_drivers::config::parse(&text, "e2e.toml").unwrap();
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).unwrap();
    let mut engine = Engine::new(Config::parse(&text, "e2e.toml").unwrap());
    let (mut events, mut refused) = (Vec::new(), Vec::new());
    use hotline_drivers::event::Alarm;
    use hotline_drivers::sim::{Fault, OutboundRule, Outcome, Spread};
    sim.set_outbound_rules(vec![OutboundRule::always(
        "0",
        Outcome::Answer { after: Spread::secs(2.0), talk: Spread::secs(10.0) },
    )]);
    sim.inject(Instant::from_secs(1), Fault::SpanAlarm { span: 1, alarm: Alarm::Los, duration: None });
    sim.dial_from_station(Instant::from_secs(5), ChannelId::fxs(1, 2), "9013800138000#").unwrap();
    run(&mut engine, &mut sim, &rx, Instant::ZERO, Duration::from_secs(60), &mut events, &mut refused);

    assert!(refused.is_empty(), "the card refused commands: {refused:#?}");
    let answered_on: Vec<ChannelId> = events
        .iter()
        .filter_map(|e| match e {
            CstaEvent::Established { answering: DeviceId::Trunk(ch), .. } => Some(*ch),
            _ => None,
        })
        .collect();
    assert_eq!(answered_on.len(), 1, "{events:#?}");
    assert!(
        matches!(answered_on[0].addr, hotline_drivers::ChannelAddr::E1 { span: 2, .. }),
        "went out on span 2: {answered_on:?}"
    );
    engine.check_invariants().unwrap();
}
