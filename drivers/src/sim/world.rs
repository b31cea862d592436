//! The simulated world around the card: callers and their behaviour scripts, phones on
//! stations, the PSTN's answers to our calls, and the faults a test can inject.
//!
//! These are plain data; [`SimCard`](super::SimCard) plays them out in time.

use std::fmt;
use std::time::Duration;

use crate::cause::Cause;
use crate::channel::ChannelId;
use crate::event::Alarm;
use crate::signal::CallerCategory;

use super::rng::Rng;

/// A duration that is either fixed or drawn uniformly from a range each time it is used
/// (talk times, answer delays, patience).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Spread {
    pub min: Duration,
    pub max: Duration,
}

impl Spread {
    pub const ZERO: Spread = Spread { min: Duration::ZERO, max: Duration::ZERO };

    pub fn fixed(d: Duration) -> Self {
        Spread { min: d, max: d }
    }
    /// The longest a spread can be (100 years): seconds beyond it, infinite or NaN
    /// saturate instead of panicking (the config parser refuses them first).
    pub const MAX: Duration = Duration::from_secs(100 * 366 * 86_400);

    fn saturating(s: f64) -> Duration {
        if s.is_nan() || s <= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(s).unwrap_or(Spread::MAX).min(Spread::MAX)
        }
    }
    pub fn secs(s: f64) -> Self {
        Spread::fixed(Spread::saturating(s))
    }
    /// Uniform between `min` and `max` seconds.
    pub fn secs_between(min: f64, max: f64) -> Self {
        Spread { min: Spread::saturating(min), max: Spread::saturating(max) }
    }
    pub(crate) fn draw(&self, rng: &mut Rng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let lo = self.min.as_micros() as u64;
        let hi = self.max.as_micros() as u64;
        Duration::from_micros(lo + rng.below(hi - lo + 1))
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}s", self.min.as_secs_f64())
        } else {
            write!(f, "{}-{}s", self.min.as_secs_f64(), self.max.as_secs_f64())
        }
    }
}

/// One step of what a simulated caller does once the call is answered.
#[derive(Clone, Debug, PartialEq)]
pub enum CallerStep {
    /// Listen until the prompt playing to us ends (or the next one, if none plays).
    WaitForPrompt,
    /// Press keys: DTMF digits, one after another.
    Press(String),
    /// Stay silent for a while.
    Wait(Spread),
    /// Talk (speech-like sound in audio mode) for a while.
    Talk(Spread),
    /// Hold on, hearing whatever the card plays, until the card connects this line to
    /// another channel (an agent's phone, a bridge with someone else); hang up if that
    /// takes longer than the given patience (`None`: wait forever). A queued caller.
    WaitForAgent(Option<Spread>),
    /// Hang up.
    HangUp,
}

impl CallerStep {
    /// Parse the text form used in configuration files: `wait_prompt`, `press 12#`,
    /// `wait 2`, `wait 1-3`, `talk 30`, `talk 60-180`, `wait_agent`, `wait_agent 10-90`,
    /// `hang_up`.
    pub fn parse(text: &str) -> Result<CallerStep, String> {
        let text = text.trim();
        let (word, arg) = match text.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim()),
            None => (text, ""),
        };
        let no_arg = |step: CallerStep| {
            if arg.is_empty() {
                Ok(step)
            } else {
                Err(format!("`{word}` takes no argument, found {arg:?}"))
            }
        };
        match word {
            "wait_prompt" => no_arg(CallerStep::WaitForPrompt),
            "hang_up" => no_arg(CallerStep::HangUp),
            "press" => {
                if arg.is_empty() || !arg.chars().all(is_dtmf_digit) {
                    Err(format!("`press` needs DTMF digits (0-9 * # A-D), found {arg:?}"))
                } else {
                    Ok(CallerStep::Press(arg.to_string()))
                }
            }
            "wait" => parse_span(arg).map(CallerStep::Wait),
            "talk" => parse_span(arg).map(CallerStep::Talk),
            "wait_agent" if arg.is_empty() => Ok(CallerStep::WaitForAgent(None)),
            "wait_agent" => parse_span(arg).map(|s| CallerStep::WaitForAgent(Some(s))),
            _ => Err(format!(
                "unknown caller step {text:?}: expected `wait_prompt`, `press DIGITS`, `wait SECS`, \
                 `talk SECS`, `wait_agent [SECS]` (SECS: 5 or 2-8) or `hang_up`"
            )),
        }
    }
}

fn parse_span(arg: &str) -> Result<Spread, String> {
    let num = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v <= crate::config::MAX_SECONDS)
            .ok_or_else(|| format!("expected seconds (5 or 2-8, at most a year), found {arg:?}"))
    };
    match arg.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("range {arg:?} runs backwards"));
            }
            Ok(Spread::secs_between(a, b))
        }
        None => Ok(Spread::secs(num(arg)?)),
    }
}

/// Whether `c` is a DTMF key.
pub fn is_dtmf_digit(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}

/// What a simulated caller does: how long they wait for an answer, then their steps.
/// When the steps run out the caller stays on the line until the card releases.
#[derive(Clone, Debug, PartialEq)]
pub struct CallerScript {
    /// How long the caller lets it ring (or waits in setup) before hanging up.
    pub patience: Spread,
    pub steps: Vec<CallerStep>,
}

impl CallerScript {
    pub fn new(patience: Spread, steps: Vec<CallerStep>) -> Self {
        CallerScript { patience, steps }
    }
    /// A caller who waits up to a minute, listens to the prompt, and then talks for
    /// `talk` before hanging up.
    pub fn listener(talk: Spread) -> Self {
        CallerScript {
            patience: Spread::secs(60.0),
            steps: vec![CallerStep::WaitForPrompt, CallerStep::Talk(talk), CallerStep::HangUp],
        }
    }
}

impl Default for CallerScript {
    fn default() -> Self {
        CallerScript { patience: Spread::secs(60.0), steps: Vec::new() }
    }
}

/// Which trunk an inbound call arrives on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trunk {
    /// This channel (an E1 bearer channel or an FXO port).
    Channel(ChannelId),
    /// The first free bearer channel of this span (from the highest timeslot down, as
    /// ISDN networks usually hunt, so the network and the card collide rarely).
    Span(u8),
    /// The first free FXO port.
    AnyFxo,
}

/// A call the PSTN sends us.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundCall {
    pub trunk: Trunk,
    /// Calling number; on an FXO line it arrives as caller ID (when the line sends one).
    pub ani: Option<String>,
    /// Called number; FXO lines carry none.
    pub dnis: String,
    pub category: CallerCategory,
    pub caller: CallerScript,
}

impl InboundCall {
    pub fn new(trunk: Trunk, ani: Option<&str>, dnis: &str, caller: CallerScript) -> Self {
        InboundCall {
            trunk,
            ani: ani.map(str::to_string),
            dnis: dnis.to_string(),
            category: CallerCategory::Ordinary,
            caller,
        }
    }
}

/// How the far end of an outbound call behaves.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Rings for `after`, answers, talks for `talk` and hangs up.
    Answer { after: Spread, talk: Spread },
    /// The called party is busy (cause 17).
    Busy,
    /// It rings until the network's no-answer timer (cause 19; on an analog line our
    /// own ringback counter gives up).
    NoAnswer,
    /// The number does not exist (cause 1).
    Unallocated,
    /// No route or circuit: switching equipment congestion (cause 34 or 42).
    Congestion,
    /// The number is out of order (cause 27).
    OutOfOrder,
}

/// A rule for outbound calls: the first rule whose prefix starts the called number
/// decides; the outcome is drawn from the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboundRule {
    pub prefix: String,
    pub outcomes: Vec<(f64, Outcome)>,
}

impl OutboundRule {
    /// Every number with this prefix gets this outcome.
    pub fn always(prefix: &str, outcome: Outcome) -> Self {
        OutboundRule { prefix: prefix.to_string(), outcomes: vec![(1.0, outcome)] }
    }
    pub(crate) fn draw(&self, rng: &mut Rng) -> Outcome {
        let total: f64 = self.outcomes.iter().map(|(w, _)| w.max(0.0)).sum();
        let mut x = rng.unit() * total;
        for (w, o) in &self.outcomes {
            if x < w.max(0.0) {
                return o.clone();
            }
            x -= w.max(0.0);
        }
        self.outcomes.last().map(|(_, o)| o.clone()).unwrap_or(Outcome::NoAnswer)
    }
}

/// How the phone on a station behaves when rung and when its call is cut.
#[derive(Clone, Debug, PartialEq)]
pub struct PhoneBehaviour {
    /// Goes off hook this long after ringing starts; `None`: nobody answers.
    pub answer_after: Option<Spread>,
    /// Talks this long after answering, then hangs up; `None`: stays until released.
    pub talk: Option<Spread>,
    /// Hangs up this long after hearing the call cut (busy tone); `None`: the handset is
    /// left off hook.
    pub hang_up_after_release: Option<Spread>,
}

impl Default for PhoneBehaviour {
    /// Answers after 2 s, stays until the call is released, hangs up 1 s after.
    fn default() -> Self {
        PhoneBehaviour {
            answer_after: Some(Spread::secs(2.0)),
            talk: None,
            hang_up_after_release: Some(Spread::secs(1.0)),
        }
    }
}

impl PhoneBehaviour {
    /// Nobody there: the phone rings on.
    pub fn absent() -> Self {
        PhoneBehaviour { answer_after: None, ..PhoneBehaviour::default() }
    }
}

/// A fault to inject.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Raise a span alarm: calls on the span are released (cause 38 for LOS/LOF/AIS,
    /// 41 for RAI) and its channels blocked; cleared after `duration` if given.
    SpanAlarm { span: u8, alarm: Alarm, duration: Option<Duration> },
    /// Clear a span alarm raised earlier.
    ClearSpanAlarm { span: u8, alarm: Alarm },
    /// The far end blocks a channel (ISUP BLO, R2 blocking); calls on it are released.
    BlockChannel(ChannelId),
    /// The far end unblocks it.
    UnblockChannel(ChannelId),
    /// The exchange line on an FXO port goes dead: no dial tone, no rings.
    DeadLine { port: u16 },
    /// The line comes back.
    LineRestored { port: u16 },
    /// The phone on a station is left off hook after its next call.
    LeftOffHook(ChannelId),
}

/// Release cause for a span alarm: physical layer down for a red or blue alarm, a
/// temporary failure when only the far end reports trouble.
pub(crate) fn alarm_cause(alarm: Alarm) -> Cause {
    match alarm {
        Alarm::Rai => Cause::TEMPORARY_FAILURE,
        _ => Cause::NETWORK_OUT_OF_ORDER,
    }
}
