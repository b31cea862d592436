//! The engine's part of the installation file: trunk groups, stations, access numbers,
//! schedules and holidays, queues, agents, agent groups, supervisors, VIP and black
//! lists, the number-prefix location table and the phone feature codes.
//!
//! The same TOML file holds the drivers' `[[card]]` and `[simulator]` tables; this
//! module ignores tables it does not own. [`check_config`] reports every problem it
//! finds (syntax, types, unknown keys, dangling references, bad ranges) with its line
//! and column and what was expected, for `hotline config check FILE`;
//! [`Config::parse`] returns the validated configuration or those problems.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use hotline_drivers::{Cause, ChannelId, Error, ErrorKind};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// One thing wrong with a configuration file, located for a person to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file name (or other origin) given to the checker.
    pub origin: String,
    /// 1-based line and column; 0 when the problem has no place (a missing table).
    pub line: usize,
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Problems one to a line, as `hotline config check` prints them.
pub fn problem_lines(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.origin, self.line, self.column, self.message)
        }
    }
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Error {
        Error::new(ErrorKind::Config, p.to_string())
    }
}

/// Turn a list of problems into one error for callers that want a `Result`.
pub fn problems_to_error(problems: &[Problem]) -> Error {
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    Error::new(ErrorKind::Config, text.join("\n"))
}

/// Check the engine's part of an installation file and report every problem.
/// An empty list means [`Config::parse`] will succeed.
pub fn check_config(text: &str, origin: &str) -> Vec<Problem> {
    match Config::parse(text, origin) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

// ---------------------------------------------------------------------------------------
// The validated configuration.

/// Where an access number, an overflow or a blacklist entry sends a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Into an ACD queue (index into [`Config::queues`]).
    Queue(usize),
    /// To an IVR flow, by name (the IVR interpreter takes the call over).
    Ivr(String),
    /// To a voicemail box, by name.
    Voicemail(String),
    /// Out through a trunk group to an external number.
    External(String),
    /// Release the call with this cause.
    HangUp(Cause),
    /// To one agent, by id: rung when ready, waited for up to `[engine] agent_wait`
    /// while logged in but busy or not ready, then the agent's first queue takes it.
    Agent(String),
}

/// A trunk group: channels to the network and the number presented on outbound calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkGroup {
    pub name: String,
    pub channels: Vec<ChannelId>,
    /// Caller ID presented on outbound calls.
    pub caller_id: Option<String>,
    /// Digits a station dials before an external number to use this group ("9", "0").
    pub dial_prefix: Option<String>,
    /// Calls arriving on the group without a called number (analog lines) are routed
    /// as if to this number.
    pub inbound_dnis: Option<String>,
}

/// An analog phone on an FXS port and its extension number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StationConf {
    pub port: ChannelId,
    pub extension: String,
}

/// Weekly opening hours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes since midnight, half-open intervals.
    pub hours: Vec<(u32, u32)>,
}

/// A date on which the holiday target applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holiday {
    pub name: String,
    pub date: (i32, u32, u32),
}

/// A called number (DNIS) and where its calls go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessNumber {
    pub dnis: String,
    /// Where calls go when no route's schedule is open (after hours).
    pub target: Target,
    /// (schedule index, target), first open schedule wins.
    pub routes: Vec<(usize, Target)>,
    /// Where calls go on a holiday.
    pub holiday_target: Option<Target>,
    /// Every caller on this number is a VIP.
    pub vip: bool,
}

/// How a queue chooses among its ready agents.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Login order, cycling: the agent offered a call least recently goes first.
    RoundRobin,
    /// The agent who answered the fewest calls from this queue.
    FewestAnswered,
    /// The agent idle the longest.
    LongestIdle,
    /// Any ready agent, uniformly.
    Random,
}

/// Optional preferences a queue applies before its strategy.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    /// The caller's dedicated agent (account manager) first.
    pub dedicated_agent: bool,
    /// The agent who last served this caller first.
    pub last_agent: bool,
    /// An agent whose location matches the caller's first.
    pub location: bool,
    /// Higher level (9 best) before the strategy's order.
    pub higher_level: bool,
}

/// An ACD queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConf {
    pub name: String,
    /// An internal number stations can dial to reach the queue.
    pub number: Option<String>,
    pub strategy: Strategy,
    pub prefer: Preferences,
    /// How long a station rings before the call goes to the next agent.
    pub ring_timeout: Duration,
    /// Missed calls in a row that put the agent in not-ready.
    pub max_misses: u32,
    /// The not-ready reason given then.
    pub missed_reason: String,
    /// After-call work; `None` is manual (the agent makes themself ready).
    pub wrap_up: Option<Duration>,
    /// The shortest after-call work: a ready request comes into force only after it.
    pub min_wrap_up: Duration,
    pub max_wait: Option<(Duration, Target)>,
    pub no_agents: Option<(Duration, Target)>,
    pub max_length: Option<(usize, Target)>,
    /// Skills an agent needs to serve the queue.
    pub required_skills: Vec<String>,
    /// Played to waiting callers (a prompt file); ringback tone when absent.
    pub music: Option<String>,
    /// Tell waiting callers their position and expected wait this often.
    pub announce_every: Option<Duration>,
    /// Offer to take a callback number after this long in the queue.
    pub callback_offer_after: Option<Duration>,
    /// Tell the caller the answering agent's work number.
    pub announce_agent_number: bool,
    /// Keep this many agents ready for inbound: an outbound call by a member agent is
    /// refused when fewer than this many other members would stay ready.
    pub reserve_idle: usize,
    /// Record every answered call of this queue (the recording policy's default).
    pub record: bool,
    /// The service level the queue aims at, in percent (80: 80 % of calls answered
    /// within the threshold); the wallboard colours the figure against it.
    pub service_level_target: u8,
}

/// An agent and the queues they serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConf {
    pub id: String,
    pub name: String,
    /// A plain password (demo files), checked on login when set.
    pub password: Option<String>,
    /// An Argon2 PHC string (`hotline passwd`), checked by the CTI link on login.
    pub password_hash: Option<String>,
    /// (queue index, level 0–9).
    pub queues: Vec<(usize, u8)>,
    pub skills: Vec<String>,
    pub location: Option<String>,
    /// Callers (numbers) this agent is the dedicated account manager for.
    pub accounts: Vec<String>,
    /// Record this agent's calls: `None` follows the queue's setting.
    pub record: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentGroup {
    pub name: String,
    /// Indexes into [`Config::agents`].
    pub agents: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorConf {
    pub id: String,
    pub name: String,
    pub password: Option<String>,
    /// An Argon2 PHC string (`hotline passwd`), checked by the CTI link on login.
    pub password_hash: Option<String>,
    /// Agent groups they supervise; empty: everyone.
    pub groups: Vec<usize>,
}

/// What happens to a blacklisted caller.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BlacklistAction {
    /// Refuse the offered call with this cause (the caller hears the network's
    /// announcement for it).
    Reject(Cause),
    /// Answer and release at once.
    HangUp,
}

/// Phone feature codes. A code is followed by its argument and `#`:
/// `*21 1001 # ` logs agent 1001 in (`*21 1001 * 1234 #` with a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureCodes {
    pub login: String,
    pub logout: String,
    pub ready: String,
    pub not_ready: String,
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            login: "*21".into(),
            logout: "*22".into(),
            ready: "*23".into(),
            not_ready: "*24".into(),
        }
    }
}

/// The engine's configuration, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Local time offset from UTC, for schedules and holidays.
    pub utc_offset_secs: i32,
    /// How long a station may pause between digits before dialling what it has.
    pub inter_digit_timeout: Duration,
    /// How long an agent whose desktop disconnected keeps their login, state and
    /// counters, waiting for it to come back.
    pub desktop_grace: Duration,
    /// A prompt played to held callers.
    pub music_on_hold: Option<String>,
    /// How long a call sent to one agent (`agent:ID`) waits for that agent to be free
    /// before their first queue takes it. Zero: it does not wait.
    pub agent_wait: Duration,
    pub features: FeatureCodes,
    /// Seed for the random strategy, so runs are reproducible.
    pub seed: u64,
    pub trunk_groups: Vec<TrunkGroup>,
    pub stations: Vec<StationConf>,
    pub access_numbers: Vec<AccessNumber>,
    pub schedules: Vec<Schedule>,
    pub holidays: Vec<Holiday>,
    pub queues: Vec<QueueConf>,
    pub agents: Vec<AgentConf>,
    pub agent_groups: Vec<AgentGroup>,
    pub supervisors: Vec<SupervisorConf>,
    /// Number → queues it is VIP in (empty: everywhere).
    pub vips: BTreeMap<String, Vec<usize>>,
    /// Number prefix → action.
    pub blacklist: BTreeMap<String, BlacklistAction>,
    /// Number prefix → location name.
    pub locations: BTreeMap<String, String>,
    /// Not-ready reason code (dialled after the feature code) → reason.
    pub not_ready_reasons: BTreeMap<u8, String>,
}

impl Config {
    /// Parse and validate the engine's tables of an installation file. `origin` names
    /// the file in problems.
    pub fn parse(text: &str, origin: &str) -> Result<Config, Vec<Problem>> {
        let mut p = Parser {
            text,
            origin,
            problems: Vec::new(),
            line_starts: line_starts(text),
            agent_ids: BTreeMap::new(),
        };
        let cfg = p.run();
        if p.problems.is_empty() {
            Ok(cfg)
        } else {
            p.problems.sort_by_key(|x| (x.line, x.column));
            Err(p.problems)
        }
    }

    /// True when `digits` could still grow into a feature code.
    pub fn features_start_with(&self, digits: &str) -> bool {
        let f = &self.features;
        [&f.login, &f.logout, &f.ready, &f.not_ready].iter().any(|c| c.starts_with(digits))
    }

    /// True when `digits` are a feature code (with its argument) or the start of one.
    pub fn is_feature_code(&self, digits: &str) -> bool {
        let f = &self.features;
        self.features_start_with(digits)
            || [&f.login, &f.logout, &f.ready, &f.not_ready].iter().any(|c| digits.starts_with(c.as_str()))
    }

    pub fn queue_index(&self, name: &str) -> Option<usize> {
        self.queues.iter().position(|q| q.name == name)
    }
}

// ---------------------------------------------------------------------------------------
// Raw tables as written.

type S<T> = Spanned<T>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    utc_offset: Option<S<String>>,
    inter_digit_timeout: Option<u64>,
    desktop_grace: Option<u64>,
    agent_wait: Option<u64>,
    music_on_hold: Option<String>,
    seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeatures {
    login: Option<String>,
    logout: Option<String>,
    ready: Option<String>,
    not_ready: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrunkGroup {
    name: S<String>,
    channels: Vec<S<String>>,
    caller_id: Option<String>,
    dial_prefix: Option<S<String>>,
    inbound_dnis: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    port: S<String>,
    extension: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    schedule: S<String>,
    target: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    dnis: S<String>,
    target: S<String>,
    #[serde(default)]
    route: Vec<RawRoute>,
    holiday_target: Option<S<String>>,
    #[serde(default)]
    vip: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    name: S<String>,
    days: Vec<S<String>>,
    hours: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: String,
    date: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: S<String>,
    number: Option<S<String>>,
    strategy: Option<S<String>>,
    #[serde(default)]
    prefer: Vec<S<String>>,
    ring_timeout: Option<u64>,
    max_misses: Option<u32>,
    missed_reason: Option<String>,
    wrap_up: Option<u64>,
    #[serde(default)]
    manual_wrap_up: bool,
    min_wrap_up: Option<u64>,
    max_wait: Option<u64>,
    max_wait_action: Option<S<String>>,
    no_agents_wait: Option<u64>,
    no_agents_action: Option<S<String>>,
    max_length: Option<usize>,
    max_length_action: Option<S<String>>,
    #[serde(default)]
    required_skills: Vec<String>,
    music: Option<String>,
    announce_every: Option<u64>,
    callback_offer_after: Option<u64>,
    #[serde(default)]
    announce_agent_number: bool,
    #[serde(default)]
    reserve_idle: usize,
    record: Option<bool>,
    service_level_target: Option<S<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: S<String>,
    name: String,
    password: Option<String>,
    password_hash: Option<S<String>>,
    #[serde(default)]
    queues: BTreeMap<String, S<i64>>,
    #[serde(default)]
    skills: Vec<String>,
    location: Option<String>,
    #[serde(default)]
    accounts: Vec<String>,
    record: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: S<String>,
    agents: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervisor {
    id: S<String>,
    name: String,
    password: Option<String>,
    password_hash: Option<S<String>>,
    #[serde(default)]
    groups: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVip {
    number: S<String>,
    #[serde(default)]
    queues: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlack {
    number: S<String>,
    action: Option<S<String>>,
    cause: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    prefix: S<String>,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReason {
    code: S<i64>,
    name: String,
}

/// Top-level tables this module owns, with the shape each must have.
pub(crate) const OWN_TABLES: &[&str] = &[
    "engine",
    "features",
    "trunk_group",
    "station",
    "access_number",
    "schedule",
    "holiday",
    "queue",
    "agent",
    "agent_group",
    "supervisor",
    "vip",
    "blacklist",
    "location",
    "not_ready_reason",
];

struct Parser<'a> {
    text: &'a str,
    origin: &'a str,
    problems: Vec<Problem>,
    line_starts: Vec<usize>,
    /// Agent ids and whether each is in a queue, for checking `agent:ID` targets.
    agent_ids: BTreeMap<String, bool>,
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

impl<'a> Parser<'a> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let offset = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let col = self.text[self.line_starts[line - 1]..offset].chars().count() + 1;
        self.problems.push(Problem {
            origin: self.origin.to_string(),
            line,
            column: col,
            message: message.into(),
        });
    }

    fn password_hash(&mut self, h: &Option<S<String>>) -> Option<String> {
        let h = h.as_ref()?;
        if let Err(msg) = crate::link::auth::check_hash(h.get_ref()) {
            self.at(h.span(), msg);
        }
        Some(h.get_ref().clone())
    }

    fn de_error(&mut self, e: toml::de::Error, fallback: Range<usize>, what: &str) {
        let span = e.span().unwrap_or(fallback);
        let msg = hotline_drivers::text::hint_unknown_field(e.message());
        self.at(span, format!("in {what}: {msg}"));
    }

    /// Deserialize every entry of an array of tables, each on its own so one bad entry
    /// does not hide the problems of the next.
    fn entries<T: DeserializeOwned>(&mut self, root: &DeTable<'_>, key: &str) -> Vec<(T, Range<usize>)> {
        let Some((k, v)) = root.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
            return Vec::new();
        };
        let items: Vec<S<DeValue<'_>>> = match v.get_ref() {
            DeValue::Array(a) => a.iter().cloned().collect(),
            DeValue::Table(_) => {
                self.at(k.span(), format!("`{key}` must be an array of tables: write [[{key}]]"));
                return Vec::new();
            }
            other => {
                self.at(v.span(), format!("`{key}` must be an array of tables, found {}", other.type_str()));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            let span = item.span();
            match T::deserialize(ValueDeserializer::from(item)) {
                Ok(t) => out.push((t, span)),
                Err(e) => self.de_error(e, span, &format!("[[{key}]]")),
            }
        }
        out
    }

    fn table<T: DeserializeOwned>(&mut self, root: &DeTable<'_>, key: &str) -> Option<T> {
        let (_, v) = root.iter().find(|(k, _)| k.get_ref().as_ref() == key)?;
        let span = v.span();
        match T::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(t) => Some(t),
            Err(e) => {
                self.de_error(e, span, &format!("[{key}]"));
                None
            }
        }
    }

    fn run(&mut self) -> Config {
        let (root, errors) = DeTable::parse_recoverable(self.text);
        for e in errors {
            let (span, message) = hotline_drivers::text::toml_error(self.text, &e);
            self.at(span, format!("TOML syntax: {message}"));
        }
        let root = root.into_inner();
        for (k, _) in root.iter() {
            let name: &str = k.get_ref().as_ref();
            if OWN_TABLES.contains(&name) {
                continue;
            }
            if let Some(own) = OWN_TABLES.iter().find(|own| near_miss(name, own)) {
                self.at(k.span(), format!("unknown table `{name}`; did you mean `{own}`?"));
            }
        }
        let mut cfg = Config {
            inter_digit_timeout: Duration::from_secs(4),
            desktop_grace: Duration::from_secs(60),
            agent_wait: Duration::from_secs(60),
            seed: 0x5eed_cafe,
            ..Config::default()
        };

        let engine: RawEngine = self.table(&root, "engine").unwrap_or_default();
        if let Some(off) = &engine.utc_offset {
            match parse_utc_offset(off.get_ref()) {
                Some(s) => cfg.utc_offset_secs = s,
                None => self.at(
                    off.span(),
                    format!("bad utc_offset {:?}: expected \"+08:00\" or \"-05:30\"", off.get_ref()),
                ),
            }
        }
        cfg.music_on_hold = engine.music_on_hold.clone();
        if let Some(t) = engine.desktop_grace {
            cfg.desktop_grace = Duration::from_secs(t);
        }
        if let Some(t) = engine.agent_wait {
            cfg.agent_wait = Duration::from_secs(t);
        }
        if let Some(t) = engine.inter_digit_timeout {
            cfg.inter_digit_timeout = Duration::from_secs(t);
        }
        if let Some(seed) = engine.seed {
            cfg.seed = seed;
        }
        if let Some(f) = self.table::<RawFeatures>(&root, "features") {
            let d = FeatureCodes::default();
            cfg.features = FeatureCodes {
                login: f.login.unwrap_or(d.login),
                logout: f.logout.unwrap_or(d.logout),
                ready: f.ready.unwrap_or(d.ready),
                not_ready: f.not_ready.unwrap_or(d.not_ready),
            };
        }

        // Names first, so references can be checked in any order.
        let raw_queues: Vec<(RawQueue, _)> = self.entries(&root, "queue");
        let raw_schedules: Vec<(RawSchedule, _)> = self.entries(&root, "schedule");
        let raw_agents: Vec<(RawAgent, _)> = self.entries(&root, "agent");
        let raw_groups: Vec<(RawGroup, _)> = self.entries(&root, "agent_group");

        let mut queue_names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, (q, _)) in raw_queues.iter().enumerate() {
            if queue_names.insert(q.name.get_ref().clone(), i).is_some() {
                self.at(q.name.span(), format!("queue {:?} is defined twice", q.name.get_ref()));
            }
        }
        let mut schedule_names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, (s, _)) in raw_schedules.iter().enumerate() {
            if schedule_names.insert(s.name.get_ref().clone(), i).is_some() {
                self.at(s.name.span(), format!("schedule {:?} is defined twice", s.name.get_ref()));
            }
        }
        let mut agent_ids: BTreeMap<String, usize> = BTreeMap::new();
        for (i, (a, _)) in raw_agents.iter().enumerate() {
            if agent_ids.insert(a.id.get_ref().clone(), i).is_some() {
                self.at(a.id.span(), format!("agent {:?} is defined twice", a.id.get_ref()));
            }
            self.agent_ids.insert(a.id.get_ref().clone(), !a.queues.is_empty());
        }
        let mut group_names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, (g, _)) in raw_groups.iter().enumerate() {
            if group_names.insert(g.name.get_ref().clone(), i).is_some() {
                self.at(g.name.span(), format!("agent group {:?} is defined twice", g.name.get_ref()));
            }
        }

        // Trunk groups: every channel once.
        let mut used_channels: HashSet<ChannelId> = HashSet::new();
        // Channels named so far (ranges expanded), trunk groups and stations together.
        let mut named = 0usize;
        for (t, _) in self.entries::<RawTrunkGroup>(&root, "trunk_group") {
            let mut channels = Vec::new();
            for r in &t.channels {
                match parse_channel_range(r.get_ref()) {
                    Ok(list) if named + list.len() > MAX_CHANNELS => self.at(r.span(), too_many_channels()),
                    Ok(list) => {
                        named += list.len();
                        // One problem per range, not one per channel of it.
                        let mut reported = false;
                        for ch in list {
                            if !ch.is_trunk() {
                                self.at(
                                    r.span(),
                                    format!(
                                        "{ch} is a station port; trunk groups take E1 channels and FXO ports"
                                    ),
                                );
                                break;
                            }
                            if !used_channels.insert(ch) && !std::mem::replace(&mut reported, true) {
                                self.at(r.span(), format!("channel {ch} is already in another trunk group"));
                            }
                            channels.push(ch);
                        }
                    }
                    Err(msg) => self.at(r.span(), msg),
                }
            }
            if let Some(p) = &t.dial_prefix {
                if !is_digits(p.get_ref()) {
                    self.at(p.span(), "dial_prefix must be digits");
                }
            }
            cfg.trunk_groups.push(TrunkGroup {
                name: t.name.into_inner(),
                channels,
                caller_id: t.caller_id,
                dial_prefix: t.dial_prefix.map(Spanned::into_inner),
                inbound_dnis: t.inbound_dnis,
            });
        }

        // Stations: a single port or a range with consecutive extensions.
        let mut numbers: BTreeMap<String, &'static str> = BTreeMap::new();
        for (s, _) in self.entries::<RawStation>(&root, "station") {
            let ports = match parse_channel_range(s.port.get_ref()) {
                Ok(p) if named + p.len() > MAX_CHANNELS => {
                    self.at(s.port.span(), too_many_channels());
                    continue;
                }
                Ok(p) => p,
                Err(msg) => {
                    self.at(s.port.span(), msg);
                    continue;
                }
            };
            let ext = s.extension.get_ref();
            let Some(first) = ext.parse::<u64>().ok().filter(|_| is_digits(ext)) else {
                self.at(s.extension.span(), "extension must be digits");
                continue;
            };
            // Each port's number is written out at the width given: bounded, so that a
            // long run of leading zeros is not copied for every port of a range.
            if ext.len() > MAX_EXTENSION_DIGITS {
                self.at(
                    s.extension.span(),
                    format!("extension of {} digits: expected at most {MAX_EXTENSION_DIGITS}", ext.len()),
                );
                continue;
            }
            let width = s.extension.get_ref().len();
            named += ports.len();
            let (mut port_reported, mut number_reported) = (false, false);
            for (i, port) in ports.into_iter().enumerate() {
                if port.kind() != hotline_drivers::ChannelKind::Fxs {
                    self.at(s.port.span(), format!("{port} is not an FXS port: stations are card/fxs/port"));
                    break;
                }
                if !used_channels.insert(port) && !std::mem::replace(&mut port_reported, true) {
                    self.at(s.port.span(), format!("port {port} is used twice"));
                }
                let Some(n) = first.checked_add(i as u64) else {
                    self.at(s.extension.span(), "extension numbers run past 18446744073709551615");
                    break;
                };
                let extension = format!("{n:0width$}");
                if numbers.insert(extension.clone(), "station").is_some()
                    && !std::mem::replace(&mut number_reported, true)
                {
                    self.at(s.extension.span(), format!("number {extension} is used twice"));
                }
                cfg.stations.push(StationConf { port, extension });
            }
        }

        // Schedules.
        for (s, _) in &raw_schedules {
            let mut days = [false; 7];
            for d in &s.days {
                match day_index(d.get_ref()) {
                    Some(i) => days[i] = true,
                    None => self.at(
                        d.span(),
                        format!("bad day {:?}: expected mon, tue, wed, thu, fri, sat or sun", d.get_ref()),
                    ),
                }
            }
            let mut hours = Vec::new();
            for h in &s.hours {
                match parse_hours(h.get_ref()) {
                    Some(r) => hours.push(r),
                    None => self.at(
                        h.span(),
                        format!(
                            "bad hours {:?}: expected \"HH:MM-HH:MM\" with the end after the start",
                            h.get_ref()
                        ),
                    ),
                }
            }
            cfg.schedules.push(Schedule { name: s.name.get_ref().clone(), days, hours });
        }
        for (h, _) in self.entries::<RawHoliday>(&root, "holiday") {
            match parse_date(h.date.get_ref()) {
                Some(date) => cfg.holidays.push(Holiday { name: h.name, date }),
                None => self
                    .at(h.date.span(), format!("bad date {:?}: expected \"YYYY-MM-DD\"", h.date.get_ref())),
            }
        }

        // Queues.
        for (q, _) in &raw_queues {
            let strategy = match q.strategy.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
                None | Some(("longest_idle", _)) => Strategy::LongestIdle,
                Some(("round_robin" | "login_order", _)) => Strategy::RoundRobin,
                Some(("fewest_answered", _)) => Strategy::FewestAnswered,
                Some(("random", _)) => Strategy::Random,
                Some((other, span)) => {
                    self.at(span, format!("unknown strategy {other:?}: expected longest_idle, round_robin (login_order), fewest_answered or random"));
                    Strategy::LongestIdle
                }
            };
            let mut prefer = Preferences::default();
            for p in &q.prefer {
                match p.get_ref().as_str() {
                    "dedicated_agent" => prefer.dedicated_agent = true,
                    "last_agent" => prefer.last_agent = true,
                    "location" => prefer.location = true,
                    "higher_level" => prefer.higher_level = true,
                    other => self.at(p.span(), format!("unknown preference {other:?}: expected dedicated_agent, last_agent, location or higher_level")),
                }
            }
            if let Some(n) = &q.number {
                if !is_digits(n.get_ref()) {
                    self.at(n.span(), "queue number must be digits");
                } else if numbers.insert(n.get_ref().clone(), "queue").is_some() {
                    self.at(n.span(), format!("number {} is used twice", n.get_ref()));
                }
            }
            let max_wait =
                self.limit(q.max_wait, &q.max_wait_action, "max_wait", &queue_names, q.name.span());
            let no_agents = self.limit(
                q.no_agents_wait,
                &q.no_agents_action,
                "no_agents_wait",
                &queue_names,
                q.name.span(),
            );
            let max_length = match (q.max_length, &q.max_length_action) {
                (Some(n), Some(a)) => self.target(a, &queue_names).map(|t| (n, t)),
                (Some(n), None) => Some((n, Target::HangUp(Cause::USER_BUSY))),
                (None, Some(a)) => {
                    self.at(a.span(), "max_length_action without max_length");
                    None
                }
                (None, None) => None,
            };
            cfg.queues.push(QueueConf {
                name: q.name.get_ref().clone(),
                number: q.number.as_ref().map(|n| n.get_ref().clone()),
                strategy,
                prefer,
                ring_timeout: Duration::from_secs(q.ring_timeout.unwrap_or(15)),
                max_misses: q.max_misses.unwrap_or(3),
                missed_reason: q.missed_reason.clone().unwrap_or_else(|| "missed calls".into()),
                wrap_up: if q.manual_wrap_up {
                    None
                } else {
                    Some(Duration::from_secs(q.wrap_up.unwrap_or(0)))
                },
                min_wrap_up: Duration::from_secs(q.min_wrap_up.unwrap_or(0)),
                max_wait,
                no_agents,
                max_length,
                required_skills: q.required_skills.clone(),
                music: q.music.clone(),
                announce_every: q.announce_every.filter(|&s| s > 0).map(Duration::from_secs),
                callback_offer_after: q.callback_offer_after.map(Duration::from_secs),
                announce_agent_number: q.announce_agent_number,
                reserve_idle: q.reserve_idle,
                record: q.record.unwrap_or(true),
                service_level_target: match &q.service_level_target {
                    Some(t) if !(1..=100).contains(t.get_ref()) => {
                        self.at(t.span(), "service_level_target is a percentage from 1 to 100");
                        80
                    }
                    Some(t) => *t.get_ref(),
                    None => 80,
                },
            });
        }

        // Access numbers.
        for (a, _) in self.entries::<RawAccess>(&root, "access_number") {
            let target = self.target(&a.target, &queue_names);
            let mut routes = Vec::new();
            for r in &a.route {
                let Some(&si) = schedule_names.get(r.schedule.get_ref()) else {
                    self.at(r.schedule.span(), format!("no schedule named {:?}", r.schedule.get_ref()));
                    continue;
                };
                if let Some(t) = self.target(&r.target, &queue_names) {
                    routes.push((si, t));
                }
            }
            let holiday_target = a.holiday_target.as_ref().and_then(|t| self.target(t, &queue_names));
            if cfg.access_numbers.iter().any(|x| x.dnis == *a.dnis.get_ref()) {
                self.at(a.dnis.span(), format!("access number {} is defined twice", a.dnis.get_ref()));
            }
            if let Some(target) = target {
                cfg.access_numbers.push(AccessNumber {
                    dnis: a.dnis.into_inner(),
                    target,
                    routes,
                    holiday_target,
                    vip: a.vip,
                });
            }
        }

        // Agents.
        for (a, _) in &raw_agents {
            let mut queues = Vec::new();
            for (qname, level) in &a.queues {
                let Some(&qi) = queue_names.get(qname) else {
                    self.at(level.span(), format!("agent {}: no queue named {qname:?}", a.id.get_ref()));
                    continue;
                };
                let lv = *level.get_ref();
                if !(0..=9).contains(&lv) {
                    self.at(level.span(), format!("level {lv} out of range: expected 0 to 9"));
                    continue;
                }
                queues.push((qi, lv as u8));
            }
            cfg.agents.push(AgentConf {
                id: a.id.get_ref().clone(),
                name: a.name.clone(),
                password: a.password.clone(),
                password_hash: self.password_hash(&a.password_hash),
                queues,
                skills: a.skills.clone(),
                location: a.location.clone(),
                accounts: a.accounts.clone(),
                record: a.record,
            });
        }
        for (g, _) in &raw_groups {
            let mut agents = Vec::new();
            for id in &g.agents {
                match agent_ids.get(id.get_ref()) {
                    Some(&i) => agents.push(i),
                    None => self.at(id.span(), format!("no agent with id {:?}", id.get_ref())),
                }
            }
            cfg.agent_groups.push(AgentGroup { name: g.name.get_ref().clone(), agents });
        }
        let mut sup_ids = BTreeSet::new();
        for (s, _) in self.entries::<RawSupervisor>(&root, "supervisor") {
            if !sup_ids.insert(s.id.get_ref().clone()) || agent_ids.contains_key(s.id.get_ref()) {
                self.at(
                    s.id.span(),
                    format!("id {:?} is used twice (agents and supervisors share ids)", s.id.get_ref()),
                );
            }
            let mut groups = Vec::new();
            for g in &s.groups {
                match group_names.get(g.get_ref()) {
                    Some(&i) => groups.push(i),
                    None => self.at(g.span(), format!("no agent group named {:?}", g.get_ref())),
                }
            }
            cfg.supervisors.push(SupervisorConf {
                id: s.id.into_inner(),
                name: s.name,
                password: s.password,
                password_hash: self.password_hash(&s.password_hash),
                groups,
            });
        }

        // Lists.
        for (v, _) in self.entries::<RawVip>(&root, "vip") {
            let mut qs = Vec::new();
            for q in &v.queues {
                match queue_names.get(q.get_ref()) {
                    Some(&i) => qs.push(i),
                    None => self.at(q.span(), format!("no queue named {:?}", q.get_ref())),
                }
            }
            if !is_digits(v.number.get_ref()) {
                self.at(v.number.span(), "VIP number must be digits");
            }
            cfg.vips.entry(v.number.into_inner()).or_default().extend(qs);
        }
        for (b, _) in self.entries::<RawBlack>(&root, "blacklist") {
            if !is_digits(b.number.get_ref()) {
                self.at(b.number.span(), "blacklist number (or prefix) must be digits");
            }
            let cause = match &b.cause {
                Some(c) if (1..=127).contains(c.get_ref()) => Cause(*c.get_ref() as u8),
                Some(c) => {
                    self.at(c.span(), "cause must be a Q.850 value from 1 to 127");
                    Cause::CALL_REJECTED
                }
                None => Cause::CALL_REJECTED,
            };
            let action = match b.action.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
                None | Some(("reject", _)) => BlacklistAction::Reject(cause),
                Some(("hangup", _)) => BlacklistAction::HangUp,
                Some((other, span)) => {
                    self.at(span, format!("unknown action {other:?}: expected reject or hangup"));
                    BlacklistAction::Reject(cause)
                }
            };
            cfg.blacklist.insert(b.number.into_inner(), action);
        }
        for (l, _) in self.entries::<RawLocation>(&root, "location") {
            if !is_digits(l.prefix.get_ref()) {
                self.at(l.prefix.span(), "location prefix must be digits");
            }
            cfg.locations.insert(l.prefix.into_inner(), l.name);
        }
        for (r, _) in self.entries::<RawReason>(&root, "not_ready_reason") {
            match u8::try_from(*r.code.get_ref()) {
                Ok(c) if c <= 99 => {
                    cfg.not_ready_reasons.insert(c, r.name);
                }
                _ => self.at(r.code.span(), "reason code must be 0 to 99"),
            }
        }
        cfg
    }

    fn limit(
        &mut self,
        secs: Option<u64>,
        action: &Option<S<String>>,
        what: &str,
        queues: &BTreeMap<String, usize>,
        at: Range<usize>,
    ) -> Option<(Duration, Target)> {
        match (secs, action) {
            (Some(s), Some(a)) => self.target(a, queues).map(|t| (Duration::from_secs(s), t)),
            (Some(_), None) => {
                self.at(
                    at,
                    format!("{what} is set but its action is not (e.g. {what}_action = \"queue:other\")"),
                );
                None
            }
            (None, Some(a)) => {
                self.at(a.span(), format!("an action without {what}"));
                None
            }
            (None, None) => None,
        }
    }

    fn target(&mut self, t: &S<String>, queues: &BTreeMap<String, usize>) -> Option<Target> {
        match parse_target(t.get_ref(), |n| queues.get(n).copied()) {
            Ok(Target::Agent(id)) => match self.agent_ids.get(&id) {
                Some(true) => Some(Target::Agent(id)),
                Some(false) => {
                    self.at(
                        t.span(),
                        format!("agent {id:?} is in no queue: an agent target needs a queue to fall back to"),
                    );
                    None
                }
                None => {
                    self.at(t.span(), format!("no agent with id {id:?}"));
                    None
                }
            },
            Ok(x) => Some(x),
            Err(msg) => {
                self.at(t.span(), msg);
                None
            }
        }
    }
}

fn near_miss(name: &str, own: &str) -> bool {
    name == format!("{own}s")
        || name.replace('-', "_") == own
        || edit_distance(name, own) <= 2 && own.len() > 4
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `queue:NAME`, `agent:ID`, `ivr:FLOW`, `voicemail:BOX`, `external:NUMBER`, `hangup` or
/// `hangup:CAUSE`.
pub(crate) fn parse_target(s: &str, queue: impl Fn(&str) -> Option<usize>) -> Result<Target, String> {
    let expected =
        "expected queue:NAME, agent:ID, ivr:FLOW, voicemail:BOX, external:NUMBER, hangup or hangup:CAUSE";
    let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
    match kind {
        "queue" => queue(arg).map(Target::Queue).ok_or_else(|| format!("no queue named {arg:?}")),
        "agent" if !arg.is_empty() => Ok(Target::Agent(arg.to_string())),
        "ivr" if !arg.is_empty() => Ok(Target::Ivr(arg.to_string())),
        "voicemail" if !arg.is_empty() => Ok(Target::Voicemail(arg.to_string())),
        "external" if is_digits(arg) => Ok(Target::External(arg.to_string())),
        "hangup" if arg.is_empty() => Ok(Target::HangUp(Cause::NORMAL_CLEARING)),
        "hangup" => match arg.parse::<u8>() {
            Ok(c) if (1..=127).contains(&c) => Ok(Target::HangUp(Cause(c))),
            _ => Err(format!("bad cause in {s:?}: expected a Q.850 value 1 to 127")),
        },
        _ => Err(format!("bad target {s:?}: {expected}")),
    }
}

fn parse_utc_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn day_index(s: &str) -> Option<usize> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().position(|d| s.eq_ignore_ascii_case(d))
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
}

fn parse_hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (parse_hhmm(a)?, parse_hhmm(b)?);
    (a < b).then_some((a, b))
}

fn parse_date(s: &str) -> Option<(i32, u32, u32)> {
    let mut it = s.split('-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    (it.next().is_none() && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// The most channels an installation file may name in its trunk groups and stations
/// together, ranges expanded: far above any center, and a bound on what a few bytes
/// (`"1/fxo/1-65535"`, repeated) can make the engine allocate.
pub const MAX_CHANNELS: usize = 65_536;

/// The longest station extension, in digits (as many as a u64 has).
pub const MAX_EXTENSION_DIGITS: usize = 20;

fn too_many_channels() -> String {
    format!(
        "more than {MAX_CHANNELS} channels in trunk groups and stations together: expected at most \
         {MAX_CHANNELS}"
    )
}

/// A channel or a range of channels: `1/1/5`, `1/1/1-1/1/31` (timeslot 16 skipped),
/// `1/fxo/1-4`, `1/fxs/1-1/fxs/8`.
pub fn parse_channel_range(s: &str) -> Result<Vec<ChannelId>, String> {
    let bad = || {
        format!("bad channel range {s:?}: expected card/span/timeslot (1/1/5), a range 1/1/1-1/1/31, or 1/fxo/1-4, 1/fxs/1-8")
    };
    let Some((a, b)) = s.split_once('-') else {
        return s.parse::<ChannelId>().map(|c| vec![c]).map_err(|_| bad());
    };
    let first: ChannelId = a.parse().map_err(|_| bad())?;
    // The end may be a full id or just the last number.
    let last: ChannelId = match b.parse::<ChannelId>() {
        Ok(c) => c,
        Err(_) => {
            let n: u16 = b.parse().map_err(|_| bad())?;
            let mut c = first;
            match &mut c.addr {
                hotline_drivers::ChannelAddr::E1 { timeslot, .. } => {
                    *timeslot = u8::try_from(n).map_err(|_| bad())?
                }
                hotline_drivers::ChannelAddr::Fxo { port } | hotline_drivers::ChannelAddr::Fxs { port } => {
                    *port = n
                }
            }
            c
        }
    };
    use hotline_drivers::ChannelAddr::*;
    let out: Vec<ChannelId> = match (first.addr, last.addr) {
        _ if first.card != last.card => return Err(format!("{s:?}: a range stays on one card")),
        (E1 { span: s1, timeslot: t1 }, E1 { span: s2, timeslot: t2 }) if (s1, t1) <= (s2, t2) => (s1..=s2)
            .flat_map(|span| {
                hotline_drivers::channel::e1_bearer_timeslots()
                    .filter(move |&ts| (span, ts) >= (s1, t1) && (span, ts) <= (s2, t2))
                    .map(move |ts| ChannelId::e1(first.card, span, ts))
            })
            .collect(),
        (Fxo { port: p1 }, Fxo { port: p2 }) if p1 <= p2 => {
            (p1..=p2).map(|p| ChannelId::fxo(first.card, p)).collect()
        }
        (Fxs { port: p1 }, Fxs { port: p2 }) if p1 <= p2 => {
            (p1..=p2).map(|p| ChannelId::fxs(first.card, p)).collect()
        }
        _ => return Err(format!("{s:?}: a range runs from a first to a later channel of the same kind")),
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ranges_expand_and_skip_the_signalling_timeslot() {
        let r = parse_channel_range("1/1/1-1/1/31").unwrap();
        assert_eq!(r.len(), 30);
        assert!(!r.contains(&ChannelId::e1(1, 1, 16)));
        assert_eq!(parse_channel_range("1/fxo/1-4").unwrap().len(), 4);
        assert_eq!(parse_channel_range("2/fxs/3").unwrap(), vec![ChannelId::fxs(2, 3)]);
        assert!(parse_channel_range("1/fxo/4-1").is_err());
        assert_eq!(parse_channel_range("1/1/1-1/2/31").unwrap().len(), 60);
    }
}
