//! A PRI span on the DAHDI backend (against DAHDI's in-process double): the card-side
//! libpri glue plugged in through the span-signalling seam, its D-channel joined to a
//! network-side libpri that the test drives. Run with `--features pri`.

#![cfg(all(feature = "pri", feature = "dahdi"))]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use hotline_drivers::channel::ChannelState;
use hotline_drivers::config;
use hotline_drivers::dahdi::double::{DahdiDouble, DoubleChannel};
use hotline_drivers::dahdi::{DahdiCard, DahdiOptions};
use hotline_drivers::event::Side;
use hotline_drivers::pri::dahdi::{DChannel, PriSignalling};
use hotline_drivers::pri::{Node, PriEvent, PriLink, Setup};
use hotline_drivers::signal::CallerCategory;
use hotline_drivers::{Card, CardEvent, Cause, ChannelId, Command, EventKind, Instant};
use hotline_sys::dahdi as sys;

/// The card's end of an in-memory D-channel; the test holds the other end.
#[derive(Debug, Clone, Default)]
struct Wire {
    to_card: Arc<Mutex<VecDeque<Vec<u8>>>>,
    from_card: Arc<Mutex<VecDeque<Vec<u8>>>>,
}

impl DChannel for Wire {
    fn read_frame(&mut self) -> hotline_drivers::error::Result<Option<Vec<u8>>> {
        Ok(self.to_card.lock().unwrap().pop_front())
    }
    fn write_frame(&mut self, frame: &[u8]) -> hotline_drivers::error::Result<()> {
        self.from_card.lock().unwrap().push_back(frame.to_vec());
        Ok(())
    }
}

struct Rig {
    card: DahdiCard<DoubleChannel>,
    dahdi: DahdiDouble,
    events: Receiver<CardEvent>,
    net: PriLink,
    wire: Wire,
    net_events: Vec<PriEvent>,
    now: Instant,
}

fn rig() -> Rig {
    let dahdi = DahdiDouble::new();
    dahdi.add_span(1, "TE2/0/1", "T2XXP (PCI) Card 0 Span 1");
    for ts in 1..=31 {
        let sig = if ts == 16 { sys::DAHDI_SIG_HARDHDLC } else { sys::DAHDI_SIG_CLEAR };
        dahdi.add_channel(ts, 1, ts, sig);
    }
    let text = "[[card]]\nid = 1\nbackend = \"dahdi\"\n[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n";
    let cfg = config::parse(text, "test.toml").unwrap().cards.remove(0);
    let (tx, events) = unbounded();
    let mut opener = dahdi.clone();
    let mut card = DahdiCard::open(&cfg, &DahdiOptions::numbered(&cfg), &mut opener, tx.clone()).unwrap();
    dahdi.advance_to(Instant::ZERO);
    let wire = Wire::default();
    card.set_span_signalling(1, Box::new(PriSignalling::new(1, 1, wire.clone(), tx).unwrap()));
    let net = PriLink::new(Node::Network).unwrap();
    Rig { card, dahdi, events, net, wire, net_events: Vec::new(), now: Instant::ZERO }
}

impl Rig {
    /// Run for `d`, 20 ms at a time, carrying D-channel frames both ways.
    fn run(&mut self, d: Duration) -> Vec<EventKind> {
        let end = self.now + d;
        let mut out = Vec::new();
        while self.now < end {
            self.now += Duration::from_millis(20);
            self.dahdi.advance_to(self.now);
            for f in self.net.take_frames() {
                self.wire.to_card.lock().unwrap().push_back(f);
            }
            self.card.poll(self.now).unwrap();
            let up: Vec<_> = self.wire.from_card.lock().unwrap().drain(..).collect();
            for f in up {
                let ev = self.net.receive(&f);
                // The network completes a RELEASE with RELEASE COMPLETE.
                if let Some(PriEvent::Hangup { call, cause, .. }) = &ev {
                    self.net.hangup(*call, *cause).unwrap();
                }
                self.net_events.extend(ev);
            }
            out.extend(self.events.try_iter().map(|e| e.kind));
        }
        out
    }
    fn state(&self, ch: ChannelId) -> ChannelState {
        self.card.channels().into_iter().find(|c| c.id == ch).unwrap().state
    }
}

#[test]
fn a_setup_on_a_dahdi_pri_span_is_offered_answered_and_cleared_through_libpri() {
    let mut r = rig();
    r.run(Duration::from_millis(100));
    assert!(r.net_events.contains(&PriEvent::DChannelUp), "{:?}", r.net_events);
    let ch = ChannelId::e1(1, 1, 5);
    let call =
        r.net.setup(&Setup { timeslot: 5, called: "4008001234", calling: Some("13800138000") }).unwrap();
    let ev = r.run(Duration::from_millis(100));
    assert_eq!(
        ev,
        vec![EventKind::Offered {
            ch,
            ani: Some("13800138000".into()),
            dnis: "4008001234".into(),
            category: CallerCategory::Ordinary
        }]
    );
    r.card.execute(r.now, Command::Answer { ch }).unwrap();
    let ev = r.run(Duration::from_millis(100));
    assert_eq!(ev, vec![EventKind::Answered { ch }]);
    assert!(r.net_events.contains(&PriEvent::Answer { call, channel: Some(5) }));
    assert_eq!(r.state(ch), ChannelState::Connected);
    r.net.hangup(call, Cause::NORMAL_CLEARING).unwrap();
    let ev = r.run(Duration::from_millis(100));
    assert!(
        ev.contains(&EventKind::Released { ch, cause: Cause::NORMAL_CLEARING, by: Side::Remote }),
        "{ev:?}"
    );
    assert_eq!(r.state(ch), ChannelState::Idle);
}

#[test]
fn an_outbound_call_on_a_dahdi_pri_span_carries_its_numbers_to_the_network() {
    let mut r = rig();
    r.run(Duration::from_millis(100));
    let ch = ChannelId::e1(1, 1, 17);
    r.card
        .execute(
            r.now,
            Command::PlaceCall {
                ch,
                called: "95555".into(),
                calling: Some("4008001234".into()),
                category: CallerCategory::Ordinary,
            },
        )
        .unwrap();
    r.run(Duration::from_millis(60));
    let ring = r.net_events.iter().find_map(|e| match e {
        PriEvent::Ring { call, channel, called, calling, .. } => {
            Some((*call, *channel, called.clone(), calling.clone()))
        }
        _ => None,
    });
    let (call, channel, called, calling) = ring.expect("the network got the SETUP");
    assert_eq!((channel, called.as_str(), calling.as_deref()), (Some(17), "95555", Some("4008001234")));
    r.net.proceeding(call, 17).unwrap();
    r.net.hangup(call, Cause::USER_BUSY).unwrap();
    let ev = r.run(Duration::from_millis(100));
    assert!(ev.contains(&EventKind::Released { ch, cause: Cause::USER_BUSY, by: Side::Remote }), "{ev:?}");
}
