//! The thin loop that runs an [`Engine`] on one thread over crossbeam channels.
//!
//! Card backends and client connections send [`Input`]s on one bounded channel (many
//! senders); the loop hands each to the engine with the current time, sends every
//! output on the output channel, and sleeps until the next input or the engine's next
//! deadline. The engine owns all call state; nothing else touches it, so no locks.
//! The loop ends when every input sender is dropped or the output receiver is.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hotline_drivers::Instant;

use crate::engine::{Engine, Input, Output};

/// Where the loop gets the time. The engine never reads a clock; the runtime does.
pub trait Clock {
    fn now(&self) -> Instant;
}

/// Real time, counted from when the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct RealClock {
    start: std::time::Instant,
}

impl RealClock {
    pub fn new() -> Self {
        RealClock { start: std::time::Instant::now() }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for RealClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }
}

/// Run the engine until the inputs close (or nobody takes the outputs); returns the
/// engine so its final state can be inspected or saved.
pub fn run(
    mut engine: Engine,
    clock: &impl Clock,
    inputs: &Receiver<Input>,
    outputs: &Sender<Output>,
) -> Engine {
    loop {
        let input = match engine.next_deadline() {
            Some(at) => {
                let wait = at.saturating_duration_since(clock.now());
                match inputs.recv_timeout(wait) {
                    Ok(i) => i,
                    Err(RecvTimeoutError::Timeout) => Input::Timeout,
                    Err(RecvTimeoutError::Disconnected) => return engine,
                }
            }
            None => match inputs.recv() {
                Ok(i) => i,
                Err(_) => return engine,
            },
        };
        engine.handle(clock.now(), input);
        while let Some(o) = engine.poll_output() {
            if outputs.send(o).is_err() {
                return engine;
            }
        }
    }
}
