//! The libpri wrapper on its own: two controllers joined by hand, and what it does
//! with bad input. Run with `cargo test -p hotline-drivers --features pri`.

#![cfg(feature = "pri")]

use hotline_drivers::pri::q931::{self, Frame, MessageType};
use hotline_drivers::pri::{Node, PriEvent, PriLink, Setup};
use hotline_drivers::{Cause, ErrorKind};

/// Move frames both ways until both ends are quiet; each end's events.
fn pump(
    net: &mut PriLink,
    user: &mut PriLink,
    wire: &mut Vec<(Node, Frame)>,
) -> (Vec<PriEvent>, Vec<PriEvent>) {
    let (mut at_net, mut at_user) = (Vec::new(), Vec::new());
    loop {
        let (down, up) = (net.take_frames(), user.take_frames());
        if down.is_empty() && up.is_empty() {
            return (at_net, at_user);
        }
        for f in down {
            wire.push((Node::Network, q931::decode(&f)));
            at_user.extend(user.receive(&f));
        }
        for f in up {
            wire.push((Node::Cpe, q931::decode(&f)));
            at_net.extend(net.receive(&f));
        }
    }
}

#[test]
fn two_controllers_joined_by_hand_bring_up_the_link_and_carry_a_call() {
    let mut net = PriLink::new(Node::Network).unwrap();
    let mut user = PriLink::new(Node::Cpe).unwrap();
    let mut wire = Vec::new();
    let (n, u) = pump(&mut net, &mut user, &mut wire);
    assert_eq!((n, u), (vec![PriEvent::DChannelUp], vec![PriEvent::DChannelUp]));

    let ncall = net.setup(&Setup { timeslot: 17, called: "100", calling: Some("200") }).unwrap();
    let (_, u) = pump(&mut net, &mut user, &mut wire);
    let PriEvent::Ring { call: ucall, channel, called, calling, complete, .. } = u[0].clone() else {
        panic!("expected a SETUP, got {u:?}")
    };
    assert_eq!(
        (channel, called.as_str(), calling.as_deref(), complete),
        (Some(17), "100", Some("200"), true)
    );

    user.proceeding(ucall, 17).unwrap();
    user.answer(ucall, 17).unwrap();
    let (n, _) = pump(&mut net, &mut user, &mut wire);
    assert!(n.contains(&PriEvent::Proceeding { call: ncall, channel: Some(17) }), "{n:?}");
    assert!(n.contains(&PriEvent::Answer { call: ncall, channel: Some(17) }), "{n:?}");

    user.hangup(ucall, Cause::NORMAL_CLEARING).unwrap();
    let (n, _) = pump(&mut net, &mut user, &mut wire);
    assert!(matches!(n[..], [PriEvent::HangupReq { cause, .. }] if cause == Cause::NORMAL_CLEARING), "{n:?}");
    net.hangup(ncall, Cause::NORMAL_CLEARING).unwrap();
    let (n, u) = pump(&mut net, &mut user, &mut wire);
    assert!(matches!(u[..], [PriEvent::Hangup { .. }]), "RELEASE reached the user side: {u:?}");
    user.hangup(ucall, Cause::NORMAL_CLEARING).unwrap();
    let (n2, _) = pump(&mut net, &mut user, &mut wire);
    assert!(
        n.iter().chain(&n2).any(|e| matches!(e, PriEvent::HangupAck { .. })),
        "RELEASE COMPLETE reached the network side"
    );

    let q931: Vec<_> = wire
        .iter()
        .filter_map(|(from, f)| match f {
            Frame::Info { message, .. } => Some((*from, *message)),
            _ => None,
        })
        .collect();
    use MessageType as M;
    assert_eq!(
        q931,
        vec![
            (Node::Network, M::Setup),
            (Node::Cpe, M::CallProceeding),
            (Node::Cpe, M::Connect),
            (Node::Network, M::ConnectAcknowledge),
            (Node::Cpe, M::Disconnect),
            (Node::Network, M::Release),
            (Node::Cpe, M::ReleaseComplete),
        ]
    );
}

#[test]
fn a_call_that_is_gone_is_refused_with_an_error_not_a_crash() {
    let mut net = PriLink::new(Node::Network).unwrap();
    let mut user = PriLink::new(Node::Cpe).unwrap();
    let mut wire = Vec::new();
    pump(&mut net, &mut user, &mut wire);
    let call = net.setup(&Setup { timeslot: 1, called: "1", calling: None }).unwrap();
    net.destroy_call(call);
    let err = net.answer(call, 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.message().contains("CONNECT"), "{}", err.message());
}

#[test]
fn numbers_with_a_nul_byte_are_refused_before_reaching_libpri() {
    let mut net = PriLink::new(Node::Network).unwrap();
    let err = net.setup(&Setup { timeslot: 1, called: "12\u{0}3", calling: None }).unwrap_err();
    assert!(err.message().contains("called number"), "{}", err.message());
}

#[test]
fn garbage_on_the_d_channel_is_dropped_without_harm() {
    let mut net = PriLink::new(Node::Network).unwrap();
    let mut user = PriLink::new(Node::Cpe).unwrap();
    let mut wire = Vec::new();
    pump(&mut net, &mut user, &mut wire);
    let mut x: u32 = 12345;
    for len in [0usize, 1, 2, 3, 5, 9, 40, 300, 2000] {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let _ = user.receive(&junk);
        pump(&mut net, &mut user, &mut wire);
    }
    // The link still carries a call afterwards.
    net.setup(&Setup { timeslot: 2, called: "42", calling: None }).unwrap();
    let (_, u) = pump(&mut net, &mut user, &mut wire);
    assert!(u.iter().any(|e| matches!(e, PriEvent::Ring { channel: Some(2), .. })), "{u:?}");
}

#[test]
fn libpri_timers_are_reported_by_the_wall_clock() {
    let mut net = PriLink::new(Node::Network).unwrap();
    let mut user = PriLink::new(Node::Cpe).unwrap();
    pump(&mut net, &mut user, &mut Vec::new());
    // With the link up and idle, Q.921 T203 (10 s) runs on each end.
    let t = net.next_timer().expect("a timer runs");
    assert!(t <= std::time::Duration::from_secs(10), "{t:?}");
    assert!(net.run_timers().is_empty(), "nothing is due yet");
}

#[test]
fn a_pri_span_takes_our_commands_and_reports_channel_states() {
    use hotline_drivers::channel::ChannelState;
    use hotline_drivers::pri::PriSpan;
    use hotline_drivers::{ChannelId, Command, EventKind};
    let mut net = PriLink::new(Node::Network).unwrap();
    let mut span = PriSpan::new(3, 2, PriLink::new(Node::Cpe).unwrap()).unwrap();
    assert!(PriSpan::new(3, 2, PriLink::new(Node::Network).unwrap()).is_err(), "the card is the user side");
    // Join the span to the network by hand; collect what the span reports.
    let pump = |net: &mut PriLink, span: &mut PriSpan| {
        let mut seen = Vec::new();
        loop {
            let (down, up) = (net.take_frames(), span.take_frames());
            if down.is_empty() && up.is_empty() {
                return seen;
            }
            for f in down {
                seen.extend(span.receive(&f));
            }
            for f in up {
                let _ = net.receive(&f);
            }
        }
    };
    pump(&mut net, &mut span);
    assert!(span.is_up());
    let ch = ChannelId::e1(3, 2, 7);
    net.setup(&Setup { timeslot: 7, called: "100", calling: Some("200") }).unwrap();
    let seen = pump(&mut net, &mut span);
    assert!(matches!(&seen[..], [EventKind::Offered { ch: c, .. }] if *c == ch), "{seen:?}");
    assert_eq!(span.state(ch), ChannelState::Offered);
    span.execute(&Command::Accept { ch }).unwrap();
    assert_eq!(span.state(ch), ChannelState::Alerting);
    span.execute(&Command::Answer { ch }).unwrap();
    let seen = pump(&mut net, &mut span);
    assert_eq!(seen, vec![EventKind::Answered { ch }]);
    assert_eq!(span.state(ch), ChannelState::Connected);
    let other_span = ChannelId::e1(3, 1, 7);
    assert_eq!(
        span.execute(&Command::Answer { ch: other_span }).unwrap_err().kind(),
        ErrorKind::NoSuchChannel
    );
    assert_eq!(span.execute(&Command::StopPlay { ch }).unwrap_err().kind(), ErrorKind::Unsupported);
    span.execute(&Command::Release { ch, cause: Cause::NORMAL_CLEARING }).unwrap();
    assert_eq!(span.state(ch), ChannelState::Releasing);
}
