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
//! - [`link`]: the CTI link server (TCP, WebSocket, web pages) clients reach the
//!   engine through.
//! - [`runtime`]: the thin loop that runs the engine on a thread over crossbeam
//!   channels, with a real clock.
//! - [`cdr`]: call detail records built from the engine's outputs (sans-IO).
//! - [`recording`]: the recording policy (sans-IO): which calls are recorded, when.
//! - [`report`]: reports (queue, agent, IVR, missed calls, ...) computed from the store.
//! - [`store`]: the SQLite store (WAL, one writer thread, batched transactions) of
//!   call records, agent states, recordings, voicemail; read API for reports.

//!
//! ```
//! use hotline_cti::{Config, Engine, Input, Output};
//! use hotline_cti::csta::{AgentRequest, Service};
//! use hotline_drivers::{CardEvent, ChannelId, Command, EventKind, Instant};
//!
//! let toml = r#"
//! [[station]]
//! port = "1/fxs/1"
//! extension = "2001"
//!
//! [[queue]]
//! name = "sales"
//!
//! [[access_number]]
//! dnis = "4008001000"
//! target = "queue:sales"
//!
//! [[agent]]
//! id = "1001"
//! name = "Li Wei"
//! queues = { sales = 5 }
//! "#;
//! let mut engine = Engine::new(Config::parse(toml, "hotline.toml").expect("valid"));
//! let now = Instant::ZERO;
//! let login = AgentRequest::LogIn { station: Some("2001".into()), password: None };
//! engine.handle(now, Input::Request { client: 1, invoke: 1, service: Service::SetAgentState { agent: "1001".into(), request: login } });
//! let offered = EventKind::Offered {
//!     ch: ChannelId::e1(1, 1, 1),
//!     ani: Some("01066668888".into()),
//!     dnis: "4008001000".into(),
//!     category: Default::default(),
//! };
//! engine.handle(now, Input::Card(CardEvent { time: now, kind: offered }));
//! let mut rang = false;
//! while let Some(out) = engine.poll_output() {
//!     // A runtime sends commands to cards, events to clients, records to storage.
//!     if let Output::Command(Command::RingStation { ch, .. }) = out {
//!         rang = ch == ChannelId::fxs(1, 1);
//!     }
//! }
//! assert!(rang, "the agent's phone rings");
//! // Sleep until engine.next_deadline() or the next input, then hand it Input::Timeout.
//! ```

#![deny(unsafe_code)]

pub mod alarm;
pub mod cdr;
pub mod center;
pub mod config;
pub mod coupled;
pub mod csta;
pub mod ctl;
pub mod demo_day;
pub mod engine;
pub mod install;
pub mod link;
pub mod recording;
pub mod report;
pub mod report_html;
pub mod retention;
pub mod runtime;
pub mod serve;
pub mod sim_agents;
pub mod store;
pub mod traffic;

pub use config::{check_config, Config, Problem};
pub use csta::{AgentRequest, AgentState, CallId, CstaError, CstaEvent, DeviceId, Service, ServiceResult};
pub use engine::{Engine, Input, Output};
