//! Hotline's IVR: voice-menu flows as files, and a sans-IO interpreter that runs a
//! caller through them (prompts, menus, digit collection, say-number, recording,
//! HTTP lookups, voicemail, hand-back to the engine).
//!
//! - [`flow`]: the flow files (TOML) and their model; [`check`]: `hotline flow check`.
//! - [`interp`]: [`Ivr`], the interpreter: time passed in, outputs drained, no I/O.
//! - [`prompts`]: prompt sets (text in the repository, WAVs generated), optional TTS.
//! - [`say`]: numbers, digits, money, dates and times in English and Chinese.
//! - [`http`]: the HTTP node's requests and the worker that performs them.
//! - [`mock`]: a repair-status service for the demo and the tests.
//! - [`template`]: `{var}` templates.

pub mod check;
pub mod flow;
pub mod http;
pub mod interp;
pub mod mock;
pub mod prompts;
pub mod say;
pub mod template;

pub use flow::{Flows, Problem};
pub use http::{http_worker, HttpAnswer, HttpRequest, HttpResponse};
pub use interp::{Announcement, Ivr, IvrError, IvrOutput, RecordRequest, RecordResult, VoicemailLeft};
pub use prompts::{PromptSet, Prompts, SynthRequest, TtsConfig};
pub use say::{Lang, SayKind};
