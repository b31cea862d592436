//! `hotline report KIND`: reports from the store (definitions in docs/reports.md), and
//! the store and time options `hotline recordings` and `hotline voicemail` share.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use hotline_cti::report::{self, By, Kind, Params};
use hotline_cti::store::{Store, StoreConfig};
use hotline_cti::Config;

use crate::exit_codes::{CliError, CliResult};

/// Where the store is.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The store file.
    #[arg(long, conflicts_with = "config")]
    pub db: Option<PathBuf>,
    /// The installation file: its `[store] path`, time zone and agent groups (default:
    /// $HOTLINE_CONFIG, then /etc/hotline/hotline.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// What the store options lead to.
pub struct Opened {
    pub store: Store,
    pub cfg: Option<Config>,
}

impl StoreArgs {
    pub fn open(&self) -> CliResult<Opened> {
        let (path, cfg) = match &self.db {
            Some(db) => (db.clone(), None),
            None => {
                let (file, _) = crate::locate::config(self.config.as_deref()).map_err(|e| {
                    CliError::input(format!("say which store: --db FILE or --config FILE ({})", e.message))
                })?;
                let file = &file;
                let text = std::fs::read_to_string(file)
                    .map_err(|e| CliError::input(format!("{}: {e}", file.display())))?;
                let sc = StoreConfig::from_toml(&text, file).map_err(CliError::input)?;
                let cfg = Config::parse(&text, &file.display().to_string())
                    .map_err(|problems| CliError::input(hotline_cti::config::problem_lines(&problems)))?;
                (sc.path, Some(cfg))
            }
        };
        if !path.exists() {
            return Err(CliError::input(format!("{}: no such store", path.display())));
        }
        let store = Store::open(&path).map_err(|e| CliError::input(e.to_string()))?;
        Ok(Opened { store, cfg })
    }
}

/// A time range in local time.
#[derive(Debug, clap::Args)]
pub struct RangeArgs {
    /// From (local time): `YYYY-MM-DD` or `YYYY-MM-DD HH:MM`. Default: today 00:00.
    #[arg(long)]
    pub from: Option<String>,
    /// To, exclusive (local time). Default: now.
    #[arg(long)]
    pub to: Option<String>,
}

pub fn now_ms() -> i64 {
    hotline_cti::link::now_unix_ms()
}

impl RangeArgs {
    /// The range when one was given (either end), for filters that default to all.
    pub fn resolve_if_given(&self, utc_offset_secs: i32) -> CliResult<(Option<i64>, Option<i64>)> {
        if self.from.is_none() && self.to.is_none() {
            return Ok((None, None));
        }
        let (f, t) = self.resolve(utc_offset_secs)?;
        Ok((Some(f), Some(t)))
    }

    /// (from, to) in Unix ms.
    pub fn resolve(&self, utc_offset_secs: i32) -> CliResult<(i64, i64)> {
        let now = now_ms();
        let parse = |s: &str, what: &str| {
            report::parse_local(s, utc_offset_secs).map_err(|e| CliError::input(format!("--{what} {e}")))
        };
        let from = match &self.from {
            Some(s) => parse(s, "from")?,
            None => {
                let off = i64::from(utc_offset_secs) * 1000;
                (now + off).div_euclid(86_400_000) * 86_400_000 - off
            }
        };
        let to = match &self.to {
            Some(s) => parse(s, "to")?,
            None => now,
        };
        if to <= from {
            return Err(CliError::input("--to must be after --from"));
        }
        Ok((from, to))
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people: durations m:ss, rates in percent.
    Table,
    /// CSV with a header line: durations in seconds, rates in percent.
    Csv,
    /// A JSON array of objects, keys as in CSV.
    Json,
    /// One self-contained HTML page (inline CSS and SVG charts, no scripts).
    Html,
}

pub fn render(t: &report::Table, f: Format) -> String {
    match f {
        Format::Table => t.to_text(),
        Format::Csv => t.to_csv(),
        Format::Json => t.to_json(),
        Format::Html => hotline_cti::report_html::table_page("Hotline", t),
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Period {
    HalfHour,
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportKind {
    /// Every call: times, parties, outcome.
    Calls,
    /// Calls in progress.
    Current,
    /// Missed calls by kind (with --by: counts per period).
    Missed,
    /// Voicemail messages left: caller, mailbox, length, listened to.
    Voicemail,
    /// Calls handled, talk/hold/wrap-up time, time per state.
    Agent,
    /// Every agent state change with its reason.
    AgentStates,
    /// The agent figures per agent group (needs --config).
    AgentGroup,
    /// Offered, answered, abandoned, timed out, waits, service level.
    Queue,
    /// Entries, exits by node, time in the IVR.
    Ivr,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    kind: ReportKind,
    #[command(flatten)]
    range: RangeArgs,
    /// Figures per period.
    #[arg(long, value_enum)]
    by: Option<Period>,
    /// Only this agent's calls and figures.
    #[arg(long)]
    agent: Option<String>,
    /// Only this queue's calls and figures.
    #[arg(long)]
    queue: Option<String>,
    /// Service level threshold in seconds.
    #[arg(long, default_value_t = 20)]
    service_level: u32,
    /// Service level target in percent, drawn on the HTML page's chart.
    #[arg(long, default_value_t = 80.0)]
    target: f64,
    /// The HTML page's heading.
    #[arg(long)]
    title: Option<String>,
    /// How to print: a table for people, CSV or JSON for programs (durations in seconds,
    /// rates as percentages), or one HTML page with charts.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(a: ReportArgs) -> CliResult<String> {
    let Opened { store, cfg } = a.store.open()?;
    let offset = cfg.as_ref().map_or(0, |c| c.utc_offset_secs);
    let (from, to) = a.range.resolve(offset)?;
    let mut p = Params::new(from, to);
    p.utc_offset_secs = offset;
    p.now_ms = now_ms().min(to);
    p.agent = a.agent;
    p.queue = a.queue;
    p.service_level_secs = a.service_level;
    p.by = a.by.map(|b| match b {
        Period::HalfHour => By::HalfHour,
        Period::Hour => By::Hour,
        Period::Day => By::Day,
        Period::Week => By::Week,
        Period::Month => By::Month,
    });
    let kind = match a.kind {
        ReportKind::Calls => Kind::Calls,
        ReportKind::Current => Kind::Current,
        ReportKind::Missed => Kind::Missed,
        ReportKind::Voicemail => Kind::Voicemail,
        ReportKind::Agent => Kind::Agent,
        ReportKind::AgentStates => Kind::AgentStates,
        ReportKind::AgentGroup => Kind::AgentGroup,
        ReportKind::Queue => Kind::Queue,
        ReportKind::Ivr => Kind::Ivr,
    };
    if kind == Kind::AgentGroup {
        let cfg = cfg.ok_or_else(|| CliError::input("the agent-group report needs --config (the groups)"))?;
        p.groups = cfg
            .agent_groups
            .iter()
            .map(|g| (g.name.clone(), g.agents.iter().map(|&i| cfg.agents[i].id.clone()).collect()))
            .collect();
    }
    if a.format == Format::Html {
        let page = hotline_cti::report_html::Page {
            title: a.title.unwrap_or_else(|| "Hotline call center report".into()),
            target_pct: a.target,
        };
        return hotline_cti::report_html::page(&store, kind, &p, &page)
            .map_err(|e| CliError::failure(e.to_string()));
    }
    let table = report::run(&store, kind, &p).map_err(|e| CliError::failure(e.to_string()))?;
    Ok(render(&table, a.format))
}

/// A file next to the store or given relative to the working directory.
pub fn existing(path: &str) -> CliResult<&Path> {
    let p = Path::new(path);
    if p.exists() {
        Ok(p)
    } else {
        Err(CliError::input(format!("{path}: the file the index points to is missing")))
    }
}
