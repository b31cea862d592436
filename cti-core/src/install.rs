//! The installation file's `[ivr]` table: which flow files run, where their prompts
//! and voicemail go, variables every session starts with, and the demo's mock repair
//! service. Relative paths are relative to the directory `hotline` runs in.
//!
//! ```toml
//! [ivr]
//! flows = ["examples/flows/demo.toml"]  # flow files (TOML); their `prompts` key names the prompt text
//! prompt_dir = "var/prompts"             # generated prompt WAVs, one directory per language
//! voice = "auto"                         # "auto" (espeak-ng, else tones), "espeak-ng", "tones"
//! voicemail_dir = "var/voicemail"
//! vars = { company = "Hotline" }
//! mock_repair = "127.0.0.1:0"            # start the demo's repair-status service (sets repair_base)
//! ```

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use hotline_ivr::prompts::{generate, Voice};
use hotline_ivr::{Flows, Ivr, PromptSet, Prompts};
use serde::Deserialize;
use toml::Spanned;

use crate::config::Problem;

#[derive(Deserialize)]
struct Root {
    ivr: Option<RawIvr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIvr {
    flows: Spanned<Vec<Spanned<String>>>,
    prompt_dir: Option<String>,
    voice: Option<Spanned<String>>,
    voicemail_dir: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    mock_repair: Option<Spanned<String>>,
    /// Speak `tts:` prompts with espeak-ng (cached under prompt_dir/tts).
    #[serde(default)]
    tts: bool,
}

/// The IVR as configured, ready to start.
#[derive(Debug)]
pub struct IvrSetup {
    pub flows: Flows,
    pub prompts: Prompts,
    pub voicemail_dir: PathBuf,
    pub vars: BTreeMap<String, String>,
    /// Where to start the mock repair-status service, if at all.
    pub mock_repair: Option<String>,
    /// How the prompts were made ("espeak-ng", "tones (...)"), per language.
    pub voices: Vec<String>,
    pub tts: Option<hotline_ivr::TtsConfig>,
}

impl IvrSetup {
    /// The interpreter for these flows (starts the mock service if asked and points
    /// `repair_base` at it; the service runs until the process ends).
    pub fn build(mut self) -> Result<(Ivr, BTreeMap<String, String>), String> {
        if let Some(addr) = &self.mock_repair {
            let svc = hotline_ivr::mock::RepairService::spawn(addr)
                .map_err(|e| format!("cannot start the mock repair service on {addr}: {e}"))?;
            self.vars.insert("repair_base".into(), format!("http://{}", svc.addr()));
            // It serves for the life of the process.
            std::mem::forget(svc);
        }
        let mut ivr = Ivr::new(self.flows, self.prompts);
        ivr.set_record_dir(&self.voicemail_dir);
        Ok((ivr, self.vars))
    }
}

fn problem(text: &str, origin: &str, span: Range<usize>, message: String) -> Problem {
    let offset = span.start.min(text.len());
    let line = text[..offset].matches('\n').count() + 1;
    let column = text[..offset].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Problem { origin: origin.to_string(), line, column, message }
}

/// Read `[ivr]`, load and check its flows, and make any prompt WAVs that are missing.
/// `Ok(None)`: no `[ivr]` table.
pub fn ivr_setup(text: &str, origin: &str) -> Result<Option<IvrSetup>, Vec<Problem>> {
    setup(text, origin, true)
}

/// Every problem of the `[ivr]` table and its flows, without making prompts
/// (`hotline config check`).
pub fn check_ivr(text: &str, origin: &str) -> Vec<Problem> {
    setup(text, origin, false).err().unwrap_or_default()
}

fn setup(text: &str, origin: &str, make_prompts: bool) -> Result<Option<IvrSetup>, Vec<Problem>> {
    let root: Root = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (span, message) = hotline_drivers::text::toml_error(text, &e);
            return Err(vec![problem(text, origin, span, format!("in [ivr]: {message}"))]);
        }
    };
    let Some(raw) = root.ivr else { return Ok(None) };
    let mut problems = Vec::new();
    let voice = match raw.voice.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("auto") => Voice::Auto,
        Some("tones") => Voice::Tones,
        Some("espeak-ng") => Voice::Speech { command: "espeak-ng".into() },
        Some(other) => {
            let span = raw.voice.as_ref().map(|v| v.span()).unwrap_or(0..0);
            problems.push(problem(
                text,
                origin,
                span,
                format!("unknown voice {other:?}: expected auto, espeak-ng or tones"),
            ));
            Voice::Auto
        }
    };
    let prompt_dir = PathBuf::from(raw.prompt_dir.unwrap_or_else(|| "var/prompts".into()));
    let mut flows: Option<Flows> = None;
    let mut prompts = Prompts::default();
    let mut voices = Vec::new();
    if raw.flows.get_ref().is_empty() {
        problems.push(problem(
            text,
            origin,
            raw.flows.span(),
            "flows is empty: expected at least one flow file".into(),
        ));
    }
    for f in raw.flows.get_ref() {
        let path = Path::new(f.get_ref());
        let at = |m: String| problem(text, origin, f.span(), m);
        let body = match hotline_drivers::text::read_text_file(path, hotline_drivers::text::MAX_TEXT_FILE) {
            Ok(b) => b,
            Err(e) => {
                problems.push(at(format!("cannot read flow file {e}")));
                continue;
            }
        };
        let parsed = match Flows::parse(&body, &path.display().to_string()) {
            Ok(p) => p,
            Err(ps) => {
                problems.extend(ps.into_iter().map(|p| Problem {
                    origin: p.origin,
                    line: p.line,
                    column: p.column,
                    message: p.message,
                }));
                continue;
            }
        };
        if let Some(rel) = &parsed.prompt_set {
            let set_path = path.parent().unwrap_or(Path::new(".")).join(rel);
            let lang_dir = prompt_dir.join(set_path.file_stem().unwrap_or_default());
            match PromptSet::load(&set_path, &lang_dir) {
                Ok(set) => {
                    if make_prompts {
                        match generate(&set, &voice) {
                            Ok(g) => voices.push(format!("{}: {}", set_path.display(), g.voice)),
                            Err(e) => problems
                                .push(at(format!("cannot make the prompts of {}: {e}", set_path.display()))),
                        }
                    }
                    prompts = prompts.with(set);
                }
                Err(e) => {
                    let p = parsed.prompt_set_at;
                    problems.push(Problem {
                        origin: path.display().to_string(),
                        line: p.line,
                        column: p.column,
                        message: format!("prompt set {rel:?}: {e}"),
                    })
                }
            }
        }
        match flows.as_mut() {
            None => flows = Some(parsed),
            Some(all) => {
                if let Err(p) = all.merge(parsed) {
                    problems.push(Problem {
                        origin: p.origin,
                        line: p.line,
                        column: p.column,
                        message: p.message,
                    });
                }
            }
        }
    }
    if let Some(all) = &flows {
        for p in hotline_ivr::check::check(all, Some(&prompts)) {
            problems.push(Problem { origin: p.origin, line: p.line, column: p.column, message: p.message });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let tts = raw.tts.then(|| hotline_ivr::TtsConfig::espeak(prompt_dir.join("tts")));
    if let Some(t) = &tts {
        prompts = prompts.with_tts(t.clone());
    }
    Ok(Some(IvrSetup {
        tts,
        flows: flows.unwrap_or_default(),
        prompts,
        voicemail_dir: PathBuf::from(raw.voicemail_dir.unwrap_or_else(|| "var/voicemail".into())),
        vars: raw.vars,
        mock_repair: raw.mock_repair.map(Spanned::into_inner),
        voices,
    }))
}

/// Every top-level table of an installation file, whichever component reads it.
pub fn installation_tables() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = crate::config::OWN_TABLES.to_vec();
    all.extend(["card", "simulator", "recording", "store", "ivr", "link"]);
    all
}

/// A problem given as text "ORIGIN:LINE:COL: MESSAGE" (or "ORIGIN: MESSAGE") back into
/// its parts.
fn problem_from_text(origin: &str, text: &str) -> Problem {
    let rest = text.strip_prefix(origin).and_then(|r| r.strip_prefix(':'));
    if let Some(rest) = rest {
        let mut parts = rest.splitn(3, ':');
        if let (Some(l), Some(c), Some(m)) = (parts.next(), parts.next(), parts.next()) {
            if let (Ok(line), Ok(column)) = (l.parse(), c.parse()) {
                return Problem { origin: origin.to_string(), line, column, message: m.trim().to_string() };
            }
        }
        return Problem { origin: origin.to_string(), line: 0, column: 0, message: rest.trim().to_string() };
    }
    Problem { origin: origin.to_string(), line: 0, column: 0, message: text.to_string() }
}

/// Every problem of an installation file, as `hotline config check` reports them: TOML
/// syntax first (and only that, as nothing else can be read reliably), then unknown
/// tables with the nearest known name, then each component's tables (cards, the
/// engine, recording, store, IVR and its flows, the CTI link). One problem per mistake:
/// a place reported by two components is given once.
pub fn check_installation(text: &str, origin: &str) -> Vec<Problem> {
    use toml::de::DeTable;
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let mut out: Vec<Problem> = errors
            .iter()
            .map(|e| {
                let (span, message) = hotline_drivers::text::toml_error(text, e);
                problem(text, origin, span, format!("TOML syntax: {message}"))
            })
            .collect();
        out.dedup_by_key(|p| (p.line, p.column));
        return out;
    }
    let mut out = Vec::new();
    let known = installation_tables();
    for (k, _) in root.get_ref().iter() {
        let name: &str = k.get_ref().as_ref();
        if known.contains(&name) {
            continue;
        }
        let message = match hotline_drivers::text::did_you_mean(name, known.iter().copied()) {
            Some(own) => format!("unknown table `{name}`; did you mean `{own}`?"),
            None => format!("unknown table `{name}`: expected one of {}", known.join(", ")),
        };
        out.push(problem(text, origin, k.span(), message));
    }
    if let Err(e) = hotline_drivers::config::parse(text, origin) {
        out.extend(e.message().lines().map(|l| problem_from_text(origin, l)));
    }
    out.extend(crate::config::check_config(text, origin));
    if let Err(es) = hotline_recorder::config::RecordingConfig::parse(text, origin) {
        out.extend(es.into_iter().map(|e| Problem {
            origin: e.origin,
            line: e.line,
            column: e.column,
            message: e.message,
        }));
    }
    if let Err(e) = crate::store::StoreConfig::from_toml(text, Path::new(origin)) {
        out.push(problem_from_text(origin, &e));
    }
    out.extend(check_ivr(text, origin));
    if let Ok(engine) = crate::Config::parse(text, origin) {
        if let Err(ps) = crate::link::LinkConfig::parse(text, origin, &engine) {
            out.extend(ps);
        }
    }
    // One problem per place: the first component to report it says it.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| {
        let key = if p.line == 0 {
            (p.origin.clone(), 0, 0, p.message.clone())
        } else {
            (p.origin.clone(), p.line, p.column, String::new())
        };
        seen.insert(key)
    });
    out
}
