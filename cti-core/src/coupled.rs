//! The engine and a card driven together in virtual time: always handle the earliest
//! pending thing, the card's next deadline or the engine's, so an hour of traffic runs
//! in milliseconds and every run with the same seed is the same. `hotline sim traffic`,
//! `hotline demo --fast` (the engine inside the center, [`crate::demo_day`]) and the
//! scenario tests on the simulator use it; [`crate::runtime`] is the real-time loop.

use crossbeam_channel::Receiver;
use hotline_drivers::{Card, CardEvent, Command, Instant};

use crate::engine::{Engine, Input, Output};

/// What the loop drives: the engine itself, or something around it that hands card
/// events to the engine and its commands to the card.
pub trait Driven {
    /// What comes out; the commands among it go to the card.
    type Output;
    fn handle(&mut self, now: Instant, input: Input);
    fn next_deadline(&self) -> Option<Instant>;
    fn poll_output(&mut self) -> Option<Self::Output>;
    /// The card command an output is, if it is one.
    fn command(output: &Self::Output) -> Option<&Command>;
}

impl Driven for Engine {
    type Output = Output;
    fn handle(&mut self, now: Instant, input: Input) {
        Engine::handle(self, now, input)
    }
    fn next_deadline(&self) -> Option<Instant> {
        Engine::next_deadline(self)
    }
    fn poll_output(&mut self) -> Option<Output> {
        Engine::poll_output(self)
    }
    fn command(output: &Output) -> Option<&Command> {
        match output {
            Output::Command(c) => Some(c),
            _ => None,
        }
    }
}

/// What the loop saw, for the caller to note.
#[derive(Debug)]
pub enum Seen<'a, O = Output> {
    /// A card event, just before the engine handles it.
    Card(&'a CardEvent),
    /// An engine output; a command is handed to the card right after.
    Output(&'a O),
    /// A command the card refused; the engine is told with `Input::CommandFailed`.
    Refused { command: &'a Command, error: &'a hotline_drivers::Error },
}

/// Hand the engine's outputs to the card at `now`.
pub fn carry<D: Driven, C: Card + ?Sized>(
    engine: &mut D,
    card: &mut C,
    now: Instant,
    seen: &mut impl FnMut(Instant, Seen<'_, D::Output>),
) {
    while let Some(o) = engine.poll_output() {
        seen(now, Seen::Output(&o));
        if let Some(c) = D::command(&o) {
            if let Err(e) = card.execute(now, c.clone()) {
                seen(now, Seen::Refused { command: c, error: &e });
                engine.handle(now, Input::CommandFailed { command: c.clone(), kind: e.kind() });
            }
        }
    }
}

/// Run from `*now` to `until`, leaving `*now` at `until`. Returns when the card or the
/// engine next needs attention (`None`: neither has anything pending).
pub fn run_until<D: Driven, C: Card + ?Sized>(
    engine: &mut D,
    card: &mut C,
    events: &Receiver<CardEvent>,
    now: &mut Instant,
    until: Instant,
    seen: &mut impl FnMut(Instant, Seen<'_, D::Output>),
) -> Result<Option<Instant>, hotline_drivers::Error> {
    loop {
        // Let the card catch up to `now`, handing the engine what it reports, until quiet.
        let card_next = loop {
            let next = card.poll(*now)?;
            let mut any = false;
            while let Ok(ev) = events.try_recv() {
                any = true;
                seen(*now, Seen::Card(&ev));
                engine.handle(*now, Input::Card(ev));
                carry(engine, card, *now, seen);
            }
            if !any {
                break next;
            }
        };
        let next = [card_next, engine.next_deadline()].into_iter().flatten().min();
        if *now >= until {
            return Ok(next);
        }
        // Move on by at least a microsecond so that a deadline at `now` cannot spin.
        *now = next.unwrap_or(until).min(until).max(Instant::from_micros(now.as_micros() + 1));
        engine.handle(*now, Input::Timeout);
        carry(engine, card, *now, seen);
    }
}
