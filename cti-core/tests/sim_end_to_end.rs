//! End to end: the engine driving the card simulator (signalling mode) in virtual time,
//! from one installation file that holds both the card tables and the engine's.

use std::time::Duration;

use crossbeam_channel::unbounded;
use hotline_cti::csta::{AgentRequest, CstaEvent, DeviceId, EventCause, Service};
use hotline_cti::{AgentState, Config, Engine, Input, Output};
use hotline_drivers::sim::SimCard;
use hotline_drivers::{Card, ChannelId, Instant};

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

/// Hand the engine's commands to the card; keep the events; count refused commands.
fn carry(
    engine: &mut Engine,
    sim: &mut SimCard,
    now: Instant,
    events: &mut Vec<CstaEvent>,
    refused: &mut Vec<String>,
) {
    while let Some(o) = engine.poll_output() {
        match o {
            Output::Command(c) => {
                let text = format!("{c:?}");
                if let Err(e) = sim.execute(now, c) {
                    refused.push(format!("{text}: {e}"));
                }
            }
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
}

#[test]
fn a_caller_on_the_simulated_span_reaches_the_agent_phone_and_back_to_ready() {
    assert_eq!(hotline_cti::check_config(INSTALLATION, "e2e.toml"), vec![]);
    let cards = hotline_drivers::config::parse(INSTALLATION, "e2e.toml").expect("card tables are valid");
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cards, 1, tx).expect("simulator");
    let mut engine = Engine::new(Config::parse(INSTALLATION, "e2e.toml").unwrap());
    let (mut events, mut refused) = (Vec::new(), Vec::new());

    let mut now = Instant::ZERO;
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

    // Always handle the earliest pending thing: the card's deadline or the engine's.
    let end = Instant::ZERO + Duration::from_secs(120);
    loop {
        let card_next = loop {
            let next = sim.poll(now).expect("card poll");
            let mut any = false;
            while let Ok(ev) = rx.try_recv() {
                any = true;
                engine.handle(now, Input::Card(ev));
                carry(&mut engine, &mut sim, now, &mut events, &mut refused);
            }
            if !any {
                break next;
            }
        };
        if now >= end {
            break;
        }
        let next = [card_next, engine.next_deadline(), Some(end)].into_iter().flatten().min().expect("end");
        now = next.max(Instant::from_micros(now.as_micros() + 1));
        engine.handle(now, Input::Timeout);
        carry(&mut engine, &mut sim, now, &mut events, &mut refused);
    }

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
