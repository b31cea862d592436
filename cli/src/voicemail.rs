//! `hotline voicemail list|play|export|note`: messages callers left, from the store.
//! Playing or exporting a message marks it listened to.

use std::path::PathBuf;

use hotline_cti::report::{format_local, Table};
use hotline_cti::store::VoicemailFilter;
use serde::Serialize;

use crate::exit_codes::{CliError, CliResult};
use crate::recordings;
use crate::report::{render, Format, RangeArgs, StoreArgs};

#[derive(Debug, clap::Subcommand)]
pub enum VoicemailCommand {
    /// Messages, oldest first.
    List {
        /// Only this mailbox's messages.
        #[arg(long)]
        mailbox: Option<String>,
        /// Only messages left by callers of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only messages from this number.
        #[arg(long)]
        caller: Option<String>,
        /// Only messages nobody has listened to.
        #[arg(long)]
        unheard: bool,
        #[command(flatten)]
        range: RangeArgs,
        /// Table, CSV, JSON or an HTML page.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Play a message on the sound card (marks it listened to).
    Play {
        /// The message's id (from `list`).
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a message as a 16-bit PCM WAV file (marks it listened to).
    Export {
        /// The message's id (from `list`).
        id: i64,
        /// The file to write.
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set the note on a message.
    Note {
        /// The message's id (from `list`).
        id: i64,
        /// The note, e.g. "called back".
        text: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Serialize)]
struct Line {
    id: i64,
    left: String,
    caller: String,
    access_number: String,
    queue: String,
    mailbox: String,
    length_s: f64,
    listened: bool,
    note: String,
}

fn store_err(e: hotline_cti::store::StoreError) -> CliError {
    CliError::input(e.to_string())
}

pub fn run(cmd: VoicemailCommand) -> CliResult<String> {
    match cmd {
        VoicemailCommand::List { mailbox, queue, caller, unheard, range, format, store } => {
            let o = store.open()?;
            let off = o.cfg.as_ref().map_or(0, |c| c.utc_offset_secs);
            let (from, to) = range.resolve_if_given(off)?;
            let f = VoicemailFilter { from_ms: from, to_ms: to, mailbox, queue, caller, unheard };
            let rows: Vec<Line> = o
                .store
                .voicemails(&f)
                .map_err(store_err)?
                .into_iter()
                .map(|v| Line {
                    id: v.id,
                    left: format_local(v.left_ms, off),
                    caller: v.caller.unwrap_or_default(),
                    access_number: v.access.unwrap_or_default(),
                    queue: v.queue.unwrap_or_default(),
                    mailbox: v.mailbox,
                    length_s: v.duration_ms as f64 / 1000.0,
                    listened: v.listened,
                    note: v.note.unwrap_or_default(),
                })
                .collect();
            Ok(render(&Table::from_rows(&rows), format))
        }
        VoicemailCommand::Play { id, store } => {
            let o = store.open()?;
            let v = o.store.voicemail(id).map_err(store_err)?;
            let out = recordings::play(std::path::Path::new(&v.path))?;
            o.store.mark_voicemail_listened(id).map_err(store_err)?;
            Ok(out)
        }
        VoicemailCommand::Export { id, out, store } => {
            let o = store.open()?;
            let v = o.store.voicemail(id).map_err(store_err)?;
            let msg = recordings::export(&v.path, &out)?;
            o.store.mark_voicemail_listened(id).map_err(store_err)?;
            Ok(msg)
        }
        VoicemailCommand::Note { id, text, store } => {
            let o = store.open()?;
            o.store.set_voicemail_note(id, &text).map_err(store_err)?;
            Ok(format!("voicemail {id}: note set\n"))
        }
    }
}
