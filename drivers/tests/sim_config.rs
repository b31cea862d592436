//! The installation file's card part: good files load, broken ones say where and what.

mod sim_support;

use std::path::Path;
use std::time::Duration;

use crossbeam_channel::unbounded;
use hotline_drivers::config::{self, Backend, CallerIdMode, Disconnect, MediaMode, PortRange, Signalling};
use hotline_drivers::sim::clock::VirtualClock;
use hotline_drivers::sim::{Fault, SimCard, Trunk};
use hotline_drivers::{Card, ChannelId, ErrorKind, EventKind, Instant};

fn example_path() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hotline.toml"))
}

fn err(text: &str) -> String {
    let e = config::parse(text, "site.toml").expect_err("the file is broken");
    assert_eq!(e.kind(), ErrorKind::Config);
    e.to_string()
}

const MINIMAL: &str = "[[card]]\nid = 1\n[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n";

#[test]
fn the_example_installation_file_loads_with_every_part() {
    let cfg = config::load(example_path()).expect("the example loads");
    let card = cfg.card(1).unwrap();
    assert_eq!(card.backend, Backend::Simulator);
    assert_eq!(card.tone_plan.name, "china");
    assert_eq!(card.ring_cadence, (Duration::from_secs(1), Duration::from_secs(4)));
    assert_eq!(
        card.spans.iter().map(|s| (s.span, s.signalling)).collect::<Vec<_>>(),
        vec![(1, Signalling::IsdnPri), (2, Signalling::ChinaNo1)]
    );
    let fxo = card.fxo.as_ref().unwrap();
    assert_eq!(
        (fxo.ports, fxo.caller_id, fxo.disconnect),
        (PortRange { first: 1, last: 4 }, CallerIdMode::FskV23, Disconnect::BusyTone)
    );
    assert_eq!(card.fxs.as_ref().unwrap().ports, PortRange { first: 1, last: 8 });
    assert_eq!(card.channel_ids().len(), 60 + 4 + 8);
    let sim = &cfg.simulator;
    assert_eq!((sim.media, sim.seed), (MediaMode::Audio, 42));
    assert_eq!(sim.inbound.len(), 2);
    assert_eq!(sim.inbound[0].2.trunk, Trunk::Span(1));
    assert_eq!(sim.inbound[1].2.trunk, Trunk::Channel(ChannelId::fxo(1, 1)));
    assert_eq!(sim.arrivals[0].rate_per_hour, 120.0);
    assert_eq!(sim.outbound.len(), 2);
    assert_eq!(sim.stations[0].1, PortRange { first: 1, last: 8 });
    assert!(
        matches!(sim.faults[0], (1, t, Fault::SpanAlarm { span: 2, .. }) if t == Instant::from_secs(3600))
    );
}

#[test]
fn the_example_world_runs_its_scripted_callers_with_real_audio() {
    let cfg = config::load(example_path()).unwrap();
    let (tx, rx) = unbounded();
    let mut sim = SimCard::from_config(&cfg, 1, tx).unwrap();
    assert!(sim.capabilities().audio);
    assert_eq!(sim.channels().len(), 72);
    let mut clock = VirtualClock::new(Instant::ZERO);
    let mut trace = Vec::new();
    let greeting = sim_support::prompt("example-greeting", 1.5);
    clock
        .run_until(&mut sim, &rx, Instant::from_secs(30), |card, now, ev| {
            match &ev.kind {
                EventKind::Offered { ch, .. } => card.answer(now, *ch)?,
                EventKind::Answered { ch } => card.play(
                    now,
                    *ch,
                    1,
                    hotline_drivers::command::PlaySource::Prompt(greeting.clone()),
                    false,
                )?,
                _ => {}
            }
            trace.push(ev);
            Ok(())
        })
        .unwrap();
    let offered: Vec<_> = trace
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Offered { ch, ani, .. } => Some((*ch, ani.clone())),
            _ => None,
        })
        .collect();
    assert!(offered.contains(&(ChannelId::e1(1, 1, 31), Some("13800138000".into()))));
    assert!(
        offered.contains(&(ChannelId::fxo(1, 1), Some("02188886666".into()))),
        "caller ID from FSK audio: {offered:?}"
    );
    let digits: String = trace
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Digit { digit, .. } => Some(digit),
            _ => None,
        })
        .collect();
    assert!(digits.contains('1') && digits.contains("2#"), "digits found in sound: {digits}");
}

#[test]
fn other_parts_of_the_file_are_left_to_their_readers() {
    let text = format!("{MINIMAL}\n[[queue]]\nname = \"sales\"\n[agents]\nanything = 1\n");
    let cfg = config::parse(&text, "site.toml").unwrap();
    assert_eq!(cfg.cards.len(), 1);
    assert_eq!(cfg.simulator.media, MediaMode::Audio, "defaults when there is no [simulator]");
}

#[test]
fn a_misspelt_key_inside_a_card_names_the_line_and_column() {
    let text = "[[card]]\nid = 1\n[card.fxo]\nports = \"1-4\"\ncallerid = \"dtmf\"\n";
    let e = err(text);
    assert!(e.starts_with("site.toml:5:1:"), "{e}");
    assert!(e.contains("callerid") && e.contains("caller_id"), "{e}");
}

#[test]
fn an_unknown_signalling_lists_the_valid_ones() {
    let e = err("[[card]]\nid = 1\n[[card.span]]\nspan = 1\nsignalling = \"r2\"\n");
    assert!(e.starts_with("site.toml:5:14:"), "{e}");
    assert!(e.contains("isdn_pri") && e.contains("ss7_isup") && e.contains("china_no1"), "{e}");
}

#[test]
fn duplicate_card_ids_spans_and_backwards_port_ranges_are_refused() {
    let e = err(&format!("{MINIMAL}[[card]]\nid = 1\n"));
    assert!(
        e.starts_with("site.toml:7:6:") && e.contains("card id 1 is used twice (first on line 2)"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}[[card.span]]\nspan = 1\nsignalling = \"ss7_isup\"\n"));
    assert!(e.starts_with("site.toml:7:8:") && e.contains("span 1 appears twice"), "{e}");
    let e = err("[[card]]\nid = 1\n[card.fxs]\nports = \"4-1\"\n");
    assert!(e.starts_with("site.toml:4:9:") && e.contains("the first port 4 is above the last 1"), "{e}");
    let e = err("[[card]]\nid = 1\n[card.fxs]\nports = \"one\"\n");
    assert!(e.contains("expected \"FIRST-LAST\" or \"PORT\""), "{e}");
}

#[test]
fn too_many_spans_or_a_span_number_out_of_range_is_refused() {
    let mut text = String::from("[[card]]\nid = 1\n");
    for n in 1..=17 {
        text += &format!("[[card.span]]\nspan = {n}\nsignalling = \"isdn_pri\"\n");
    }
    assert!(err(&text).contains("at most 16"), "{}", err(&text));
    let e = err("[[card]]\nid = 1\n[[card.span]]\nspan = 0\nsignalling = \"isdn_pri\"\n");
    assert!(e.contains("spans are numbered 1 to 16"), "{e}");
}

#[test]
fn a_broken_simulator_world_says_what_is_wrong() {
    let e = err(&format!("{MINIMAL}[simulator]\nmedia = \"video\"\n"));
    assert!(e.contains("audio") && e.contains("signalling"), "{e}");
    let e = err(&format!(
        "{MINIMAL}[[simulator.inbound]]\nat_s = 1\ntrunk = \"1/1\"\ncaller = {{ script = [\"wait_prompt\", \"dance\"] }}\n"
    ));
    assert!(e.starts_with("site.toml:9:"), "{e}");
    assert!(e.contains("unknown caller step \"dance\""), "{e}");
    let e = err(&format!("{MINIMAL}[[simulator.inbound]]\nat_s = 1\ntrunk = \"1/7\"\n"));
    assert!(e.contains("card 1 has no such trunk"), "{e}");
    let e = err(&format!("{MINIMAL}[[simulator.outbound]]\nprefix = \"0\"\n"));
    assert!(e.contains("gives no outcome a weight"), "{e}");
    let e = err(&format!("{MINIMAL}[[simulator.arrivals]]\ntrunk = \"1/1\"\nrate_per_hour = -3\n"));
    assert!(e.contains("rate_per_hour"), "{e}");
    let e = err("[[card]]\nid = 1\ntone_plan = \"mars\"\n");
    assert!(e.starts_with("site.toml:3:13:") && e.contains("china"), "{e}");
}

#[test]
fn a_tone_plan_can_be_spelled_out_in_the_file() {
    let text = r#"
[[card]]
id = 3
[card.tone_plan]
name = "custom"
dial = { freqs = [425.0] }
busy = { freqs = [425.0], cadence = [500, 500] }
ringback = { freqs = [425.0], cadence = [1000, 4000] }
congestion = { freqs = [425.0], cadence = [250, 250] }
call_waiting = { freqs = [425.0], cadence = [200, 5000] }
"#;
    let cfg = config::parse(text, "site.toml").unwrap();
    assert_eq!(cfg.cards[0].tone_plan.name, "custom");
    assert_eq!(cfg.cards[0].tone_plan.busy.cadence, vec![500, 500]);
}

#[test]
fn a_missing_file_is_named_in_the_error() {
    let e = config::load(Path::new("/nonexistent/hotline.toml")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().starts_with("/nonexistent/hotline.toml: cannot read"), "{e}");
}

#[test]
fn a_vendor_card_needs_its_sdk_path_and_other_cards_refuse_one() {
    let missing =
        hotline_drivers::config::parse("[[card]]\nid = 2\nbackend = \"synway\"\n", "site.toml").unwrap_err();
    assert!(missing.to_string().contains("site.toml:2"), "{missing}");
    assert!(missing.to_string().contains("needs sdk_path"), "{missing}");
    let cfg = hotline_drivers::config::parse(
        "[[card]]\nid = 2\nbackend = \"dialogic\"\nsdk_path = \"/usr/dialogic/lib/libgc.so\"\n",
        "site.toml",
    )
    .unwrap();
    assert_eq!(cfg.cards[0].sdk_path.as_deref(), Some(std::path::Path::new("/usr/dialogic/lib/libgc.so")));
    let refused =
        hotline_drivers::config::parse("[[card]]\nid = 1\nsdk_path = \"/x.so\"\n", "site.toml").unwrap_err();
    assert!(refused.to_string().contains("only for backend"), "{refused}");
}
