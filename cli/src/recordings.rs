//! `hotline recordings list|play|export|tag|schedule`: the recording index in the store
//! and the files it points to.

use std::path::{Path, PathBuf};

use hotline_cti::report::{format_local, parse_local, Table};
use hotline_cti::store::{RecordingFilter, Store};
use hotline_drivers::dsp::wav;
use serde::Serialize;

use crate::exit_codes::{CliError, CliResult};
use crate::report::{existing, render, Format, Opened, RangeArgs, StoreArgs};

#[derive(Debug, clap::Subcommand)]
pub enum RecordingsCommand {
    /// The recording index, with filters.
    List {
        /// Only this agent's recordings.
        #[arg(long)]
        agent: Option<String>,
        /// Only this queue's recordings.
        #[arg(long)]
        queue: Option<String>,
        /// The caller's number.
        #[arg(long)]
        caller: Option<String>,
        /// Only recordings with this tag.
        #[arg(long)]
        tag: Option<String>,
        #[command(flatten)]
        range: RangeArgs,
        /// Table, CSV, JSON or an HTML page.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Play a recording on the sound card.
    Play {
        /// The recording's id (from `list`).
        id: u64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a recording as a 16-bit PCM WAV file (MP3 recordings are copied as they are).
    Export {
        /// The recording's id (from `list`).
        id: u64,
        /// The file to write.
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a recording's tag, and optionally its retention class.
    Tag {
        /// The recording's id (from `list`).
        id: u64,
        /// The tag, a word or a few.
        tag: String,
        /// `normal`, `complaint`, or a class the configuration names.
        #[arg(long)]
        retention: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Scheduled recordings: this agent, from this time, for this long.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum ScheduleCommand {
    /// Record every call this agent answers from this time, for this long.
    Add {
        /// The agent's id.
        #[arg(long)]
        agent: String,
        /// Local time: `YYYY-MM-DD HH:MM`.
        #[arg(long)]
        from: String,
        /// How long: `90m`, `2h`, `1d`, or seconds.
        #[arg(long = "for")]
        length: String,
        /// Why (shown in the list).
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The schedules, oldest first.
    List {
        /// Table, CSV, JSON or an HTML page.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a schedule by its id (from `list`).
    Remove {
        /// The schedule's id (from `list`).
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Serialize)]
struct Line {
    id: u64,
    started: String,
    length_s: f64,
    agent: String,
    queue: String,
    caller: String,
    reason: String,
    format: String,
    cut_short: bool,
    dropped: i64,
    retention: String,
    tag: String,
    path: String,
}

fn offset(o: &Opened) -> i32 {
    o.cfg.as_ref().map_or(0, |c| c.utc_offset_secs)
}

fn store_err(e: hotline_cti::store::StoreError) -> CliError {
    CliError::input(e.to_string())
}

pub fn run(cmd: RecordingsCommand) -> CliResult<String> {
    match cmd {
        RecordingsCommand::List { agent, queue, caller, tag, range, format, store } => {
            let o = store.open()?;
            let off = offset(&o);
            let (from, to) = range.resolve_if_given(off)?;
            let f = RecordingFilter { from_ms: from, to_ms: to, agent, queue, caller, tag };
            let rows: Vec<Line> = o
                .store
                .recordings(&f)
                .map_err(store_err)?
                .into_iter()
                .map(|r| Line {
                    id: r.id,
                    started: format_local(r.started_ms, off),
                    length_s: r.duration_ms.unwrap_or(0) as f64 / 1000.0,
                    agent: r.agent.unwrap_or_default(),
                    queue: r.queue.unwrap_or_default(),
                    caller: r.caller.unwrap_or_default(),
                    reason: r.reason,
                    format: r.format,
                    cut_short: r.cut_short,
                    dropped: r.dropped,
                    retention: r.retention,
                    tag: r.tag.unwrap_or_default(),
                    path: r.path,
                })
                .collect();
            Ok(render(&Table::from_rows(&rows), format))
        }
        RecordingsCommand::Play { id, store } => {
            let o = store.open()?;
            let r = o.store.recording(id).map_err(store_err)?;
            absent(&r, offset(&o))?;
            play(Path::new(&r.path))
        }
        RecordingsCommand::Export { id, out, store } => {
            let o = store.open()?;
            let r = o.store.recording(id).map_err(store_err)?;
            absent(&r, offset(&o))?;
            export(&r.path, &out)
        }
        RecordingsCommand::Tag { id, tag, retention, store } => {
            let o = store.open()?;
            o.store.tag_recording(id, Some(&tag), retention.as_deref()).map_err(store_err)?;
            Ok(format!("recording {id} tagged {tag:?}\n"))
        }
        RecordingsCommand::Schedule(s) => schedule(s),
    }
}

/// A recording the index knows has no file: say why.
fn absent(r: &hotline_cti::store::RecordingRow, off: i32) -> CliResult<()> {
    if let Some(why) = &r.failed {
        return Err(CliError::input(format!("recording {}: its file could not be written ({why})", r.id)));
    }
    if let Some(at) = r.deleted_ms {
        return Err(CliError::input(format!(
            "recording {}: deleted by retention at {}",
            r.id,
            format_local(at, off)
        )));
    }
    Ok(())
}

/// Play a recording through the sound card (a build with the `audio` feature); without
/// it, say how to get the audio instead.
pub fn play(path: &Path) -> CliResult<String> {
    existing(&path.to_string_lossy())?;
    let decoded = hotline_recorder::decode::decode_file(path).map_err(|e| CliError::input(e.to_string()))?;
    match hotline_recorder::decode::play(&decoded) {
        Ok(()) => Ok(format!("played {}\n", path.display())),
        Err(e) => Err(CliError::failure(format!(
            "{e}; `export` writes {} as a WAV file any player opens",
            path.display()
        ))),
    }
}

/// Write the recording at `src` to `out` as 16-bit PCM WAV (MP3 copied unchanged).
pub fn export(src: &str, out: &Path) -> CliResult<String> {
    let p = existing(src)?;
    if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp3")) {
        std::fs::copy(p, out).map_err(|e| CliError::failure(format!("{}: {e}", out.display())))?;
        return Ok(format!("copied {} to {}\n", p.display(), out.display()));
    }
    let (spec, samples) = wav::read_wav_file(p).map_err(|e| CliError::input(e.to_string()))?;
    let file =
        std::fs::File::create(out).map_err(|e| CliError::failure(format!("{}: {e}", out.display())))?;
    wav::write_wav(
        std::io::BufWriter::new(file),
        spec.sample_rate,
        spec.channels,
        wav::Encoding::Pcm16,
        &samples,
    )
    .map_err(|e| CliError::failure(format!("{}: {e}", out.display())))?;
    let secs = samples.len() as f64 / f64::from(spec.channels.max(1)) / f64::from(spec.sample_rate.max(1));
    Ok(format!("wrote {} ({secs:.1} s, {} channel(s))\n", out.display(), spec.channels))
}

/// `90m`, `2h`, `1d`, `45s` or plain seconds, in ms.
fn parse_length(s: &str) -> CliResult<i64> {
    let bad = || CliError::input(format!("--for {s:?}: expected a length like 90m, 2h, 1d or seconds"));
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    Ok(n * mult)
}

#[derive(Serialize)]
struct ScheduleLine {
    id: i64,
    agent: String,
    from: String,
    until: String,
    note: String,
}

fn schedule(cmd: ScheduleCommand) -> CliResult<String> {
    match cmd {
        ScheduleCommand::Add { agent, from, length, note, store } => {
            let o = store.open()?;
            if let Some(cfg) = &o.cfg {
                if !cfg.agents.iter().any(|a| a.id == agent) {
                    return Err(CliError::input(format!("no agent {agent:?} in the configuration")));
                }
            }
            let from_ms =
                parse_local(&from, offset(&o)).map_err(|e| CliError::input(format!("--from {e}")))?;
            let len = parse_length(&length)?;
            let id = o.store.add_schedule(&agent, from_ms, len, note.as_deref()).map_err(store_err)?;
            Ok(format!(
                "schedule {id}: agent {agent} from {} for {length}\n",
                format_local(from_ms, offset(&o))
            ))
        }
        ScheduleCommand::List { format, store } => {
            let o = store.open()?;
            let off = offset(&o);
            let rows: Vec<ScheduleLine> = list_schedules(&o.store)?
                .into_iter()
                .map(|s| ScheduleLine {
                    id: s.id,
                    agent: s.agent,
                    from: format_local(s.from_ms, off),
                    until: format_local(s.from_ms + s.duration_ms, off),
                    note: s.note.unwrap_or_default(),
                })
                .collect();
            Ok(render(&Table::from_rows(&rows), format))
        }
        ScheduleCommand::Remove { id, store } => {
            let o = store.open()?;
            o.store.remove_schedule(id).map_err(store_err)?;
            Ok(format!("schedule {id} removed\n"))
        }
    }
}

fn list_schedules(s: &Store) -> CliResult<Vec<hotline_cti::store::ScheduleRow>> {
    s.schedules().map_err(store_err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lengths_read_in_minutes_hours_and_days() {
        assert_eq!(super::parse_length("90m").unwrap(), 5_400_000);
        assert_eq!(super::parse_length("2h").unwrap(), 7_200_000);
        assert_eq!(super::parse_length("45").unwrap(), 45_000);
        assert!(super::parse_length("2x").is_err());
        assert!(super::parse_length("0h").is_err());
    }
}
