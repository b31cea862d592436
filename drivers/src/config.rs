//! The installation file's card part: which cards there are, their E1 spans and
//! signalling, their analog ports, and (for the simulator backend) the simulated world.
//!
//! The same TOML file holds other parts (trunk groups, stations, queues, agents) read by
//! other crates, so unknown top-level tables are ignored here; inside `[[card]]` and
//! `[simulator]` every key must be known, so a typo is an error that names the file,
//! line and column and what was expected.
//!
//! ```toml
//! [[card]]
//! id = 1
//! backend = "simulator"
//! tone_plan = "china"        # or "itu", "north_america", "uk", or a [card.tone_plan] table
//! [[card.span]]
//! span = 1
//! signalling = "isdn_pri"
//! [card.fxo]
//! ports = "1-4"
//! caller_id = "fsk_v23"
//! disconnect = "busy_tone"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::channel::ChannelId;
use crate::dsp::tones::TonePlan;
use crate::error::{Error, ErrorKind, Result};
use crate::event::Alarm;
use crate::signal::CallerCategory;
use crate::sim::world::{
    CallerScript, CallerStep, Fault, InboundCall, OutboundRule, Outcome, PhoneBehaviour, Spread, Trunk,
};
use crate::time::Instant;

/// The most E1 spans one card may have (the largest common boards carry 16).
pub const MAX_SPANS: usize = 16;

/// The longest time any seconds value in the file may give (a year): longer is a typo,
/// and would overflow the simulator's clock.
pub const MAX_SECONDS: f64 = 366.0 * 86_400.0;

/// `v` as seconds from 0 to [`MAX_SECONDS`], or what was expected.
fn bounded_secs(v: f64, what: &str) -> std::result::Result<f64, String> {
    if v.is_finite() && (0.0..=MAX_SECONDS).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{what} {v}: expected seconds from 0 to {MAX_SECONDS} (a year)"))
    }
}

/// The card part of an installation file.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub cards: Vec<CardConfig>,
    /// The simulated world; defaults when the file has no `[simulator]` table.
    pub simulator: SimulatorConfig,
}

impl Config {
    /// The card with this id.
    pub fn card(&self, id: u16) -> Option<&CardConfig> {
        self.cards.iter().find(|c| c.id == id)
    }
}

/// Which backend drives a card.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Simulator,
    Dahdi,
    Synway,
    Dialogic,
}

/// The signalling on an E1 span.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signalling {
    /// ISDN primary rate, ITU-T Q.931 (ETSI EN 300 403) on timeslot 16.
    IsdnPri,
    /// SS7 ISUP (ITU-T Q.761–Q.764); the signalling link is elsewhere, the span carries
    /// bearer channels.
    Ss7Isup,
    /// China No.1: MFC-R2 register signalling with digital line signalling (GF 002-9002).
    ChinaNo1,
}

impl Signalling {
    pub const ALL: [Signalling; 3] = [Signalling::IsdnPri, Signalling::Ss7Isup, Signalling::ChinaNo1];

    /// The name an installer knows.
    pub fn name(self) -> &'static str {
        match self {
            Signalling::IsdnPri => "ISDN PRI",
            Signalling::Ss7Isup => "SS7 ISUP",
            Signalling::ChinaNo1 => "China No.1 (MFC-R2)",
        }
    }
}

impl fmt::Display for Signalling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How caller ID is carried on an analog line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdMode {
    /// FSK, ITU-T V.23 tones (ETSI EN 300 659; China YDN 069).
    FskV23,
    /// FSK, Bell 202 tones (Telcordia GR-30).
    #[default]
    FskBell202,
    /// DTMF digits (ETSI EN 300 659-1 annex; used in parts of Europe and Asia).
    Dtmf,
    /// No caller ID on the line.
    None,
}

impl CallerIdMode {
    /// The FSK modem standard of the FSK modes.
    pub fn fsk_standard(self) -> Option<crate::dsp::callerid::FskStandard> {
        use crate::dsp::callerid::FskStandard;
        match self {
            CallerIdMode::FskV23 => Some(FskStandard::V23),
            CallerIdMode::FskBell202 => Some(FskStandard::Bell202),
            CallerIdMode::Dtmf | CallerIdMode::None => None,
        }
    }

    /// Caller ID as line audio in this mode (`None` for `none`): FSK as SDMF when that
    /// carries everything (date, time and number), MDMF otherwise; or DTMF digits.
    pub fn line_audio(self, cid: &crate::signal::CallerId, level_dbm0: f32) -> Result<Option<Vec<i16>>> {
        use crate::dsp::callerid::{self, MessageFormat};
        if self == CallerIdMode::Dtmf {
            let params = callerid::dtmf_caller_id_params();
            return callerid::dtmf_caller_id_audio(cid, params).map(Some);
        }
        let Some(standard) = self.fsk_standard() else { return Ok(None) };
        let sdmf = cid.name.is_none() && cid.time.is_some() && cid.number.is_some();
        let format = if sdmf { MessageFormat::Sdmf } else { MessageFormat::Mdmf };
        callerid::fsk_audio(cid, standard, format, level_dbm0).map(Some)
    }
}

/// How an exchange line shows that the far end hung up.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Disconnect {
    /// The exchange plays busy tone; the card's tone detector ends the call.
    #[default]
    BusyTone,
    /// The exchange reverses the line polarity (and reverses it on answer too).
    PolarityReversal,
}

/// An inclusive range of analog ports, "1-4" or "7".
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn iter(self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
    /// Parse "1-4" or "7"; ports count from 1.
    pub fn parse(text: &str) -> std::result::Result<PortRange, String> {
        let num = |s: &str| {
            s.trim().parse::<u16>().ok().filter(|&p| p >= 1).ok_or_else(|| {
                format!("bad port range {text:?}: expected \"FIRST-LAST\" or \"PORT\", ports count from 1")
            })
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let p = num(text)?;
                (p, p)
            }
        };
        if first > last {
            return Err(format!("bad port range {text:?}: the first port {first} is above the last {last}"));
        }
        Ok(PortRange { first, last })
    }
}

/// What carries a simulated span's signalling (`stack = "..."` in `[[card.span]]`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// The simulator's model: each signalling's timing and causes, no protocol messages.
    #[default]
    Model,
    /// Real Q.931 through libpri on both ends of the D-channel (`isdn_pri` only; needs
    /// Hotline built with the `pri` feature).
    Libpri,
}

/// An E1 span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanConfig {
    pub span: u8,
    pub signalling: Signalling,
    pub stack: Stack,
}

/// The FXO ports of a card: trunks to analog exchange lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FxoConfig {
    pub ports: PortRange,
    pub caller_id: CallerIdMode,
    pub disconnect: Disconnect,
}

/// The FXS ports of a card: stations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FxsConfig {
    pub ports: PortRange,
    pub caller_id: CallerIdMode,
}

/// One card.
#[derive(Clone, Debug, PartialEq)]
pub struct CardConfig {
    pub id: u16,
    pub backend: Backend,
    /// Call-progress tones: `tone_plan = "china"` (the default), another built-in plan,
    /// or a `[card.tone_plan]` table spelling one out.
    pub tone_plan: TonePlan,
    /// Ringing cadence on analog ports (on, off); defaults from the tone plan's country.
    pub ring_cadence: (Duration, Duration),
    pub spans: Vec<SpanConfig>,
    pub fxo: Option<FxoConfig>,
    pub fxs: Option<FxsConfig>,
    /// Conference bridges and members per bridge.
    pub conference_bridges: u16,
    pub conference_members: u16,
    /// The vendor SDK's library, loaded at run time (`backend = "synway"` or
    /// `"dialogic"`; required for those, refused for the others).
    pub sdk_path: Option<std::path::PathBuf>,
}

impl CardConfig {
    /// Every channel of the card, in order: span bearer channels, FXO, FXS.
    pub fn channel_ids(&self) -> Vec<ChannelId> {
        let mut ids = Vec::new();
        for s in &self.spans {
            ids.extend(crate::channel::e1_bearer_timeslots().map(|ts| ChannelId::e1(self.id, s.span, ts)));
        }
        if let Some(fxo) = &self.fxo {
            ids.extend(fxo.ports.iter().map(|p| ChannelId::fxo(self.id, p)));
        }
        if let Some(fxs) = &self.fxs {
            ids.extend(fxs.ports.iter().map(|p| ChannelId::fxs(self.id, p)));
        }
        ids
    }
}

/// Whether the simulator moves real audio or only signalling.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MediaMode {
    /// Real 8 kHz frames every 20 ms; digits and tones are sound found by detectors.
    #[default]
    Audio,
    /// No frames: digits, tones and prompt lengths as events. Fast traffic simulation.
    Signalling,
}

/// Random (Poisson) arrivals of inbound calls.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrivals {
    pub card: u16,
    pub trunk: Trunk,
    /// Mean calls per hour.
    pub rate_per_hour: f64,
    pub from: Instant,
    pub until: Option<Instant>,
    /// Called numbers, drawn uniformly.
    pub dnis: Vec<String>,
    /// Calling number pattern: each `X` becomes a random digit ("138XXXXXXXX").
    pub ani: Option<String>,
    pub caller: CallerScript,
}

/// The simulated world of a simulator card.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorConfig {
    pub media: MediaMode,
    pub seed: u64,
    /// The network's no-answer timer for our outbound calls (cause 19).
    pub no_answer_timeout: Duration,
    /// Scripted inbound calls: (card, when, call).
    pub inbound: Vec<(u16, Instant, InboundCall)>,
    pub arrivals: Vec<Arrivals>,
    /// Outbound outcome rules, first matching prefix wins.
    pub outbound: Vec<OutboundRule>,
    /// Phone behaviour per station: (card, ports, behaviour).
    pub stations: Vec<(u16, PortRange, PhoneBehaviour)>,
    /// Stations whose agents wear headsets: off hook from the start and never hung
    /// up; calls are answered from the desktop (CSTA AnswerCall). (card, ports).
    pub headsets: Vec<(u16, PortRange)>,
    /// Faults: (card, when, fault).
    pub faults: Vec<(u16, Instant, Fault)>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            media: MediaMode::Audio,
            seed: 1,
            no_answer_timeout: Duration::from_secs(60),
            inbound: Vec::new(),
            arrivals: Vec::new(),
            outbound: Vec::new(),
            stations: Vec::new(),
            headsets: Vec::new(),
            faults: Vec::new(),
        }
    }
}

/// Read and check an installation file.
pub fn load(path: &Path) -> Result<Config> {
    let text = crate::text::read_text_file(path, crate::text::MAX_TEXT_FILE)
        .map_err(|e| Error::new(ErrorKind::Config, e))?;
    parse(&text, &path.display().to_string())
}

/// Parse and check the text of an installation file; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Config> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let (span, msg) = crate::text::toml_error(text, &e);
        at(text, origin, span, msg)
    })?;
    let cx = Cx { text, origin };
    let mut cards = Vec::new();
    let mut seen_ids: BTreeMap<u16, Range<usize>> = BTreeMap::new();
    for c in raw.card {
        if let Some(first) = seen_ids.get(c.id.get_ref()) {
            let (line, _) = line_col(text, first.start);
            return Err(cx.err(
                c.id.span(),
                format!("card id {} is used twice (first on line {line})", c.id.get_ref()),
            ));
        }
        seen_ids.insert(*c.id.get_ref(), c.id.span());
        cards.push(cx.card(c)?);
    }
    let simulator = match raw.simulator {
        Some(s) => cx.simulator(s, &cards)?,
        None => SimulatorConfig::default(),
    };
    Ok(Config { cards, simulator })
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary_compat(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

fn at(text: &str, origin: &str, span: Range<usize>, msg: impl fmt::Display) -> Error {
    let (line, col) = line_col(text, span.start);
    Error::new(ErrorKind::Config, format!("{origin}:{line}:{col}: {msg}"))
}

// The file as serde reads it; spans kept where checks after parsing need them.

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    card: Vec<RawCard>,
    simulator: Option<RawSimulator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    id: Spanned<u16>,
    #[serde(default = "default_backend")]
    backend: Backend,
    tone_plan: Option<Spanned<toml::Value>>,
    ring_cadence_ms: Option<Spanned<Vec<u32>>>,
    #[serde(default)]
    span: Vec<RawSpan>,
    fxo: Option<RawFxo>,
    fxs: Option<RawFxs>,
    conference: Option<RawConference>,
    sdk_path: Option<Spanned<String>>,
}

fn default_backend() -> Backend {
    Backend::Simulator
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpan {
    span: Spanned<u8>,
    signalling: Signalling,
    stack: Option<Spanned<Stack>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFxo {
    ports: Spanned<String>,
    #[serde(default)]
    caller_id: CallerIdMode,
    #[serde(default)]
    disconnect: Disconnect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFxs {
    ports: Spanned<String>,
    #[serde(default)]
    caller_id: CallerIdMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConference {
    bridges: u16,
    members: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimulator {
    #[serde(default)]
    media: MediaMode,
    #[serde(default = "default_seed")]
    seed: u64,
    no_answer_timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    inbound: Vec<RawInbound>,
    #[serde(default)]
    arrivals: Vec<RawArrivals>,
    #[serde(default)]
    outbound: Vec<RawOutbound>,
    #[serde(default)]
    station: Vec<RawStation>,
    #[serde(default)]
    fault: Vec<RawFault>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaller {
    patience_s: Option<Spanned<Seconds>>,
    #[serde(default)]
    script: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInbound {
    at_s: Spanned<f64>,
    trunk: Spanned<String>,
    ani: Option<String>,
    #[serde(default)]
    dnis: String,
    #[serde(default)]
    category: Option<CallerCategory>,
    #[serde(default)]
    caller: Option<RawCaller>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrivals {
    trunk: Spanned<String>,
    rate_per_hour: Spanned<f64>,
    from_s: Option<Spanned<f64>>,
    until_s: Option<Spanned<f64>>,
    #[serde(default)]
    dnis: Vec<String>,
    ani: Option<String>,
    #[serde(default)]
    caller: Option<RawCaller>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbound {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    answer: f64,
    #[serde(default)]
    busy: f64,
    #[serde(default)]
    no_answer: f64,
    #[serde(default)]
    unallocated: f64,
    #[serde(default)]
    congestion: f64,
    #[serde(default)]
    out_of_order: f64,
    answer_after_s: Option<Spanned<Seconds>>,
    talk_s: Option<Spanned<Seconds>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    #[serde(default = "default_card")]
    card: u16,
    ports: Spanned<String>,
    /// Absent: nobody answers.
    answer_after_s: Option<Seconds>,
    talk_s: Option<Seconds>,
    #[serde(default)]
    left_off_hook: bool,
    hang_up_after_release_s: Option<Seconds>,
    /// A headset: off hook from the start, answered from the desktop.
    #[serde(default)]
    headset: bool,
}

fn default_card() -> u16 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at_s: Spanned<f64>,
    kind: Spanned<FaultKind>,
    #[serde(default = "default_card")]
    card: u16,
    span: Option<u8>,
    alarm: Option<Alarm>,
    duration_s: Option<Spanned<f64>>,
    channel: Option<Spanned<String>>,
}

#[derive(Deserialize, Copy, Clone)]
#[serde(rename_all = "snake_case")]
enum FaultKind {
    SpanAlarm,
    BlockChannel,
    DeadLine,
    LeftOffHook,
}

/// Seconds: `5` or `[2, 8]` (uniform between).
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged, expecting = "seconds: a number, or [min, max] for a uniform draw")]
enum Seconds {
    One(f64),
    Two([f64; 2]),
}

impl Seconds {
    fn spread(self) -> std::result::Result<Spread, String> {
        let (a, b) = match self {
            Seconds::One(s) => (s, s),
            Seconds::Two([a, b]) => (a, b),
        };
        if !(a.is_finite() && b.is_finite() && a >= 0.0 && a <= b && b <= MAX_SECONDS) {
            return Err(format!("bad seconds {a}..{b}: expected 0 <= min <= max <= {MAX_SECONDS} (a year)"));
        }
        Ok(Spread::secs_between(a, b))
    }
}

struct Cx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Cx<'_> {
    fn err(&self, span: Range<usize>, msg: impl fmt::Display) -> Error {
        at(self.text, self.origin, span, msg)
    }

    fn card(&self, c: RawCard) -> Result<CardConfig> {
        let id = *c.id.get_ref();
        if id == 0 {
            return Err(self.err(c.id.span(), "card ids count from 1"));
        }
        let tone_plan = match &c.tone_plan {
            None => TonePlan::china(),
            Some(v) => match v.get_ref() {
                toml::Value::String(name) => TonePlan::by_name(name).map_err(|e| self.err(v.span(), e))?,
                toml::Value::Table(t) => {
                    toml::Value::Table(t.clone()).try_into::<TonePlan>().map_err(|e| {
                        self.err(v.span(), format!("tone_plan table: {}", e.message().trim_end()))
                    })?
                }
                _ => return Err(self.err(v.span(), "tone_plan: expected a plan name or a table")),
            },
        };
        let ring_cadence = match &c.ring_cadence_ms {
            Some(v) => match v.get_ref().as_slice() {
                [on, off] if *on > 0 && *off > 0 => {
                    (Duration::from_millis(*on as u64), Duration::from_millis(*off as u64))
                }
                _ => {
                    return Err(self
                        .err(v.span(), "ring_cadence_ms: expected [ON, OFF] in milliseconds, both above 0"))
                }
            },
            // North America rings 2 s on, 4 s off; China and the ITU plan 1 s on, 4 s off.
            None if tone_plan.name == "north_america" => (Duration::from_secs(2), Duration::from_secs(4)),
            None => (Duration::from_secs(1), Duration::from_secs(4)),
        };
        if c.span.len() > MAX_SPANS {
            return Err(self.err(
                c.span[MAX_SPANS].span.span(),
                format!("card {id} has {} spans; a card has at most {MAX_SPANS}", c.span.len()),
            ));
        }
        let mut spans: Vec<SpanConfig> = Vec::new();
        for s in &c.span {
            let n = *s.span.get_ref();
            if n == 0 || n as usize > MAX_SPANS {
                return Err(self.err(s.span.span(), format!("span {n}: spans are numbered 1 to {MAX_SPANS}")));
            }
            if spans.iter().any(|x| x.span == n) {
                return Err(self.err(s.span.span(), format!("span {n} appears twice on card {id}")));
            }
            let stack = match &s.stack {
                Some(st) if *st.get_ref() == Stack::Libpri && s.signalling != Signalling::IsdnPri => {
                    return Err(self.err(st.span(), "stack = \"libpri\" needs signalling = \"isdn_pri\""));
                }
                Some(st) => *st.get_ref(),
                None => Stack::Model,
            };
            spans.push(SpanConfig { span: n, signalling: s.signalling, stack });
        }
        let fxo = match c.fxo {
            Some(f) => Some(FxoConfig {
                ports: self.ports(&f.ports)?,
                caller_id: f.caller_id,
                disconnect: f.disconnect,
            }),
            None => None,
        };
        let fxs = match c.fxs {
            Some(f) => Some(FxsConfig { ports: self.ports(&f.ports)?, caller_id: f.caller_id }),
            None => None,
        };
        let (conference_bridges, conference_members) =
            c.conference.map_or((32, 16), |k| (k.bridges, k.members.max(2)));
        let vendor = matches!(c.backend, Backend::Synway | Backend::Dialogic);
        let sdk_path = match (&c.sdk_path, vendor) {
            (Some(p), true) => Some(std::path::PathBuf::from(p.get_ref())),
            (None, true) => {
                return Err(self.err(
                    c.id.span(),
                    format!(
                        "card {id}: backend \"{}\" needs sdk_path, the vendor SDK's library (say \
                         sdk_path = \"/opt/vendor/lib/libsdk.so\")",
                        if c.backend == Backend::Synway { "synway" } else { "dialogic" }
                    ),
                ))
            }
            (Some(p), false) => {
                return Err(self.err(p.span(), "sdk_path is only for backend = \"synway\" or \"dialogic\""))
            }
            (None, false) => None,
        };
        Ok(CardConfig {
            id,
            backend: c.backend,
            tone_plan,
            ring_cadence,
            spans,
            fxo,
            fxs,
            conference_bridges,
            conference_members,
            sdk_path,
        })
    }

    /// An optional seconds value, checked to be from 0 to [`MAX_SECONDS`].
    fn secs_at(&self, v: Option<&Spanned<f64>>, what: &str) -> Result<Option<f64>> {
        match v {
            None => Ok(None),
            Some(s) => bounded_secs(*s.get_ref(), what).map(Some).map_err(|m| self.err(s.span(), m)),
        }
    }

    fn ports(&self, s: &Spanned<String>) -> Result<PortRange> {
        PortRange::parse(s.get_ref()).map_err(|m| self.err(s.span(), m))
    }

    fn seconds(&self, v: Option<Seconds>, span: Range<usize>, default: Spread) -> Result<Spread> {
        match v {
            Some(s) => s.spread().map_err(|m| self.err(span, m)),
            None => Ok(default),
        }
    }

    fn spanned_seconds(&self, v: Option<&Spanned<Seconds>>, default: Spread) -> Result<Spread> {
        match v {
            Some(s) => s.get_ref().spread().map_err(|m| self.err(s.span(), m)),
            None => Ok(default),
        }
    }

    fn caller(&self, c: Option<RawCaller>) -> Result<CallerScript> {
        let Some(c) = c else { return Ok(CallerScript::default()) };
        let patience = match c.patience_s {
            Some(p) => p.get_ref().spread().map_err(|m| self.err(p.span(), m))?,
            None => Spread::secs(60.0),
        };
        let mut steps = Vec::new();
        for s in &c.script {
            steps.push(CallerStep::parse(s.get_ref()).map_err(|m| self.err(s.span(), m))?);
        }
        Ok(CallerScript { patience, steps })
    }

    /// "1/1" (span), "1/1/5" (bearer channel), "1/fxo" (any FXO port), "1/fxo/2".
    fn trunk(&self, s: &Spanned<String>, cards: &[CardConfig]) -> Result<(u16, Trunk)> {
        let text = s.get_ref().as_str();
        let bad = |why: &str| {
            self.err(
                s.span(),
                format!("bad trunk {text:?}: {why}; expected CARD/SPAN, CARD/SPAN/TIMESLOT, CARD/fxo or CARD/fxo/PORT"),
            )
        };
        let parts: Vec<&str> = text.split('/').collect();
        let card: u16 = parts[0].parse().map_err(|_| bad("no card number"))?;
        let Some(cc) = cards.iter().find(|c| c.id == card) else {
            return Err(bad(&format!("there is no card {card}")));
        };
        let trunk = match parts.as_slice() {
            [_, "fxo"] => Trunk::AnyFxo,
            [_, span] => Trunk::Span(span.parse().map_err(|_| bad("bad span number"))?),
            _ => Trunk::Channel(text.parse::<ChannelId>().map_err(|_| bad("not a channel"))?),
        };
        let ok = match trunk {
            Trunk::AnyFxo => cc.fxo.is_some(),
            Trunk::Span(n) => cc.spans.iter().any(|x| x.span == n),
            Trunk::Channel(ch) => ch.is_trunk() && cc.channel_ids().contains(&ch),
        };
        if !ok {
            return Err(bad(&format!("card {card} has no such trunk")));
        }
        Ok((card, trunk))
    }

    fn channel(&self, s: &Spanned<String>, cards: &[CardConfig]) -> Result<ChannelId> {
        let ch: ChannelId = s.get_ref().parse().map_err(|e| self.err(s.span(), e))?;
        if !cards.iter().any(|c| c.channel_ids().contains(&ch)) {
            return Err(self.err(s.span(), format!("no channel {ch} is configured")));
        }
        Ok(ch)
    }

    fn simulator(&self, s: RawSimulator, cards: &[CardConfig]) -> Result<SimulatorConfig> {
        let mut out = SimulatorConfig { media: s.media, seed: s.seed, ..SimulatorConfig::default() };
        if let Some(t) = s.no_answer_timeout_s {
            if !(t.get_ref().is_finite() && *t.get_ref() > 0.0 && *t.get_ref() <= MAX_SECONDS) {
                return Err(self.err(
                    t.span(),
                    format!("no_answer_timeout_s: expected seconds above 0, at most {MAX_SECONDS} (a year)"),
                ));
            }
            out.no_answer_timeout = Duration::from_secs_f64(*t.get_ref());
        }
        for i in s.inbound {
            let at = *i.at_s.get_ref();
            if !(at.is_finite() && (0.0..=MAX_SECONDS).contains(&at)) {
                return Err(self.err(
                    i.at_s.span(),
                    format!("at_s: expected seconds from the start, 0 to {MAX_SECONDS} (a year)"),
                ));
            }
            let (card, trunk) = self.trunk(&i.trunk, cards)?;
            let call = InboundCall {
                trunk,
                ani: i.ani,
                dnis: i.dnis,
                category: i.category.unwrap_or_default(),
                caller: self.caller(i.caller)?,
            };
            out.inbound.push((card, Instant::from_micros((at * 1e6) as u64), call));
        }
        for a in s.arrivals {
            let (card, trunk) = self.trunk(&a.trunk, cards)?;
            let rate = *a.rate_per_hour.get_ref();
            if !(rate.is_finite() && rate > 0.0) {
                return Err(
                    self.err(a.rate_per_hour.span(), "rate_per_hour: expected calls per hour above 0")
                );
            }
            if let Some(p) = &a.ani {
                if !p.chars().all(|c| c.is_ascii_digit() || c == 'X') {
                    return Err(self.err(
                        a.trunk.span(),
                        format!("ani pattern {p:?}: expected digits and X (a random digit)"),
                    ));
                }
            }
            out.arrivals.push(Arrivals {
                card,
                trunk,
                rate_per_hour: rate,
                from: Instant::from_micros(
                    (self.secs_at(a.from_s.as_ref(), "from_s")?.unwrap_or(0.0) * 1e6) as u64,
                ),
                until: self
                    .secs_at(a.until_s.as_ref(), "until_s")?
                    .map(|u| Instant::from_micros((u * 1e6) as u64)),
                dnis: a.dnis,
                ani: a.ani,
                caller: self.caller(a.caller)?,
            });
        }
        for r in s.outbound {
            let answer = Outcome::Answer {
                after: self.spanned_seconds(r.answer_after_s.as_ref(), Spread::secs_between(2.0, 8.0))?,
                talk: self.spanned_seconds(r.talk_s.as_ref(), Spread::secs_between(30.0, 180.0))?,
            };
            let outcomes: Vec<(f64, Outcome)> = [
                (r.answer, answer),
                (r.busy, Outcome::Busy),
                (r.no_answer, Outcome::NoAnswer),
                (r.unallocated, Outcome::Unallocated),
                (r.congestion, Outcome::Congestion),
                (r.out_of_order, Outcome::OutOfOrder),
            ]
            .into_iter()
            .filter(|(w, _)| *w > 0.0)
            .collect();
            if outcomes.is_empty() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{}: outbound rule for prefix {:?} gives no outcome a weight: set one or more of answer, busy, no_answer, unallocated, congestion, out_of_order",
                        self.origin, r.prefix
                    ),
                ));
            }
            out.outbound.push(OutboundRule { prefix: r.prefix, outcomes });
        }
        for st in s.station {
            let ports = self.ports(&st.ports)?;
            let has = cards.iter().any(|c| {
                c.id == st.card
                    && c.fxs
                        .as_ref()
                        .is_some_and(|f| f.ports.contains(ports.first) && f.ports.contains(ports.last))
            });
            if !has {
                return Err(self.err(
                    st.ports.span(),
                    format!("card {} has no FXS ports {}-{}", st.card, ports.first, ports.last),
                ));
            }
            let sp = st.ports.span();
            let behaviour = PhoneBehaviour {
                answer_after: st
                    .answer_after_s
                    .map(|v| self.seconds(Some(v), sp.clone(), Spread::ZERO))
                    .transpose()?,
                talk: st.talk_s.map(|v| self.seconds(Some(v), sp.clone(), Spread::ZERO)).transpose()?,
                hang_up_after_release: if st.left_off_hook || st.headset {
                    None
                } else {
                    Some(self.seconds(st.hang_up_after_release_s, sp.clone(), Spread::secs(1.0))?)
                },
            };
            if st.headset {
                out.headsets.push((st.card, ports));
            }
            out.stations.push((st.card, ports, behaviour));
        }
        for f in s.fault {
            let at_s = self.secs_at(Some(&f.at_s), "at_s")?.unwrap_or(0.0);
            let at = Instant::from_micros((at_s * 1e6) as u64);
            let duration_s = self.secs_at(f.duration_s.as_ref(), "duration_s")?;
            let need = |what: &str| self.err(f.kind.span(), format!("this fault needs `{what}`"));
            let fault = match f.kind.get_ref() {
                FaultKind::SpanAlarm => Fault::SpanAlarm {
                    span: f.span.ok_or_else(|| need("span"))?,
                    alarm: f.alarm.unwrap_or(Alarm::Los),
                    duration: duration_s.map(Duration::from_secs_f64),
                },
                FaultKind::BlockChannel => Fault::BlockChannel(
                    self.channel(f.channel.as_ref().ok_or_else(|| need("channel"))?, cards)?,
                ),
                FaultKind::DeadLine => {
                    let ch = self.channel(f.channel.as_ref().ok_or_else(|| need("channel"))?, cards)?;
                    if ch.card != f.card {
                        return Err(self.err(f.kind.span(), "`card` and the channel's card differ"));
                    }
                    match ch.addr {
                        crate::channel::ChannelAddr::Fxo { port } => Fault::DeadLine { port },
                        _ => return Err(self.err(f.kind.span(), "dead_line needs an FXO channel (1/fxo/2)")),
                    }
                }
                FaultKind::LeftOffHook => Fault::LeftOffHook(
                    self.channel(f.channel.as_ref().ok_or_else(|| need("channel"))?, cards)?,
                ),
            };
            let card = match &fault {
                Fault::BlockChannel(ch) | Fault::LeftOffHook(ch) => ch.card,
                _ => f.card,
            };
            if !cards.iter().any(|c| c.id == card) {
                return Err(self.err(f.kind.span(), format!("there is no card {card}")));
            }
            // A blocked channel or a dead line comes back after `duration_s`, if given
            // (a span alarm clears itself the same way).
            let end = duration_s.map(|d| at + Duration::from_secs_f64(d));
            let restore = match (&fault, end) {
                (Fault::BlockChannel(ch), Some(end)) => Some((end, Fault::UnblockChannel(*ch))),
                (Fault::DeadLine { port }, Some(end)) => Some((end, Fault::LineRestored { port: *port })),
                _ => None,
            };
            out.faults.push((card, at, fault));
            if let Some((end, fault)) = restore {
                out.faults.push((card, end, fault));
            }
        }
        Ok(out)
    }
}
