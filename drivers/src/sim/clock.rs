//! Driving a card through time: [`VirtualClock`] jumps from deadline to deadline (an
//! 8-hour day in seconds, the same trace every run), [`RealTimeClock`] sleeps until
//! each deadline (demos). Both follow one loop: poll the card, hand every event to the
//! caller (who may command the card), repeat until nothing is due, then move time on.
//!
//! The simulator itself never reads a clock; only [`RealTimeClock`] does.

use crossbeam_channel::Receiver;

use crate::card::Card;
use crate::error::Result;
use crate::event::CardEvent;
use crate::time::Instant;

/// Run due work at `now` until the card is quiet; returns its next deadline.
fn settle<C: Card + ?Sized>(
    card: &mut C,
    events: &Receiver<CardEvent>,
    now: Instant,
    on_event: &mut impl FnMut(&mut C, Instant, CardEvent) -> Result<()>,
) -> Result<Option<Instant>> {
    loop {
        let next = card.poll(now)?;
        let mut handled = false;
        while let Ok(ev) = events.try_recv() {
            on_event(card, now, ev)?;
            handled = true;
        }
        if !handled {
            return Ok(next);
        }
    }
}

/// Virtual time: starts at a given instant and jumps to the card's next deadline.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Instant,
}

impl VirtualClock {
    pub fn new(start: Instant) -> Self {
        VirtualClock { now: start }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Run the card until `until`, handing each event to `on_event` with the current
    /// time. Ends with the clock at `until`.
    pub fn run_until<C: Card + ?Sized>(
        &mut self,
        card: &mut C,
        events: &Receiver<CardEvent>,
        until: Instant,
        mut on_event: impl FnMut(&mut C, Instant, CardEvent) -> Result<()>,
    ) -> Result<()> {
        loop {
            let next = settle(card, events, self.now, &mut on_event)?;
            if self.now >= until {
                return Ok(());
            }
            let target = next.unwrap_or(until).min(until);
            // A deadline at or before now was just run; never stand still.
            self.now = target.max(Instant::from_micros(self.now.as_micros() + 1));
        }
    }
}

/// Real time: microseconds since the clock was started, sleeping until deadlines.
#[derive(Debug, Clone)]
pub struct RealTimeClock {
    start: std::time::Instant,
}

impl RealTimeClock {
    pub fn start() -> Self {
        RealTimeClock { start: std::time::Instant::now() }
    }

    pub fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    /// As [`VirtualClock::run_until`], sleeping until each deadline.
    pub fn run_until<C: Card + ?Sized>(
        &mut self,
        card: &mut C,
        events: &Receiver<CardEvent>,
        until: Instant,
        mut on_event: impl FnMut(&mut C, Instant, CardEvent) -> Result<()>,
    ) -> Result<()> {
        loop {
            let now = self.now();
            let next = settle(card, events, now, &mut on_event)?;
            if now >= until {
                return Ok(());
            }
            let target = next.unwrap_or(until).min(until);
            let wait = target.saturating_duration_since(self.now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }
}
