//! `libhotline`: the C ABI client library for CRMs, over the CTI link protocol.
//!
//! A CRM written in C (or anything that can call C) connects to a Hotline link server,
//! logs in as an agent, asks for agent states and call control, and receives CSTA
//! events and screen pops through a callback. The library speaks the wire protocol of
//! `docs/protocol.md` itself (TCP, one JSON object per line) and does not link the
//! engine: the protocol document is the whole contract.
//!
//! - [`client`]: the protocol client in safe Rust (threads, requests, events).
//! - [`event`]: `hotline_event`, the flat C view of one event.
//! - [`error`]: `hotline_result`, numbered result codes and their messages.
//! - [`log`]: the library's own log, to a callback the program sets.
//! - [`ffi`]: the exported `hotline_*` functions: pointer checks, the registry of
//!   live handles, `catch_unwind` on every entry point.
//!
//! The header `include/hotline.h` is generated from this crate by cbindgen
//! (`tests/header.rs` fails when it drifts); `docs/c-api.md` gives the rules.

pub mod client;
pub mod error;
pub mod event;
pub mod ffi;
pub mod log;

pub use client::{Client, Session};
pub use error::{hotline_result, Error};
pub use event::{hotline_event, hotline_event_kind, Event};
