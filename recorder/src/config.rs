//! The `[recording]` table of the installation file: where recordings go, in what
//! format and layout, the writers' queue, the retention classes and the disk watermark.
//! Other tables of the file are left to their owners. Every problem is reported with its
//! line and column and what was expected.
//!
//! ```toml
//! [recording]
//! dir = "/var/spool/hotline/recordings"
//! format = "wav"            # wav or mp3
//! encoding = "pcm16"        # wav: pcm16, alaw or ulaw
//! mp3_kbps = 32             # mp3: 8, 16, 24, 32, 40, 48 or 64
//! layout = "stereo"         # stereo (caller left, agent right) or mono (mixed)
//! writers = 2
//! queue_depth = 250         # frames per recording
//! high_watermark = 90       # % of the disk used at which old recordings go
//! low_watermark = 85        # % to get back under
//!
//! [recording.classes.normal]
//! min_days = 30
//! [recording.classes.complaint]
//! min_days = 90
//! max_days = 365            # optional: deleted after this, whatever the disk
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::de::{DeTable, ValueDeserializer};
use toml::Spanned;

use crate::retention::{RetentionClass, RetentionPolicy};
use crate::writer::RecorderConfig;
use crate::{Format, WavEncoding, MP3_KBPS};

/// The layout recordings of agent calls get.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LayoutKind {
    Stereo,
    Mono,
}

/// The `[recording]` table, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingConfig {
    pub dir: PathBuf,
    pub format: Format,
    pub layout: LayoutKind,
    pub recorder: RecorderConfig,
    pub retention: RetentionPolicy,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            dir: PathBuf::from("recordings"),
            format: Format::Wav(WavEncoding::Pcm16),
            layout: LayoutKind::Stereo,
            recorder: RecorderConfig::default(),
            retention: RetentionPolicy::default(),
        }
    }
}

/// A problem in the `[recording]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: String,
    /// 1-based; 0 when the problem has no place.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.origin, self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    dir: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    encoding: Option<Spanned<String>>,
    mp3_kbps: Option<Spanned<u16>>,
    layout: Option<Spanned<String>>,
    writers: Option<Spanned<usize>>,
    queue_depth: Option<Spanned<usize>>,
    high_watermark: Option<Spanned<f64>>,
    low_watermark: Option<Spanned<f64>>,
    #[serde(default)]
    classes: BTreeMap<String, Spanned<RawClass>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    min_days: u32,
    max_days: Option<u32>,
}

struct Locator<'a> {
    text: &'a str,
    origin: &'a str,
    problems: Vec<ConfigError>,
}

impl Locator<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let offset = span.start.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        self.problems.push(ConfigError {
            origin: self.origin.to_string(),
            line,
            column,
            message: message.into(),
        });
    }
}

impl RecordingConfig {
    /// Reads the `[recording]` table of an installation file; defaults when it is absent.
    /// `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<RecordingConfig, Vec<ConfigError>> {
        let mut loc = Locator { text, origin, problems: Vec::new() };
        let root = match DeTable::parse(text) {
            Ok(r) => r.into_inner(),
            Err(e) => {
                let (span, message) = hotline_drivers::text::toml_error(text, &e);
                loc.at(span, format!("TOML syntax: {message}"));
                return Err(loc.problems);
            }
        };
        let mut cfg = RecordingConfig::default();
        let Some((_, value)) = root.iter().find(|(k, _)| k.get_ref().as_ref() == "recording") else {
            return Ok(cfg);
        };
        let span = value.span();
        let raw = match Raw::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(r) => r,
            Err(e) => {
                loc.at(
                    e.span().unwrap_or(span),
                    format!("in [recording]: {}", hotline_drivers::text::hint_unknown_field(e.message())),
                );
                return Err(loc.problems);
            }
        };
        if let Some(d) = &raw.dir {
            if d.get_ref().is_empty() {
                loc.at(d.span(), "dir is empty: expected the directory recordings go to");
            }
            cfg.dir = PathBuf::from(d.get_ref());
        }
        let encoding = match &raw.encoding {
            None => WavEncoding::Pcm16,
            Some(e) => match e.get_ref().parse::<WavEncoding>() {
                Ok(enc) => enc,
                Err(err) => {
                    loc.at(e.span(), err.message());
                    WavEncoding::Pcm16
                }
            },
        };
        let kbps = raw.mp3_kbps.as_ref().map_or(32, |k| *k.get_ref());
        if let Some(k) = &raw.mp3_kbps {
            if !MP3_KBPS.contains(k.get_ref()) {
                loc.at(k.span(), format!("mp3_kbps {}: expected one of {MP3_KBPS:?}", k.get_ref()));
            }
        }
        cfg.format = match raw.format.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
            None | Some(("wav", _)) => Format::Wav(encoding),
            Some(("mp3", _)) => {
                if let Some(e) = &raw.encoding {
                    loc.at(e.span(), "encoding applies to wav only; mp3 takes mp3_kbps");
                }
                Format::Mp3 { kbps }
            }
            Some((other, span)) => {
                loc.at(span, format!("unknown format {other:?}: expected \"wav\" or \"mp3\""));
                Format::Wav(encoding)
            }
        };
        cfg.layout = match raw.layout.as_ref().map(|l| (l.get_ref().as_str(), l.span())) {
            None | Some(("stereo", _)) => LayoutKind::Stereo,
            Some(("mono", _)) => LayoutKind::Mono,
            Some((other, span)) => {
                loc.at(span, format!("unknown layout {other:?}: expected \"stereo\" or \"mono\""));
                LayoutKind::Stereo
            }
        };
        for (field, value, slot) in [
            ("writers", &raw.writers, &mut cfg.recorder.writers),
            ("queue_depth", &raw.queue_depth, &mut cfg.recorder.queue_depth),
        ] {
            if let Some(v) = value {
                if *v.get_ref() == 0 || *v.get_ref() > 100_000 {
                    loc.at(v.span(), format!("{field} {}: expected 1 to 100000", v.get_ref()));
                }
                *slot = *v.get_ref();
            }
        }
        for (field, value, slot) in [
            ("high_watermark", &raw.high_watermark, &mut cfg.retention.high_watermark),
            ("low_watermark", &raw.low_watermark, &mut cfg.retention.low_watermark),
        ] {
            if let Some(v) = value {
                let pct = *v.get_ref();
                if !(1.0..=100.0).contains(&pct) {
                    loc.at(v.span(), format!("{field} {pct}: expected a percentage from 1 to 100"));
                }
                *slot = pct / 100.0;
            }
        }
        if cfg.retention.low_watermark > cfg.retention.high_watermark {
            let span =
                raw.low_watermark.as_ref().or(raw.high_watermark.as_ref()).map_or(span.clone(), |v| v.span());
            loc.at(span, "low_watermark is above high_watermark: expected low <= high");
        }
        for (name, class) in &raw.classes {
            let c = class.get_ref();
            if c.max_days.is_some_and(|m| m < c.min_days) {
                loc.at(class.span(), format!("class {name}: max_days is below min_days"));
            }
            let new = RetentionClass { name: name.clone(), min_days: c.min_days, max_days: c.max_days };
            match cfg.retention.classes.iter_mut().find(|k| &k.name == name) {
                Some(k) => *k = new,
                None => cfg.retention.classes.push(new),
            }
        }
        if loc.problems.is_empty() {
            Ok(cfg)
        } else {
            Err(loc.problems)
        }
    }

    /// Where recording `id`, started at `started_unix_ms` (UTC), goes:
    /// `DIR/YYYY/MM/DD/ID.EXT`, so that a day's recordings share a directory.
    pub fn path_for(&self, id: u64, started_unix_ms: i64) -> PathBuf {
        let (y, m, d) = civil_from_days(started_unix_ms.div_euclid(86_400_000));
        self.dir.join(format!("{y:04}/{m:02}/{d:02}/{id}.{}", self.format.extension()))
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
