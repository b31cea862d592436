//! Flows as an installer writes them: TOML files, one or several flows per file, each a
//! set of named nodes. [`Flows::parse`] turns the text into the validated model the
//! interpreter runs, or a list of [`Problem`]s located by file, line and column with
//! what was expected; [`crate::check`] adds the whole-flow checks (missing nodes,
//! unreachable nodes, missing prompts, loops with no way out).
//!
//! ```toml
//! lang = "en"                          # default language of prompts and say nodes
//! prompts = "../../prompts/en.toml"    # the prompt set's text (names), relative to this file
//!
//! [flow.main]
//! start = "welcome"
//!
//! [flow.main.welcome]
//! type = "play"
//! prompts = ["welcome"]
//! next = "menu"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::say::{Lang, SayKind};

/// One thing wrong with a flow file, located for a person to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file name (or other origin) given to the parser.
    pub origin: String,
    /// 1-based line and column; 0 when the problem has no place.
    pub line: usize,
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
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

/// A place in a flow file (1-based line and column).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A reference to a node by name, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    pub node: String,
    pub at: Pos,
}

/// A prompt as written in a node: a prompt name of the set (`welcome`), possibly with
/// variables (`status_{status}`), or `tts:Some text {var}` for text-to-speech.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptRef {
    pub name: String,
    pub at: Pos,
}

/// A menu: prompts, then one key chooses a branch.
#[derive(Clone, Debug, PartialEq)]
pub struct Menu {
    pub prompts: Vec<PromptRef>,
    /// Key (one DTMF character) to branch.
    pub choices: BTreeMap<char, Ref>,
    /// How long to wait for a key once the prompts have played.
    pub timeout: Duration,
    /// Attempts after the first one before `failure`.
    pub retries: u32,
    /// Played on a key that is no choice, before the menu repeats.
    pub invalid: Vec<PromptRef>,
    /// Played when no key came in time, before the menu repeats.
    pub no_input: Vec<PromptRef>,
    /// Where to go when the retries are used up.
    pub failure: Ref,
}

/// Collect digits into a variable.
#[derive(Clone, Debug, PartialEq)]
pub struct Collect {
    pub prompts: Vec<PromptRef>,
    pub var: String,
    pub min: usize,
    pub max: usize,
    /// Ends the entry early (not stored); `None`: only `max` or the timeout ends it.
    pub terminator: Option<char>,
    /// Wait for the first digit.
    pub timeout: Duration,
    /// Wait between digits.
    pub inter_digit: Duration,
    pub retries: u32,
    pub invalid: Vec<PromptRef>,
    pub next: Ref,
    pub failure: Ref,
}

/// A comparison of a variable, for condition nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    Eq(String),
    Ne(String),
    /// Numeric comparisons; a value that is no number fails them.
    Lt(String),
    Gt(String),
    Prefix(String),
    /// The variable is unset or empty.
    Empty,
    /// The variable is set and not empty.
    Set,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub var: String,
    pub test: Test,
    pub next: Ref,
}

/// Weekly hours for a time-of-day branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeRule {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes since midnight, half-open.
    pub hours: Vec<(u32, u32)>,
    pub next: Ref,
}

/// A moment in local time as a time-of-day branch sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// Monday 0 to Sunday 6.
    pub weekday: usize,
    /// Minutes since local midnight.
    pub minute: u32,
}

impl LocalTime {
    /// Unix seconds seen at a UTC offset.
    pub fn at(unix_secs: i64, utc_offset_secs: i32) -> LocalTime {
        let secs = unix_secs + i64::from(utc_offset_secs);
        let days = secs.div_euclid(86_400);
        // 1970-01-01 was a Thursday (index 3, Monday first).
        LocalTime {
            weekday: (days + 3).rem_euclid(7) as usize,
            minute: (secs.rem_euclid(86_400) / 60) as u32,
        }
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self.weekday % 7];
        write!(f, "{day} {:02}:{:02}", self.minute / 60, self.minute % 60)
    }
}

/// The first rule open at `t` (its index), or `None`: the node's default.
pub fn time_branch(rules: &[TimeRule], t: LocalTime) -> Option<usize> {
    rules.iter().position(|r| r.days[t.weekday] && r.hours.iter().any(|&(a, b)| (a..b).contains(&t.minute)))
}

impl std::fmt::Display for TimeRule {
    /// As a flow file writes it: `mon,tue 09:00-18:00`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let days: Vec<&str> = names.iter().zip(self.days).filter(|(_, on)| *on).map(|(n, _)| *n).collect();
        let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let hours: Vec<String> =
            self.hours.iter().map(|&(a, b)| format!("{}-{}", hhmm(a), hhmm(b))).collect();
        let days = if days.len() == 7 { "every day".to_string() } else { days.join(",") };
        write!(f, "{days} {}", hours.join(","))
    }
}

/// An HTTP request to a business system.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpNode {
    pub method: String,
    /// `{var}` replaced by the variable, URL-encoded.
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// JSON object fields from templates; empty: no body.
    pub body: BTreeMap<String, String>,
    /// Variable name to a JSON pointer (`/ticket/status`) or dotted path (`ticket.status`).
    pub fields: BTreeMap<String, String>,
    pub timeout: Duration,
    pub next: Ref,
    /// Network error, timeout, a status that is not 2xx, or a body that is not JSON.
    pub failure: Ref,
}

/// What a node does.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Play {
        prompts: Vec<PromptRef>,
        barge_in: bool,
        next: Ref,
    },
    Menu(Menu),
    Collect(Collect),
    Say {
        what: SayKind,
        value: String,
        lang: Option<Lang>,
        barge_in: bool,
        next: Ref,
    },
    Record {
        prompts: Vec<PromptRef>,
        var: String,
        max: Duration,
        silence_end: Option<Duration>,
        next: Ref,
    },
    Queue {
        prompts: Vec<PromptRef>,
        queue: String,
        priority: Option<i64>,
        data: BTreeMap<String, String>,
    },
    Agent {
        prompts: Vec<PromptRef>,
        agent: String,
        data: BTreeMap<String, String>,
    },
    Voicemail {
        mailbox: String,
        greeting: Vec<PromptRef>,
        max: Duration,
        silence_end: Option<Duration>,
        goodbye: Vec<PromptRef>,
    },
    Transfer {
        prompts: Vec<PromptRef>,
        number: String,
    },
    HangUp {
        prompts: Vec<PromptRef>,
        cause: Option<u8>,
    },
    /// To another node of this flow, or to the start (or a node) of another flow.
    Goto {
        flow: Option<(String, Pos)>,
        node: Option<Ref>,
    },
    /// Back to the menu before the current one.
    Back,
    /// Back to the flow's start.
    Top,
    Set {
        vars: BTreeMap<String, String>,
        next: Ref,
    },
    Condition {
        cases: Vec<Case>,
        default: Ref,
    },
    Time {
        rules: Vec<TimeRule>,
        default: Ref,
    },
    Http(HttpNode),
}

impl NodeKind {
    /// The type name as written in a flow file.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Play { .. } => "play",
            NodeKind::Menu(_) => "menu",
            NodeKind::Collect(_) => "collect",
            NodeKind::Say { .. } => "say",
            NodeKind::Record { .. } => "record",
            NodeKind::Queue { .. } => "queue",
            NodeKind::Agent { .. } => "agent",
            NodeKind::Voicemail { .. } => "voicemail",
            NodeKind::Transfer { .. } => "transfer",
            NodeKind::HangUp { .. } => "hangup",
            NodeKind::Goto { .. } => "goto",
            NodeKind::Back => "back",
            NodeKind::Top => "top",
            NodeKind::Set { .. } => "set",
            NodeKind::Condition { .. } => "condition",
            NodeKind::Time { .. } => "time",
            NodeKind::Http(_) => "http",
        }
    }

    /// Nodes that end the caller's time in this flow: the call is handed back to the
    /// engine (queue, agent, voicemail, transfer, hang-up) or goes to another flow.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            NodeKind::Queue { .. }
                | NodeKind::Agent { .. }
                | NodeKind::Voicemail { .. }
                | NodeKind::Transfer { .. }
                | NodeKind::HangUp { .. }
                | NodeKind::Goto { flow: Some(_), .. }
        )
    }

    /// Every branch to another node of the same flow, with a label for messages.
    pub fn branches(&self) -> Vec<(String, &Ref)> {
        let mut out: Vec<(String, &Ref)> = Vec::new();
        match self {
            NodeKind::Play { next, .. }
            | NodeKind::Say { next, .. }
            | NodeKind::Record { next, .. }
            | NodeKind::Set { next, .. } => out.push(("next".into(), next)),
            NodeKind::Menu(m) => {
                for (k, r) in &m.choices {
                    out.push((format!("key {k}"), r));
                }
                out.push(("failure".into(), &m.failure));
            }
            NodeKind::Collect(c) => {
                out.push(("next".into(), &c.next));
                out.push(("failure".into(), &c.failure));
            }
            NodeKind::Goto { flow: None, node: Some(r) } => out.push(("node".into(), r)),
            NodeKind::Condition { cases, default } => {
                for (i, c) in cases.iter().enumerate() {
                    out.push((format!("case {}", i + 1), &c.next));
                }
                out.push(("default".into(), default));
            }
            NodeKind::Time { rules, default } => {
                for (i, r) in rules.iter().enumerate() {
                    out.push((format!("rule {}", i + 1), &r.next));
                }
                out.push(("default".into(), default));
            }
            NodeKind::Http(h) => {
                out.push(("next".into(), &h.next));
                out.push(("failure".into(), &h.failure));
            }
            NodeKind::Queue { .. }
            | NodeKind::Agent { .. }
            | NodeKind::Voicemail { .. }
            | NodeKind::Transfer { .. }
            | NodeKind::HangUp { .. }
            | NodeKind::Goto { .. }
            | NodeKind::Back
            | NodeKind::Top => {}
        }
        out
    }

    /// Every prompt the node may play, as written.
    pub fn prompts(&self) -> Vec<&PromptRef> {
        let mut out: Vec<&PromptRef> = Vec::new();
        match self {
            NodeKind::Play { prompts, .. }
            | NodeKind::Record { prompts, .. }
            | NodeKind::Queue { prompts, .. }
            | NodeKind::Agent { prompts, .. }
            | NodeKind::Transfer { prompts, .. }
            | NodeKind::HangUp { prompts, .. } => out.extend(prompts),
            NodeKind::Menu(m) => out.extend(m.prompts.iter().chain(&m.invalid).chain(&m.no_input)),
            NodeKind::Collect(c) => out.extend(c.prompts.iter().chain(&c.invalid)),
            NodeKind::Voicemail { greeting, goodbye, .. } => out.extend(greeting.iter().chain(goodbye)),
            _ => {}
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    /// Where the node's name is written.
    pub at: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub name: String,
    pub start: Ref,
    /// Language for this flow's say nodes and prompts (else the file's).
    pub lang: Lang,
    pub nodes: BTreeMap<String, Node>,
    pub at: Pos,
    /// How desktops show the flow's variables: variable → label (`labels = {ticket =
    /// "Ticket number"}`). Variables without one are internal.
    pub labels: BTreeMap<String, String>,
}

/// Every flow of an installation, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flows {
    pub flows: BTreeMap<String, Flow>,
    /// The file's `prompts` key: the prompt set's text file, as written (relative to
    /// the flow file).
    pub prompt_set: Option<String>,
    /// Where the `prompts` key's value is written, for problems with the prompt set.
    pub prompt_set_at: Pos,
    /// Where each flow came from (file name), for messages.
    pub origin: String,
}

impl Flows {
    /// Parse a flow file. Structural problems only (syntax, types, unknown keys and node
    /// types, bad values); [`crate::check::check`] finds the rest.
    pub fn parse(text: &str, origin: &str) -> Result<Flows, Vec<Problem>> {
        let mut p = Parser { text, origin, problems: Vec::new(), line_starts: line_starts(text) };
        let flows = p.run();
        p.problems.sort_by_key(|x| (x.line, x.column));
        if p.problems.is_empty() {
            Ok(flows)
        } else {
            Err(p.problems)
        }
    }

    /// Add the flows of another file; a flow name used twice is a problem.
    pub fn merge(&mut self, other: Flows) -> Result<(), Problem> {
        for (name, f) in other.flows {
            if self.flows.contains_key(&name) {
                return Err(Problem {
                    origin: other.origin.clone(),
                    line: f.at.line,
                    column: f.at.column,
                    message: format!("flow `{name}` is already defined in {}", self.origin),
                });
            }
            self.flows.insert(name, f);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Flow> {
        self.flows.get(name)
    }
}

// ---------------------------------------------------------------------------------------
// Raw tables as written.

type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlay {
    prompts: Vec<S<String>>,
    next: S<String>,
    barge_in: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMenu {
    #[serde(default)]
    prompts: Vec<S<String>>,
    choices: BTreeMap<String, S<String>>,
    timeout: Option<S<f64>>,
    retries: Option<u32>,
    #[serde(default)]
    invalid: Vec<S<String>>,
    #[serde(default)]
    no_input: Vec<S<String>>,
    failure: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollect {
    #[serde(default)]
    prompts: Vec<S<String>>,
    var: S<String>,
    min: Option<usize>,
    max: S<usize>,
    terminator: Option<S<String>>,
    timeout: Option<S<f64>>,
    inter_digit: Option<S<f64>>,
    retries: Option<u32>,
    #[serde(default)]
    invalid: Vec<S<String>>,
    next: S<String>,
    failure: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSay {
    say: S<String>,
    value: String,
    lang: Option<S<String>>,
    barge_in: Option<bool>,
    next: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    #[serde(default)]
    prompts: Vec<S<String>>,
    var: S<String>,
    max: Option<S<f64>>,
    silence_end: Option<S<f64>>,
    next: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    #[serde(default)]
    prompts: Vec<S<String>>,
    queue: S<String>,
    priority: Option<i64>,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    #[serde(default)]
    prompts: Vec<S<String>>,
    agent: S<String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVoicemail {
    mailbox: S<String>,
    greeting: Option<Vec<S<String>>>,
    max: Option<S<f64>>,
    silence_end: Option<S<f64>>,
    #[serde(default)]
    goodbye: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    #[serde(default)]
    prompts: Vec<S<String>>,
    number: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHangUp {
    #[serde(default)]
    prompts: Vec<S<String>>,
    cause: Option<S<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGoto {
    node: Option<S<String>>,
    flow: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmpty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    vars: BTreeMap<String, String>,
    next: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    var: S<String>,
    eq: Option<String>,
    ne: Option<String>,
    lt: Option<String>,
    gt: Option<String>,
    prefix: Option<String>,
    empty: Option<bool>,
    next: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    cases: Vec<S<RawCase>>,
    default: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRule {
    days: Vec<S<String>>,
    hours: Vec<S<String>>,
    next: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    rules: Vec<RawTimeRule>,
    default: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    method: Option<S<String>>,
    url: S<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: BTreeMap<String, String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    timeout: Option<S<f64>>,
    next: S<String>,
    failure: S<String>,
}

/// The node types a flow file may use, for the "unknown node type" message.
pub const NODE_TYPES: &[&str] = &[
    "play",
    "menu",
    "collect",
    "say",
    "record",
    "queue",
    "agent",
    "voicemail",
    "transfer",
    "hangup",
    "goto",
    "back",
    "top",
    "set",
    "condition",
    "time",
    "http",
];

struct Parser<'a> {
    text: &'a str,
    origin: &'a str,
    problems: Vec<Problem>,
    line_starts: Vec<usize>,
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

impl<'a> Parser<'a> {
    fn pos(&self, span: &Range<usize>) -> Pos {
        let offset = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let column = self.text[self.line_starts[line - 1]..offset].chars().count() + 1;
        Pos { line, column }
    }

    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let pos = self.pos(&span);
        self.problems.push(Problem {
            origin: self.origin.to_string(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }

    fn r(&self, s: &S<String>) -> Ref {
        Ref { node: s.get_ref().clone(), at: self.pos(&s.span()) }
    }

    fn prompts(&mut self, list: &[S<String>]) -> Vec<PromptRef> {
        let mut out = Vec::new();
        for p in list {
            if p.get_ref().trim().is_empty() {
                self.at(p.span(), "empty prompt name: expected a prompt of the set (welcome) or tts:TEXT");
                continue;
            }
            if let Err(e) = crate::template::check(p.get_ref()) {
                self.at(p.span(), e);
            }
            out.push(PromptRef { name: p.get_ref().clone(), at: self.pos(&p.span()) });
        }
        out
    }

    fn secs(&mut self, v: &Option<S<f64>>, default: f64, what: &str) -> Duration {
        match v {
            None => Duration::from_secs_f64(default),
            Some(s) if s.get_ref().is_finite() && *s.get_ref() > 0.0 && *s.get_ref() <= 86_400.0 => {
                Duration::from_secs_f64(*s.get_ref())
            }
            Some(s) => {
                self.at(s.span(), format!("bad {what} {}: expected seconds, more than 0", s.get_ref()));
                Duration::from_secs_f64(default)
            }
        }
    }

    fn templates<'m>(&mut self, map: impl IntoIterator<Item = &'m String>, span: &Range<usize>) {
        for v in map {
            if let Err(e) = crate::template::check(v) {
                self.at(span.clone(), e);
            }
        }
    }

    fn run(&mut self) -> Flows {
        let (root, errors) = DeTable::parse_recoverable(self.text);
        for e in errors {
            let (span, message) = hotline_drivers::text::toml_error(self.text, &e);
            self.at(span, format!("TOML syntax: {message}"));
        }
        let root = root.into_inner();
        let mut flows = Flows { origin: self.origin.to_string(), ..Flows::default() };
        let mut file_lang = Lang::En;
        for (k, v) in root.iter() {
            let key: &str = k.get_ref().as_ref();
            match (key, v.get_ref()) {
                ("lang", DeValue::String(s)) => match Lang::parse(s) {
                    Some(l) => file_lang = l,
                    None => {
                        self.at(v.span(), format!("unknown lang {:?}: expected \"en\" or \"zh\"", s.as_ref()))
                    }
                },
                ("prompts", DeValue::String(s)) => {
                    flows.prompt_set = Some(s.to_string());
                    flows.prompt_set_at = self.pos(&v.span());
                }
                ("flow", DeValue::Table(_)) => {}
                ("lang" | "prompts", other) => {
                    self.at(v.span(), format!("`{key}` must be a string, found {}", other.type_str()))
                }
                ("flow", other) => self.at(
                    v.span(),
                    format!("`flow` must be a table of flows ([flow.NAME]), found {}", other.type_str()),
                ),
                _ => self.at(
                    k.span(),
                    format!("unknown key `{key}`: expected lang, prompts or [flow.NAME] tables"),
                ),
            }
        }
        let Some((_, fv)) = root.iter().find(|(k, _)| k.get_ref().as_ref() == "flow") else {
            self.at(0..0, "no flows: expected at least one [flow.NAME] table");
            return flows;
        };
        let DeValue::Table(ft) = fv.get_ref() else { return flows };
        for (name, body) in ft.iter() {
            let fname: &str = name.get_ref().as_ref();
            let DeValue::Table(t) = body.get_ref() else {
                self.at(
                    name.span(),
                    format!(
                        "flow `{fname}` must be a table ([flow.{fname}]), found {}",
                        body.get_ref().type_str()
                    ),
                );
                continue;
            };
            if let Some(f) = self.flow(fname, name.span(), body.span(), t, file_lang) {
                flows.flows.insert(fname.to_string(), f);
            }
        }
        flows
    }

    fn flow(
        &mut self,
        name: &str,
        name_span: Range<usize>,
        span: Range<usize>,
        t: &DeTable<'_>,
        lang: Lang,
    ) -> Option<Flow> {
        let mut start = None;
        let mut flow_lang = lang;
        let mut nodes = BTreeMap::new();
        let mut labels = BTreeMap::new();
        for (k, v) in t.iter() {
            let key: &str = k.get_ref().as_ref();
            match (key, v.get_ref()) {
                ("labels", DeValue::Table(lt)) => {
                    for (var, label) in lt.iter() {
                        match label.get_ref() {
                            DeValue::String(l) => {
                                labels.insert(var.get_ref().to_string(), l.to_string());
                            }
                            other => self.at(
                                label.span(),
                                format!(
                                    "in flow `{name}`: the label of `{}` must be a string, found {}",
                                    var.get_ref(),
                                    other.type_str()
                                ),
                            ),
                        }
                    }
                }
                ("start", DeValue::String(s)) => {
                    start = Some(Ref { node: s.to_string(), at: self.pos(&v.span()) });
                }
                ("lang", DeValue::String(s)) => match Lang::parse(s) {
                    Some(l) => flow_lang = l,
                    None => {
                        self.at(v.span(), format!("unknown lang {:?}: expected \"en\" or \"zh\"", s.as_ref()))
                    }
                },
                ("description", DeValue::String(_)) => {}
                (_, DeValue::Table(nt)) => {
                    if let Some(node) = self.node(name, key, k.span(), v, nt) {
                        nodes.insert(key.to_string(), node);
                    }
                }
                (_, other) => self.at(
                    k.span(),
                    format!(
                        "in flow `{name}`: `{key}` = {} is neither a setting (start, lang, description, labels) \
                         nor a node table ([flow.{name}.{key}])",
                        other.type_str()
                    ),
                ),
            }
        }
        let Some(start) = start else {
            self.at(name_span, format!("flow `{name}` has no `start`: expected start = \"NODE\""));
            return None;
        };
        let _ = span;
        Some(Flow { name: name.to_string(), start, lang: flow_lang, nodes, at: self.pos(&name_span), labels })
    }

    fn de<T: DeserializeOwned>(
        &mut self,
        flow: &str,
        id: &str,
        v: &S<DeValue<'_>>,
        t: &DeTable<'_>,
    ) -> Option<T> {
        // Deserialize the node's table without its `type`, so each node type can deny
        // the keys it does not know.
        let mut rest = DeTable::new();
        for (k, val) in t.iter() {
            if k.get_ref().as_ref() != "type" {
                rest.insert(k.clone(), val.clone());
            }
        }
        let value = Spanned::new(v.span(), DeValue::Table(rest));
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(x) => Some(x),
            Err(e) => {
                let span = e.span().unwrap_or(v.span());
                self.at(span, format!("in node `{flow}.{id}`: {}", e.message().trim()));
                None
            }
        }
    }

    fn node(
        &mut self,
        flow: &str,
        id: &str,
        key_span: Range<usize>,
        v: &S<DeValue<'_>>,
        t: &DeTable<'_>,
    ) -> Option<Node> {
        let Some((_, ty)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == "type") else {
            self.at(
                key_span,
                format!("node `{flow}.{id}` has no `type`: expected type = one of {}", NODE_TYPES.join(", ")),
            );
            return None;
        };
        let DeValue::String(tyname) = ty.get_ref() else {
            self.at(ty.span(), format!("node type must be a string, found {}", ty.get_ref().type_str()));
            return None;
        };
        let at = self.pos(&key_span);
        let kind = match tyname.as_ref() {
            "play" => {
                let r: RawPlay = self.de(flow, id, v, t)?;
                NodeKind::Play {
                    prompts: self.prompts(&r.prompts),
                    barge_in: r.barge_in.unwrap_or(true),
                    next: self.r(&r.next),
                }
            }
            "menu" => {
                let r: RawMenu = self.de(flow, id, v, t)?;
                let mut choices = BTreeMap::new();
                for (key, target) in &r.choices {
                    let mut chars = key.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) if hotline_drivers::dsp::dtmf::is_dtmf_digit(c) => {
                            choices.insert(c, self.r(target));
                        }
                        _ => self.at(
                            target.span(),
                            format!(
                                "menu choice {key:?} is not a key: expected one DTMF key (0-9, *, #, A-D)"
                            ),
                        ),
                    }
                }
                if r.choices.is_empty() {
                    self.at(
                        key_span.clone(),
                        format!(
                            "menu `{flow}.{id}` has no choices: expected choices = {{ \"1\" = \"NODE\" }}"
                        ),
                    );
                }
                NodeKind::Menu(Menu {
                    prompts: self.prompts(&r.prompts),
                    choices,
                    timeout: self.secs(&r.timeout, 5.0, "timeout"),
                    retries: r.retries.unwrap_or(2),
                    invalid: self.prompts(&r.invalid),
                    no_input: self.prompts(&r.no_input),
                    failure: self.r(&r.failure),
                })
            }
            "collect" => {
                let r: RawCollect = self.de(flow, id, v, t)?;
                let min = r.min.unwrap_or(1);
                let max = *r.max.get_ref();
                if max == 0 || min > max || max > 64 {
                    self.at(
                        r.max.span(),
                        format!("bad length: min {min}, max {max}: expected 1 <= min <= max <= 64"),
                    );
                }
                let terminator = match &r.terminator {
                    None => Some('#'),
                    Some(s) if s.get_ref().is_empty() => None,
                    Some(s) => {
                        let mut cs = s.get_ref().chars();
                        match (cs.next(), cs.next()) {
                            (Some(c), None) if hotline_drivers::dsp::dtmf::is_dtmf_digit(c) => Some(c),
                            _ => {
                                self.at(
                                    s.span(),
                                    format!(
                                        "bad terminator {:?}: expected one DTMF key (#) or \"\" for none",
                                        s.get_ref()
                                    ),
                                );
                                None
                            }
                        }
                    }
                };
                NodeKind::Collect(Collect {
                    prompts: self.prompts(&r.prompts),
                    var: self.var_name(&r.var),
                    min,
                    max,
                    terminator,
                    timeout: self.secs(&r.timeout, 5.0, "timeout"),
                    inter_digit: self.secs(&r.inter_digit, 3.0, "inter_digit"),
                    retries: r.retries.unwrap_or(2),
                    invalid: self.prompts(&r.invalid),
                    next: self.r(&r.next),
                    failure: self.r(&r.failure),
                })
            }
            "say" => {
                let r: RawSay = self.de(flow, id, v, t)?;
                let what = match SayKind::parse(r.say.get_ref()) {
                    Some(k) => k,
                    None => {
                        self.at(
                            r.say.span(),
                            format!(
                                "cannot say {:?}: expected number, digits, money, date, time or datetime",
                                r.say.get_ref()
                            ),
                        );
                        SayKind::Number
                    }
                };
                let lang = match &r.lang {
                    None => None,
                    Some(l) => match Lang::parse(l.get_ref()) {
                        Some(x) => Some(x),
                        None => {
                            self.at(
                                l.span(),
                                format!("unknown lang {:?}: expected \"en\" or \"zh\"", l.get_ref()),
                            );
                            None
                        }
                    },
                };
                self.templates([&r.value], &v.span());
                NodeKind::Say {
                    what,
                    value: r.value,
                    lang,
                    barge_in: r.barge_in.unwrap_or(true),
                    next: self.r(&r.next),
                }
            }
            "record" => {
                let r: RawRecord = self.de(flow, id, v, t)?;
                NodeKind::Record {
                    prompts: self.prompts(&r.prompts),
                    var: self.var_name(&r.var),
                    max: self.secs(&r.max, 60.0, "max"),
                    silence_end: r
                        .silence_end
                        .as_ref()
                        .map(|_| self.secs(&r.silence_end, 5.0, "silence_end")),
                    next: self.r(&r.next),
                }
            }
            "queue" => {
                let r: RawQueue = self.de(flow, id, v, t)?;
                self.templates(r.data.values(), &v.span());
                NodeKind::Queue {
                    prompts: self.prompts(&r.prompts),
                    queue: self.nonempty(&r.queue, "queue name"),
                    priority: r.priority,
                    data: r.data,
                }
            }
            "agent" => {
                let r: RawAgent = self.de(flow, id, v, t)?;
                self.templates(r.data.values().chain([r.agent.get_ref()]), &v.span());
                NodeKind::Agent {
                    prompts: self.prompts(&r.prompts),
                    agent: self.nonempty(&r.agent, "agent id"),
                    data: r.data,
                }
            }
            "voicemail" => {
                let r: RawVoicemail = self.de(flow, id, v, t)?;
                let greeting = match &r.greeting {
                    Some(g) => self.prompts(g),
                    None => vec![PromptRef { name: "vm_greeting".into(), at }],
                };
                NodeKind::Voicemail {
                    mailbox: self.nonempty(&r.mailbox, "mailbox"),
                    greeting,
                    max: self.secs(&r.max, 120.0, "max"),
                    silence_end: Some(self.secs(&r.silence_end, 5.0, "silence_end")),
                    goodbye: self.prompts(&r.goodbye),
                }
            }
            "transfer" => {
                let r: RawTransfer = self.de(flow, id, v, t)?;
                let n = r.number.get_ref();
                if !n.contains('{') && (n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit())) {
                    self.at(r.number.span(), format!("bad number {n:?}: expected digits or a {{var}}"));
                }
                self.templates([n], &r.number.span());
                NodeKind::Transfer { prompts: self.prompts(&r.prompts), number: n.clone() }
            }
            "hangup" => {
                let r: RawHangUp = self.de(flow, id, v, t)?;
                let cause = match &r.cause {
                    None => None,
                    Some(c) if (1..=127).contains(c.get_ref()) => Some(*c.get_ref() as u8),
                    Some(c) => {
                        self.at(
                            c.span(),
                            format!("bad cause {}: expected a Q.850 value 1 to 127", c.get_ref()),
                        );
                        None
                    }
                };
                NodeKind::HangUp { prompts: self.prompts(&r.prompts), cause }
            }
            "goto" => {
                let r: RawGoto = self.de(flow, id, v, t)?;
                if r.node.is_none() && r.flow.is_none() {
                    self.at(key_span.clone(), format!("goto `{flow}.{id}` goes nowhere: expected node = \"NODE\" and/or flow = \"FLOW\""));
                }
                NodeKind::Goto {
                    flow: r.flow.as_ref().map(|f| (f.get_ref().clone(), self.pos(&f.span()))),
                    node: r.node.as_ref().map(|n| self.r(n)),
                }
            }
            "back" => {
                let _: RawEmpty = self.de(flow, id, v, t)?;
                NodeKind::Back
            }
            "top" => {
                let _: RawEmpty = self.de(flow, id, v, t)?;
                NodeKind::Top
            }
            "set" => {
                let r: RawSet = self.de(flow, id, v, t)?;
                self.templates(r.vars.values(), &v.span());
                NodeKind::Set { vars: r.vars, next: self.r(&r.next) }
            }
            "condition" => {
                let r: RawCondition = self.de(flow, id, v, t)?;
                let mut cases = Vec::new();
                for c in &r.cases {
                    let span = c.span();
                    let c = c.get_ref();
                    let mut tests = Vec::new();
                    if let Some(x) = &c.eq {
                        tests.push(Test::Eq(x.clone()));
                    }
                    if let Some(x) = &c.ne {
                        tests.push(Test::Ne(x.clone()));
                    }
                    if let Some(x) = &c.lt {
                        tests.push(Test::Lt(x.clone()));
                    }
                    if let Some(x) = &c.gt {
                        tests.push(Test::Gt(x.clone()));
                    }
                    if let Some(x) = &c.prefix {
                        tests.push(Test::Prefix(x.clone()));
                    }
                    if let Some(e) = c.empty {
                        tests.push(if e { Test::Empty } else { Test::Set });
                    }
                    if tests.len() != 1 {
                        self.at(span, format!("a case needs exactly one test, found {}: expected one of eq, ne, lt, gt, prefix, empty", tests.len()));
                        continue;
                    }
                    cases.push(Case {
                        var: c.var.get_ref().clone(),
                        test: tests.remove(0),
                        next: self.r(&c.next),
                    });
                }
                NodeKind::Condition { cases, default: self.r(&r.default) }
            }
            "time" => {
                let r: RawTime = self.de(flow, id, v, t)?;
                let mut rules = Vec::new();
                for rule in &r.rules {
                    let mut days = [false; 7];
                    for d in &rule.days {
                        match parse_days(d.get_ref()) {
                            Some(ds) => ds.into_iter().for_each(|i| days[i] = true),
                            None => self.at(
                                d.span(),
                                format!(
                                    "bad days {:?}: expected mon..sun or a range like mon-fri",
                                    d.get_ref()
                                ),
                            ),
                        }
                    }
                    let mut hours = Vec::new();
                    for h in &rule.hours {
                        match parse_hours(h.get_ref()) {
                            Some(x) => hours.push(x),
                            None => self.at(
                                h.span(),
                                format!(
                                    "bad hours {:?}: expected HH:MM-HH:MM, start before end",
                                    h.get_ref()
                                ),
                            ),
                        }
                    }
                    rules.push(TimeRule { days, hours, next: self.r(&rule.next) });
                }
                NodeKind::Time { rules, default: self.r(&r.default) }
            }
            "http" => {
                let r: RawHttp = self.de(flow, id, v, t)?;
                let method = match &r.method {
                    None => "GET".to_string(),
                    Some(m) => {
                        let up = m.get_ref().to_ascii_uppercase();
                        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&up.as_str()) {
                            self.at(
                                m.span(),
                                format!(
                                    "bad method {:?}: expected GET, POST, PUT, PATCH or DELETE",
                                    m.get_ref()
                                ),
                            );
                        }
                        up
                    }
                };
                let url = r.url.get_ref();
                if !url.starts_with("http://") && !url.starts_with("https://") && !url.starts_with('{') {
                    self.at(
                        r.url.span(),
                        format!("bad url {url:?}: expected http://HOST/PATH with {{var}} where needed"),
                    );
                }
                self.templates([url], &r.url.span());
                self.templates(r.body.values().chain(r.headers.values()), &v.span());
                NodeKind::Http(HttpNode {
                    method,
                    url: url.clone(),
                    headers: r.headers,
                    body: r.body,
                    fields: r.fields,
                    timeout: self.secs(&r.timeout, 5.0, "timeout"),
                    next: self.r(&r.next),
                    failure: self.r(&r.failure),
                })
            }
            other => {
                self.at(
                    ty.span(),
                    format!("unknown node type {other:?}: expected one of {}", NODE_TYPES.join(", ")),
                );
                return None;
            }
        };
        Some(Node { id: id.to_string(), kind, at })
    }

    fn var_name(&mut self, s: &S<String>) -> String {
        let v = s.get_ref();
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.at(s.span(), format!("bad variable name {v:?}: expected letters, digits and _"));
        }
        v.clone()
    }

    fn nonempty(&mut self, s: &S<String>, what: &str) -> String {
        if s.get_ref().trim().is_empty() {
            self.at(s.span(), format!("empty {what}"));
        }
        s.get_ref().clone()
    }
}

fn day_index(s: &str) -> Option<usize> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().position(|d| s.trim().eq_ignore_ascii_case(d))
}

/// `mon`, `mon-fri`, `sat-sun`.
fn parse_days(s: &str) -> Option<Vec<usize>> {
    match s.split_once('-') {
        None => Some(vec![day_index(s)?]),
        Some((a, b)) => {
            let (a, b) = (day_index(a)?, day_index(b)?);
            (a <= b).then(|| (a..=b).collect())
        }
    }
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
