//! Prompt sets and speech. A prompt set is a directory of 8 kHz WAV files (`NAME.wav`);
//! the repository ships only the TEXT of each prompt (`prompts/en.toml`,
//! `prompts/zh.toml`), and [`generate`] renders the missing WAVs with espeak-ng (through
//! the drivers' WAV reader, resampler and writer) or, without espeak-ng, as short
//! distinct tones so that a flow can still be walked through.
//!
//! Text-to-speech for dynamic prompts (`tts:Your ticket {ticket}`) is optional and off
//! by default: the interpreter only asks for it ([`crate::IvrOutput::Synthesize`]) and a
//! worker thread runs [`synthesize`], which caches each text on disk by its hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hotline_drivers::dsp::{resample, wav};
use hotline_drivers::SAMPLE_RATE;
use serde::Deserialize;

use crate::say::Lang;

/// The text of a prompt set and where its WAVs live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptSet {
    pub lang: Lang,
    /// Prompt name to the words it says.
    pub texts: BTreeMap<String, String>,
    /// The directory of `NAME.wav` files.
    pub dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    lang: toml::Spanned<String>,
    text: BTreeMap<toml::Spanned<String>, String>,
}

impl PromptSet {
    /// Parse a prompt set's text file (`lang = "en"` and a `[text]` table of
    /// `name = "words"`); the WAVs are (or will be) in `dir`.
    pub fn parse(text: &str, origin: &str, dir: impl Into<PathBuf>) -> Result<PromptSet, String> {
        let at = |offset: usize| {
            let (line, col) = hotline_drivers::text::line_col(text, offset);
            format!("{origin}:{line}:{col}: ")
        };
        let raw: RawSet = toml::from_str(text).map_err(|e| {
            let (span, message) = hotline_drivers::text::toml_error(text, &e);
            format!("{}{message}", at(span.start))
        })?;
        let lang = Lang::parse(raw.lang.get_ref()).ok_or_else(|| {
            format!(
                "{}unknown lang {:?}: expected \"en\" or \"zh\"",
                at(raw.lang.span().start),
                raw.lang.get_ref()
            )
        })?;
        for name in raw.text.keys() {
            let n = name.get_ref();
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "{}bad prompt name {n:?}: expected letters, digits and _",
                    at(name.span().start)
                ));
            }
        }
        let texts = raw.text.into_iter().map(|(k, v)| (k.into_inner(), v)).collect();
        Ok(PromptSet { lang, texts, dir: dir.into() })
    }

    /// Read a prompt set's text file.
    pub fn load(path: &Path, dir: impl Into<PathBuf>) -> Result<PromptSet, String> {
        let text = hotline_drivers::text::read_text_file(path, hotline_drivers::text::MAX_TEXT_FILE)?;
        PromptSet::parse(&text, &path.display().to_string(), dir)
    }

    /// The file a prompt is played from.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.wav"))
    }

    /// Whether the set knows a prompt: its text is in the set or its WAV is in the
    /// directory (a recorded prompt an installer added).
    pub fn has(&self, name: &str) -> bool {
        self.texts.contains_key(name) || self.path(name).is_file()
    }
}

/// Text-to-speech settings (off unless given to [`Prompts::with_tts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtsConfig {
    /// The program; called as `COMMAND -v VOICE -w OUT.wav TEXT` (espeak-ng's options).
    pub command: String,
    /// Where synthesized texts are kept, one `HASH.wav` per text and language.
    pub cache_dir: PathBuf,
}

impl TtsConfig {
    pub fn espeak(cache_dir: impl Into<PathBuf>) -> TtsConfig {
        TtsConfig { command: "espeak-ng".into(), cache_dir: cache_dir.into() }
    }

    /// The cache file for a text: a stable hash (FNV-1a 64) of language and text.
    pub fn cache_path(&self, lang: Lang, text: &str) -> PathBuf {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in lang.code().bytes().chain([0]).chain(text.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.cache_dir.join(format!("{h:016x}.wav"))
    }
}

/// The prompt sets an IVR plays from, one per language, and the optional TTS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompts {
    sets: BTreeMap<Lang, PromptSet>,
    tts: Option<TtsConfig>,
}

impl Prompts {
    pub fn new(set: PromptSet) -> Prompts {
        Prompts::default().with(set)
    }

    /// Add (or replace) the set of a language.
    pub fn with(mut self, set: PromptSet) -> Prompts {
        self.sets.insert(set.lang, set);
        self
    }

    pub fn with_tts(mut self, tts: TtsConfig) -> Prompts {
        self.tts = Some(tts);
        self
    }

    pub fn set(&self, lang: Lang) -> Option<&PromptSet> {
        self.sets.get(&lang)
    }

    pub fn tts(&self) -> Option<&TtsConfig> {
        self.tts.as_ref()
    }

    /// The languages with a prompt set.
    pub fn langs(&self) -> impl Iterator<Item = Lang> + '_ {
        self.sets.keys().copied()
    }

    /// The file for a prompt in a language (the language's set, else any set that has it).
    pub fn path(&self, lang: Lang, name: &str) -> Option<PathBuf> {
        if let Some(s) = self.sets.get(&lang) {
            return Some(s.path(name));
        }
        self.sets.values().find(|s| s.has(name)).map(|s| s.path(name))
    }

    /// The words of a prompt, for `flow try` without a sound card.
    pub fn text(&self, lang: Lang, name: &str) -> Option<&str> {
        self.sets
            .get(&lang)
            .and_then(|s| s.texts.get(name))
            .or_else(|| self.sets.values().find_map(|s| s.texts.get(name)))
            .map(String::as_str)
    }
}

/// How [`generate`] makes the WAVs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Voice {
    /// espeak-ng if it runs, else tones.
    Auto,
    /// A speech program with espeak-ng's options.
    Speech { command: String },
    /// A short tone per prompt, pitched by its name: no speech, but each prompt sounds
    /// different and lasts about as long as its text would.
    Tones,
}

/// What [`generate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    pub made: Vec<String>,
    /// Already there (left as they were).
    pub kept: Vec<String>,
    /// "espeak-ng" or "tones (espeak-ng not found: ...)".
    pub voice: String,
}

fn espeak_voice(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "en",
        Lang::Zh => "cmn",
    }
}

/// Whether the speech program runs.
pub fn speech_available(command: &str) -> Result<(), String> {
    match Command::new(command).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`{command} --version` exited with {}", o.status)),
        Err(e) => Err(format!("cannot run `{command}`: {e} (apt-get install espeak-ng)")),
    }
}

/// Speak `text` into an 8 kHz mono 16-bit WAV at `out` (written beside and renamed, so
/// a failure never leaves half a file).
pub fn speak(command: &str, lang: Lang, text: &str, out: &Path) -> Result<(), String> {
    let raw = out.with_extension("espeak.wav");
    let status = Command::new(command)
        .args(["-v", espeak_voice(lang), "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .output()
        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
    if !status.status.success() {
        let _ = std::fs::remove_file(&raw);
        return Err(format!("`{command}` failed: {}", String::from_utf8_lossy(&status.stderr).trim()));
    }
    let read = wav::read_wav_file(&raw).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&raw);
    let (spec, samples) = read?;
    let card =
        resample::to_card_audio(&samples, spec.channels, spec.sample_rate).map_err(|e| e.to_string())?;
    write_atomically(out, &card)
}

/// A tone "prompt": about as long as the text would take to say (60 ms a character,
/// 0.3 to 3 s), at a pitch from the name, kept below the DTMF band (300-600 Hz) so
/// that it can never be taken for a key press.
pub fn tone_prompt(name: &str, text: &str) -> Vec<i16> {
    let h = name.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let freq = 300.0 + f64::from(h % 31) * 10.0;
    let len = (text.chars().count() as f64 * 0.06).clamp(0.3, 3.0);
    let n = (len * f64::from(SAMPLE_RATE)) as usize / hotline_drivers::FRAME_SAMPLES
        * hotline_drivers::FRAME_SAMPLES;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            // 10 ms ramps at both ends: no clicks.
            let ramp = (t / 0.01).min((n - i) as f64 / 80.0).min(1.0);
            (6000.0 * ramp * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

fn write_atomically(out: &Path, samples: &[i16]) -> Result<(), String> {
    let tmp = out.with_extension("wav.part");
    wav::write_wav_file(&tmp, SAMPLE_RATE, 1, wav::Encoding::Pcm16, samples)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", out.display())
        })
}

/// Render every prompt of `set` whose WAV is missing from `set.dir` (created if need be).
pub fn generate(set: &PromptSet, voice: &Voice) -> Result<Generated, String> {
    std::fs::create_dir_all(&set.dir).map_err(|e| format!("cannot create {}: {e}", set.dir.display()))?;
    let (command, label) = match voice {
        Voice::Tones => (None, "tones".to_string()),
        Voice::Speech { command } => {
            speech_available(command)?;
            (Some(command.clone()), command.clone())
        }
        Voice::Auto => match speech_available("espeak-ng") {
            Ok(()) => (Some("espeak-ng".to_string()), "espeak-ng".to_string()),
            Err(e) => (None, format!("tones ({e})")),
        },
    };
    let mut done = Generated { voice: label, ..Generated::default() };
    for (name, text) in &set.texts {
        let path = set.path(name);
        if path.is_file() {
            done.kept.push(name.clone());
            continue;
        }
        match &command {
            Some(c) => speak(c, set.lang, text, &path)?,
            None => write_atomically(&path, &tone_prompt(name, text))?,
        }
        done.made.push(name.clone());
    }
    Ok(done)
}

/// A text the interpreter wants spoken (the TTS is on); answer with
/// [`crate::Ivr::handle_synthesized`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthRequest {
    pub id: u64,
    pub lang: Lang,
    pub text: String,
    /// Where the WAV goes (the cache file for this text).
    pub path: PathBuf,
}

/// Run a [`SynthRequest`] (on a worker thread, never the engine's): a cached file is
/// used as it is.
pub fn synthesize(tts: &TtsConfig, req: &SynthRequest) -> Result<PathBuf, String> {
    if req.path.is_file() {
        return Ok(req.path.clone());
    }
    std::fs::create_dir_all(&tts.cache_dir)
        .map_err(|e| format!("cannot create {}: {e}", tts.cache_dir.display()))?;
    speak(&tts.command, req.lang, &req.text, &req.path)?;
    Ok(req.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_set_text_file_is_checked() {
        let set =
            PromptSet::parse("lang = \"en\"\n[text]\nwelcome = \"Welcome\"\n", "en.toml", "/tmp/x").unwrap();
        assert_eq!(set.path("welcome"), PathBuf::from("/tmp/x/welcome.wav"));
        let e = PromptSet::parse("lang = \"en\"\n[text]\nwelcome = 3\n", "en.toml", "/tmp/x").unwrap_err();
        assert!(e.starts_with("en.toml:3:11: "), "{e}");
        let e = PromptSet::parse("lang = \"fr\"\n[text]\n", "fr.toml", "/tmp/x").unwrap_err();
        assert!(e.contains("expected \"en\" or \"zh\""), "{e}");
    }

    #[test]
    fn tone_prompts_differ_by_name_and_stay_below_the_dtmf_band() {
        let a = tone_prompt("welcome", "Welcome to the hotline");
        let b = tone_prompt("goodbye", "Goodbye");
        assert_ne!(a, b);
        assert_eq!(a.len() % hotline_drivers::FRAME_SAMPLES, 0);
        let mut d = hotline_drivers::dsp::dtmf::DtmfDetector::new();
        let mut ev = Vec::new();
        d.process(&a, &mut ev);
        d.finish(&mut ev);
        assert!(ev.is_empty());
    }

    #[test]
    fn tts_cache_paths_are_stable_per_text_and_language() {
        let t = TtsConfig::espeak("/c");
        assert_eq!(t.cache_path(Lang::En, "hi"), t.cache_path(Lang::En, "hi"));
        assert_ne!(t.cache_path(Lang::En, "hi"), t.cache_path(Lang::Zh, "hi"));
    }
}
