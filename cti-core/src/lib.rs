//! Hotline's CTI engine: the heart of the call center.
//!
//! It turns card events into calls, queues and agents, and client requests into card
//! commands. It is a sans-IO state machine (see the workspace's STYLE notes, pattern 3):
//! [`Engine::handle`] takes the time and one [`Input`] (a card event, a client's CSTA
//! service request, or a timer expiry); the caller then drains [`Engine::poll_output`]
//! (card commands, CSTA events, service responses, records) and sleeps until
//! [`Engine::next_deadline`]. The engine reads no clock, does no I/O and takes no locks,
//! so the same code runs a live center and an 8-hour simulated day in seconds.
//!
//! - [`config`]: the engine's part of the installation file and `check_config`.
//! - [`csta`]: the CSTA call model clients see: devices, calls, connection states,
//!   services, events, errors, records.
//! - [`engine`]: the engine: inbound routing, the ACD, agents, stations, services,
//!   supervision.
//! - [`traffic`]: traffic simulation through the engine in virtual time
//!   (`hotline sim traffic`), and the Erlang C formula it agrees with.
//! - [`runtime`]: the thin loop that runs the engine on a thread over crossbeam
//!   channels, with a real clock.

#![deny(unsafe_code)]

pub mod config;
pub mod csta;
pub mod engine;
pub mod runtime;
pub mod traffic;

pub use config::{check_config, Config, Problem};
pub use csta::{AgentRequest, AgentState, CallId, CstaError, CstaEvent, DeviceId, Service, ServiceResult};
pub use engine::{Engine, Input, Output};
