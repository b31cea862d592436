//! `hotline flow check|try|prompts`: IVR flows at the desk.
//!
//! - `check FILE [--prompts DIR]`: every problem in a flow file (file:line:col).
//! - `try FILE [--flow NAME] [--digits "1 2 #"] [--prompts DIR] [--var k=v]`: run a flow
//!   against a simulated call in the terminal, printing each prompt's name and text; keys
//!   from `--digits` (one group each time the flow waits for keys) or typed on stdin
//!   (each character a key; an empty line lets the wait time out). HTTP nodes do real
//!   requests. Time is virtual: prompts take no time, waits end at once. Time-of-day
//!   branches see the wall clock now (or `--at`) in the installation's time zone
//!   (`--config`: its `[engine] utc_offset`, as `serve` does; UTC without), and each
//!   says which rule it took. With `--audio`
//!   (the `audio` feature) each prompt's WAV also plays through the sound card, and a
//!   line typed while a barge-in prompt plays stops it; without a sound device it says
//!   so and only prints.
//! - `prompts --set prompts/en.toml --out DIR [--tones]`: render a prompt set's missing
//!   WAVs with espeak-ng (or tones).

use std::collections::{BTreeMap, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use hotline_drivers::command::PlaySource;
use hotline_drivers::event::PlayEnd;
use hotline_drivers::{ChannelId, Command, EventKind, Instant};
use hotline_ivr::check::check;
use hotline_ivr::prompts::{generate, Voice};
use hotline_ivr::{Flows, Ivr, IvrOutput, PromptSet, Prompts, RecordResult};

use crate::exit_codes::{CliError, CliResult};

#[path = "speaker.rs"]
mod speaker;

#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Every problem in a flow file, with line, column and what was expected.
    Check {
        /// The flow file.
        file: PathBuf,
        /// The prompt set's WAV directory (default: only the set's text is checked).
        #[arg(long)]
        prompts: Option<PathBuf>,
    },
    /// Run a flow against a simulated call in the terminal.
    Try {
        /// The flow file.
        file: PathBuf,
        /// The flow to start (default: `main`, or the only flow).
        #[arg(long)]
        flow: Option<String>,
        /// Keys to press, one space-separated group each time the flow waits for keys
        /// ("1 12345# 0"); without it, keys are read from stdin.
        #[arg(long)]
        digits: Option<String>,
        /// The prompt set's WAV directory.
        #[arg(long)]
        prompts: Option<PathBuf>,
        /// Call variables, `name=value` (ani, dnis, vip, repair_base, ...).
        #[arg(long = "var")]
        vars: Vec<String>,
        /// Start the demo's mock repair-status service on a loopback port and pass its
        /// address as the variable `repair_base`.
        #[arg(long)]
        mock_repair: bool,
        /// Also play each prompt through the computer's sound card (a build with the
        /// `audio` feature; otherwise, or with no sound device, prompts are printed).
        #[arg(long)]
        audio: bool,
        /// The installation file whose time zone (`[engine] utc_offset`) time-of-day
        /// branches use, as `serve` does (default: UTC, serve's default).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Try the flow at this local time, `YYYY-MM-DD HH:MM` (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Render a prompt set's missing WAVs (espeak-ng, or tones without it).
    Prompts {
        /// The set's text file (prompts/en.toml).
        #[arg(long)]
        set: PathBuf,
        /// The directory of WAVs to fill.
        #[arg(long)]
        out: PathBuf,
        /// Tones instead of speech.
        #[arg(long)]
        tones: bool,
    },
}

pub fn run(cmd: FlowCommand) -> CliResult<String> {
    match cmd {
        FlowCommand::Check { file, prompts } => flow_check(&file, prompts.as_deref()),
        FlowCommand::Try { file, flow, digits, prompts, mut vars, mock_repair, audio, config, at } => {
            let clock = Clock::new(config.as_deref(), at.as_deref())?;
            let mock =
                match mock_repair {
                    true => Some(hotline_ivr::mock::RepairService::spawn("127.0.0.1:0").map_err(|e| {
                        CliError::failure(format!("cannot start the mock repair service: {e}"))
                    })?),
                    false => None,
                };
            if let Some(m) = &mock {
                vars.push(format!("repair_base={}", m.base_url()));
            }
            flow_try(&file, flow, digits, prompts.as_deref(), &vars, audio, &clock)
        }
        FlowCommand::Prompts { set, out, tones } => {
            let set = PromptSet::load(&set, &out).map_err(CliError::input)?;
            let voice = if tones { Voice::Tones } else { Voice::Auto };
            let g = generate(&set, &voice).map_err(CliError::failure)?;
            Ok(format!(
                "{}: {} made, {} already there, voice: {}\n",
                out.display(),
                g.made.len(),
                g.kept.len(),
                g.voice
            ))
        }
    }
}

/// Parse a flow file and find its prompt set (the file's `prompts` key, relative to it).
fn load(file: &Path, wav_dir: Option<&Path>) -> CliResult<(Flows, Option<Prompts>)> {
    let text = hotline_drivers::text::read_text_file(file, hotline_drivers::text::MAX_TEXT_FILE)
        .map_err(CliError::input)?;
    let origin = file.display().to_string();
    let flows = Flows::parse(&text, &origin).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        CliError::input(format!("{} problem(s):\n{}", lines.len(), lines.join("\n")))
    })?;
    let prompts = match &flows.prompt_set {
        Some(rel) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(rel);
            let dir = wav_dir.map(Path::to_path_buf).unwrap_or_else(|| path.with_extension(""));
            let set = PromptSet::load(&path, dir).map_err(|e| {
                let at = flows.prompt_set_at;
                CliError::input(format!("{origin}:{}:{}: prompt set {rel:?}: {e}", at.line, at.column))
            })?;
            Some(Prompts::new(set))
        }
        None => None,
    };
    Ok((flows, prompts))
}

fn flow_check(file: &Path, wav_dir: Option<&Path>) -> CliResult<String> {
    let (flows, prompts) = load(file, wav_dir)?;
    let problems = check(&flows, prompts.as_ref());
    if problems.is_empty() {
        let names: Vec<&str> = flows.flows.keys().map(String::as_str).collect();
        let note = if prompts.is_none() { " (no `prompts` key: prompts not checked)" } else { "" };
        return Ok(format!("{}: no problems found in flow(s) {}{note}\n", file.display(), names.join(", ")));
    }
    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    Err(CliError::input(format!("{} problem(s):\n{}", lines.len(), lines.join("\n"))))
}

/// The wall clock and time zone a tried flow sees, as `serve` gives them to its IVR.
struct Clock {
    unix_secs: i64,
    utc_offset_secs: i32,
    /// Where the offset came from, for the first line printed.
    zone: String,
}

impl Clock {
    fn new(config: Option<&Path>, at: Option<&str>) -> CliResult<Clock> {
        let (utc_offset_secs, zone) = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CliError::input(format!("cannot read {}: {e}", path.display())))?;
                let cfg = hotline_cti::Config::parse(&text, &path.display().to_string())
                    .map_err(|problems| CliError::input(hotline_cti::config::problem_lines(&problems)))?;
                (cfg.utc_offset_secs, format!("[engine] utc_offset of {}", path.display()))
            }
            None => (0, "UTC: no --config (serve without [engine] utc_offset)".to_string()),
        };
        let unix_secs = match at {
            Some(s) => hotline_cti::report::parse_local(s, utc_offset_secs)
                .map_err(|e| CliError::input(format!("--at {e}")))?
                .div_euclid(1000),
            None => hotline_cti::link::now_unix_ms().div_euclid(1000),
        };
        Ok(Clock { unix_secs, utc_offset_secs, zone })
    }

    /// The local time `since_start` after the start.
    fn local(&self, since_start: Duration) -> hotline_ivr::flow::LocalTime {
        hotline_ivr::flow::LocalTime::at(self.unix_secs + since_start.as_secs() as i64, self.utc_offset_secs)
    }
}

fn utc_offset_text(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

/// What a time-of-day node decides at `t`, in words: `Thu 15:02: rule 1 (every day
/// 07:00-21:00) -> menu`.
fn time_branch_text(
    flows: &Flows,
    flow: &str,
    node: &str,
    t: hotline_ivr::flow::LocalTime,
) -> Option<String> {
    let n = flows.flows.get(flow)?.nodes.get(node)?;
    let hotline_ivr::flow::NodeKind::Time { rules, default } = &n.kind else { return None };
    Some(match hotline_ivr::flow::time_branch(rules, t) {
        Some(i) => format!("{flow}.{node} at {t}: rule {} ({}) -> {}", i + 1, rules[i], rules[i].next.node),
        None => format!("{flow}.{node} at {t}: no rule open -> default {}", default.node),
    })
}

fn flow_try(
    file: &Path,
    flow: Option<String>,
    digits: Option<String>,
    wav_dir: Option<&Path>,
    vars: &[String],
    audio: bool,
    clock: &Clock,
) -> CliResult<String> {
    let (flows, prompts) = load(file, wav_dir)?;
    let flow = match flow {
        Some(f) => f,
        None if flows.flows.contains_key("main") || flows.flows.len() != 1 => "main".to_string(),
        None => flows.flows.keys().next().cloned().unwrap_or_default(),
    };
    let mut start_vars = BTreeMap::from([("ani".to_string(), "13800138000".to_string())]);
    for v in vars {
        let (k, val) = v
            .split_once('=')
            .ok_or_else(|| CliError::input(format!("bad --var {v:?}: expected name=value")))?;
        start_vars.insert(k.to_string(), val.to_string());
    }
    let prompts = prompts.unwrap_or_default();
    let shown = flows.clone();
    let mut ivr = Ivr::new(flows, prompts.clone());
    ivr.set_wall_clock(Instant::ZERO, clock.unix_secs, clock.utc_offset_secs);
    println!(
        "clock: {} {} ({})",
        hotline_cti::report::format_local(clock.unix_secs * 1000, clock.utc_offset_secs),
        utc_offset_text(clock.utc_offset_secs),
        clock.zone
    );
    let mut branches: Vec<String> = Vec::new();
    let tmp = std::env::temp_dir().join(format!("hotline-flow-try-{}", std::process::id()));
    ivr.set_record_dir(&tmp);
    let mut groups: Option<VecDeque<String>> =
        digits.map(|d| d.split_whitespace().map(str::to_string).collect());
    let ch = ChannelId::e1(1, 1, 1);
    let call = 1;
    let mut now = Instant::ZERO;
    let mut path: Vec<String> = Vec::new();
    let mut out = String::new();
    ivr.start(now, call, ch, &flow, start_vars).map_err(|e| CliError::input(e.to_string()))?;
    let speaker = match audio {
        true => match speaker::Speaker::open() {
            Ok(s) => {
                eprintln!("playing prompts on {}", s.description);
                Some(s)
            }
            Err(why) => {
                eprintln!("no sound: {why}; printing prompts instead");
                None
            }
        },
        false => None,
    };
    // Typed keys come from a reader thread, so a line typed while a prompt plays can
    // stop it (barge-in); `None` from the channel is the end of input.
    let lines = match &groups {
        Some(_) => None,
        None => {
            let (tx, rx) = crossbeam_channel::bounded::<String>(16);
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            Some(rx)
        }
    };
    // Inputs produced by the simulated call, handled in order.
    let mut pending: VecDeque<EventKind> = VecDeque::new();
    for _ in 0..10_000 {
        while let Some(o) = ivr.poll_output() {
            match o {
                IvrOutput::Command(Command::Play { id, source: PlaySource::Prompt(p), barge_in, .. }) => {
                    let name = p.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                    let text = prompts
                        .text(hotline_ivr::Lang::En, &name)
                        .or_else(|| prompts.text(hotline_ivr::Lang::Zh, &name));
                    println!("  [prompt {name}] {}", text.unwrap_or("(no text)"));
                    let mut reason = PlayEnd::Completed;
                    if let Some(sp) = &speaker {
                        match hotline_drivers::dsp::wav::read_prompt(&p) {
                            Ok(samples) => {
                                // Keys typed meanwhile are pressed at once (type-ahead);
                                // on a barge-in prompt they also stop it.
                                let mut typed: Option<String> = None;
                                let mut stop = || {
                                    if typed.is_none() {
                                        typed = lines.as_ref().and_then(|rx| rx.try_recv().ok());
                                    }
                                    barge_in && typed.is_some()
                                };
                                match sp.play(&samples, &mut stop) {
                                    Ok(true) => reason = PlayEnd::Stopped,
                                    Ok(false) => {}
                                    Err(e) => eprintln!("  [sound: {e}]"),
                                }
                                if let Some(keys) = typed {
                                    println!("  [keys {keys}]");
                                    for d in
                                        keys.chars().filter(|c| hotline_drivers::dsp::dtmf::is_dtmf_digit(*c))
                                    {
                                        pending.push_back(EventKind::Digit {
                                            ch,
                                            digit: d,
                                            start: now,
                                            end: now,
                                        });
                                    }
                                }
                            }
                            Err(e) => eprintln!("  [cannot play {}: {e}]", p.display()),
                        }
                    }
                    pending.push_back(EventKind::PlayFinished { ch, id, reason });
                }
                IvrOutput::Command(_) => {}
                IvrOutput::Node { flow, node, .. } => {
                    println!("-> {flow}.{node}");
                    if let Some(b) = time_branch_text(&shown, &flow, &node, clock.local(now - Instant::ZERO))
                    {
                        println!("  [time {b}]");
                        branches.push(b);
                    }
                    path.push(node);
                }
                IvrOutput::Http(req) => {
                    println!("  [http {} {}]", req.method, req.url);
                    let answer = hotline_ivr::http::perform(&req);
                    match &answer.result {
                        Ok(r) => println!("  [http {}] {}", r.status, r.body),
                        Err(e) => println!("  [http failed] {e}"),
                    }
                    ivr.handle_http(now, answer);
                }
                IvrOutput::Record(r) => {
                    println!("  [recording up to {} s: a simulated 3 s message]", r.max.as_secs());
                    let result = RecordResult::Recorded { path: r.path, duration: Duration::from_secs(3) };
                    ivr.handle_recorded(now, r.id, result);
                }
                IvrOutput::Synthesize(s) => {
                    println!("  [tts] {}", s.text);
                    ivr.handle_synthesized(now, s.id, Err("no TTS in flow try".into()));
                }
                IvrOutput::Voicemail(v) => println!("  [voicemail left in box {}]", v.mailbox),
                IvrOutput::Done { next, data, .. } => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    let vars: Vec<String> = data.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push_str(&format!(
                        "path: {}\nnext: {next}\nvars: {}\n",
                        path.join(" -> "),
                        vars.join(" ")
                    ));
                    for b in &branches {
                        out.push_str(&format!("time: {b}\n"));
                    }
                    return Ok(out);
                }
            }
        }
        if let Some(ev) = pending.pop_front() {
            ivr.handle_card(now, &ev);
            continue;
        }
        if ivr.waiting_for_keys(call) {
            let keys = match &mut groups {
                Some(g) => g.pop_front(),
                None => {
                    eprint!("keys> ");
                    lines.as_ref().and_then(|rx| rx.recv().ok()).filter(|l| !l.trim().is_empty())
                }
            };
            if let Some(keys) = keys {
                println!("  [keys {keys}]");
                for d in keys.chars().filter(|c| hotline_drivers::dsp::dtmf::is_dtmf_digit(*c)) {
                    ivr.handle_card(now, &EventKind::Digit { ch, digit: d, start: now, end: now });
                }
                continue;
            }
        }
        match ivr.next_deadline() {
            Some(d) => {
                println!("  [waited {:.1} s: time out]", (d - now).as_secs_f64());
                now = d.max(now);
                ivr.handle_timeout(now);
            }
            None => break,
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Err(CliError::failure(format!(
        "the flow stopped without handing the call on; path: {}",
        path.join(" -> ")
    )))
}
