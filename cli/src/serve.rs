//! `hotline serve` (a whole installation from its file) and `hotline demo` (the same,
//! on the card simulator with simulated callers and agents, from the repo's
//! examples/demo.toml), with a live one-screen summary.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use hotline_cti::center::WallboardStats;
use hotline_cti::serve::{self, Running, ServeOptions};

use crate::exit_codes::{CliError, CliResult};

/// The demo installation, built in so `hotline demo` needs no file.
pub(crate) const DEMO_CONFIG: &str = include_str!("../../examples/demo.toml");

/// The demo's agents kept for people: the simulated agents leave them alone. They log
/// in from the browser at the headset stations (examples/demo.toml).
pub const DEMO_PEOPLE: [&str; 3] = ["1001", "1002", "1003"];

#[path = "demo_day.rs"]
mod demo_day;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The installation file (default: $HOTLINE_CONFIG, then /etc/hotline/hotline.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// On SIGTERM, how long calls in progress may continue before they are released.
    #[arg(long, default_value_t = 300)]
    drain_limit: u64,
    /// Print the one-screen summary (default: when stdout is a terminal).
    #[arg(long)]
    summary: bool,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<u64>,
    /// Another installation file instead of the built-in examples/demo.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print a line every 10 s instead of redrawing the screen.
    #[arg(long)]
    plain: bool,
    /// Run the day (00:00 to 24:00 today, local time) in virtual time, in seconds, and
    /// print its reports; with --duration, that many seconds of the day.
    #[arg(long)]
    fast: bool,
}

/// Signals seen, as flags the main loop reads (the handlers only set them).
struct Signals {
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    terms_seen: usize,
}

impl Signals {
    /// How many SIGINT/SIGTERM so far.
    fn terms(&mut self) -> usize {
        if self.term.swap(false, Ordering::SeqCst) {
            self.terms_seen += 1;
        }
        self.terms_seen
    }
}

fn signals() -> CliResult<Signals> {
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let err = |e: std::io::Error| CliError::failure(format!("cannot install signal handlers: {e}"));
    signal_hook::flag::register(signal_hook::consts::SIGINT, term.clone()).map_err(err)?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone()).map_err(err)?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone()).map_err(err)?;
    Ok(Signals { term, hup, terms_seen: 0 })
}

pub fn serve(args: ServeArgs) -> CliResult {
    let (config, _) = crate::locate::config(args.config.as_deref())?;
    let text = std::fs::read_to_string(&config)
        .map_err(|e| CliError::input(format!("cannot read {}: {e}", config.display())))?;
    let origin = config.display().to_string();
    init_logging(false);
    let mut opts = ServeOptions::new(text, origin.clone(), hotline_cti::link::now_unix_ms());
    opts.config_path = Some(config.clone());
    let running = serve::start(opts).map_err(CliError::input)?;
    let addrs = running.link.addrs();
    tracing::info!(
        "serving {origin}: CTI link on {}, web pages on {}",
        addrs.tcp.map_or("-".into(), |a| a.to_string()),
        addrs.http.map_or("-".into(), |a| format!("http://{a}/"))
    );
    let summary = args.summary || std::io::stdout().is_terminal();
    run_until_stopped(running, None, Duration::from_secs(args.drain_limit), summary, Some(&config), "")
}

pub fn demo(args: DemoArgs) -> CliResult {
    let (text, origin) = match &args.config {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| CliError::input(format!("cannot read {}: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (DEMO_CONFIG.to_string(), "examples/demo.toml (built in)".to_string()),
    };
    init_logging(true);
    let people: Vec<String> = DEMO_PEOPLE.iter().map(|s| s.to_string()).collect();
    if args.fast {
        return demo_day::run(&text, &origin, &people, args.duration);
    }
    let seats = seats_for_people(&text, &origin, &people);
    let mut opts = ServeOptions::new(text, origin.clone(), hotline_cti::link::now_unix_ms());
    opts.sim_agents = true;
    opts.people = people;
    opts.any_port_if_busy = true;
    opts.config_path = args.config.clone();
    let running = serve::start(opts).map_err(CliError::input)?;
    println!("Hotline demo: a simulated call center ({origin}). Ctrl-C stops it.");
    print_urls(&running);
    let people = people_text(&running, &seats);
    println!("{people}");
    let redraw = !args.plain && std::io::stdout().is_terminal();
    run_until_stopped(
        running,
        args.duration.map(Duration::from_secs),
        // The demo ends its calls at once (their records close as released).
        Duration::ZERO,
        redraw,
        args.config.as_deref(),
        &people,
    )
}

fn init_logging(quiet: bool) {
    crate::logging::init(quiet);
}

fn run_until_stopped(
    running: Running,
    duration: Option<Duration>,
    drain_limit: Duration,
    redraw: bool,
    config: Option<&std::path::Path>,
    footer: &str,
) -> CliResult {
    let mut sig = signals()?;
    let started = std::time::Instant::now();
    let mut draining = false;
    let mut last_plain = std::time::Instant::now() - Duration::from_secs(60);
    let mut last: Option<WallboardStats> = None;
    loop {
        match running.stats.recv_timeout(Duration::from_millis(200)) {
            Ok(s) => {
                if redraw {
                    print!("\x1b[H\x1b[2J{}", render(&s));
                    print_urls(&running);
                    print!("{footer}");
                    let _ = std::io::stdout().flush();
                } else if last_plain.elapsed() >= Duration::from_secs(10) {
                    println!("{}", one_line(&s));
                    last_plain = std::time::Instant::now();
                }
                last = Some(s);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let terms = sig.terms();
        let timed_out = duration.is_some_and(|d| started.elapsed() >= d);
        if terms >= 2 {
            break;
        }
        if (terms == 1 || timed_out) && !draining {
            draining = true;
            tracing::info!("draining: no new calls; calls in progress have {} s", drain_limit.as_secs());
            running.drain(drain_limit);
        }
        // A drain ends the run, whether a signal or `hotline ctl drain` began it.
        if running.drained.try_recv().is_ok() {
            break;
        }
        if sig.hup.swap(false, Ordering::SeqCst) {
            reload(&running, config);
        }
    }
    let engine = running.stop().map_err(CliError::failure)?;
    if let Some(s) = last {
        if redraw {
            print!("\x1b[H\x1b[2J{}", render(&s));
        }
        println!("{}", one_line(&s));
    }
    println!("stopped; {} calls still in the engine", engine.call_count());
    Ok(())
}

fn print_urls(running: &Running) {
    let addrs = running.link.addrs();
    if let Some(a) = addrs.http {
        println!("  agent desktop:        http://{a}/agent");
        println!("  supervisor wallboard: http://{a}/wallboard");
    }
    if let Some(a) = addrs.tcp {
        println!("  CTI link (JSON lines, docs/protocol.md): {a}");
    }
    if let Some(p) = running.control_socket() {
        println!("  control: hotline ctl status (socket {})", p.display());
    }
}

/// Who logs in where: the agents kept for people, each at a headset station, and the
/// supervisors.
struct Seats {
    people: Vec<(String, String, String, Option<String>)>,
    supervisors: Vec<(String, String, Option<String>)>,
}

fn seats_for_people(text: &str, origin: &str, people: &[String]) -> Seats {
    let (Ok(cfg), Ok(cards)) =
        (hotline_cti::Config::parse(text, origin), hotline_drivers::config::parse(text, origin))
    else {
        // `serve::start` reports what is wrong with the file.
        return Seats { people: Vec::new(), supervisors: Vec::new() };
    };
    let headsets = serve::headset_stations(&cards);
    let stations = cfg.stations.iter().filter(|s| headsets.contains(&s.port));
    let people = cfg
        .agents
        .iter()
        .filter(|a| people.contains(&a.id))
        .zip(stations)
        .map(|(a, s)| (a.id.clone(), a.name.clone(), s.extension.clone(), a.password.clone()))
        .collect();
    let supervisors =
        cfg.supervisors.iter().map(|s| (s.id.clone(), s.name.clone(), s.password.clone())).collect();
    Seats { people, supervisors }
}

/// The lines that tell a person where to log in.
fn people_text(running: &Running, seats: &Seats) -> String {
    let http = running.link.addrs().http.map_or("-".to_string(), |a| format!("http://{a}"));
    let password = |p: &Option<String>| p.as_deref().map_or("(hashed)".to_string(), |p| format!("\"{p}\""));
    let mut out = String::new();
    if !seats.people.is_empty() {
        out.push_str("Log in as a person (go Ready: the simulated callers reach you within a minute):\n");
        for (id, name, station, pw) in &seats.people {
            out.push_str(&format!(
                "  {http}/agent      agent {id} ({name}), password {}, station {station} (a headset: answer on the page)\n",
                password(pw)
            ));
        }
    }
    for (id, name, pw) in &seats.supervisors {
        out.push_str(&format!("  {http}/wallboard  supervisor {id} ({name}), password {}\n", password(pw)));
    }
    out
}

/// SIGHUP: read the installation file again and hand the engine what it can take.
fn reload(running: &Running, config: Option<&std::path::Path>) {
    let Some(path) = config else {
        tracing::warn!("SIGHUP: the built-in demo configuration has no file to reload");
        return;
    };
    let origin = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("SIGHUP: cannot read {origin}: {e}; nothing changed");
            return;
        }
    };
    match running.reload(&text, &origin) {
        Ok(changed) if changed.is_empty() => tracing::info!("SIGHUP: {origin} reloaded, nothing changed"),
        Ok(changed) => tracing::info!("SIGHUP: {origin} reloaded: {}", changed.join(", ")),
        Err(e) => tracing::error!("SIGHUP: {e}"),
    }
}

fn mmss(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// One line for logs and non-terminal output.
pub fn one_line(s: &WallboardStats) -> String {
    let waiting: usize = s.queues.iter().map(|q| q.waiting).sum();
    let ready = s.agents.iter().filter(|a| a.state == "ready").count();
    let busy = s.agents.iter().filter(|a| a.state == "busy" || a.state == "ringing").count();
    let q: Vec<String> = s
        .queues
        .iter()
        .map(|q| {
            format!(
                "{} {}/{} answered, {} abandoned, SL {:.0}%",
                q.name,
                q.answered,
                q.offered,
                q.abandoned,
                q.service_level * 100.0
            )
        })
        .collect();
    let closed: Vec<&str> = s.access.iter().filter(|a| !a.open).map(|a| a.dnis.as_str()).collect();
    let closed =
        if closed.is_empty() { String::new() } else { format!("; closed now: {}", closed.join(", ")) };
    format!(
        "[{}] calls {} (live {}), waiting {}, agents ready {} busy {}; {}{closed}",
        mmss(s.uptime_s),
        s.calls_today,
        s.calls.len(),
        waiting,
        ready,
        busy,
        q.join("; ")
    )
}

/// The one-screen summary.
pub fn render(s: &WallboardStats) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Hotline  up {}   calls today {}   live {}{}\n\n",
        mmss(s.uptime_s),
        s.calls_today,
        s.calls.len(),
        if s.draining { "   DRAINING" } else { "" }
    ));
    out.push_str("ACCESS NUMBER  NOW     CALLS GO TO\n");
    for a in &s.access {
        out.push_str(&format!("{:<14} {:<7} {}\n", a.dnis, if a.open { "open" } else { "CLOSED" }, a.target));
    }
    out.push('\n');
    out.push_str(
        "QUEUE        WAITING  LONGEST  READY  OFFERED  ANSWERED  ABANDONED  TIMED OUT  SL(20s)  ABANDON\n",
    );
    for q in &s.queues {
        out.push_str(&format!(
            "{:<12} {:>7}  {:>7}  {:>5}  {:>7}  {:>8}  {:>9}  {:>9}  {:>6.0}%  {:>6.1}%\n",
            q.name,
            q.waiting,
            mmss(q.longest_wait_s),
            q.ready_agents,
            q.offered,
            q.answered,
            q.abandoned,
            q.timed_out,
            q.service_level * 100.0,
            q.abandon_rate * 100.0
        ));
    }
    out.push_str("\nAGENT                     STATE                 FOR  ANSWERED\n");
    for a in &s.agents {
        let state = match &a.reason {
            Some(r) => format!("{} ({r})", a.state),
            None => a.state.clone(),
        };
        out.push_str(&format!(
            "{:<5} {:<19} {:<20} {:>5}  {:>8}\n",
            a.id,
            a.name,
            state,
            mmss(a.state_s),
            a.answered_today
        ));
    }
    out.push_str("\nLIVE CALLS\n");
    for c in s.calls.iter().take(12) {
        out.push_str(&format!(
            "#{:<5} {:<13} -> {:<11} {:<8} {:<8} {:<5} {:>5}\n",
            c.call,
            c.calling,
            c.called,
            c.state,
            c.queue.as_deref().unwrap_or("-"),
            c.agent.as_deref().unwrap_or("-"),
            mmss(c.since_s)
        ));
    }
    if s.calls.len() > 12 {
        out.push_str(&format!("... and {} more\n", s.calls.len() - 12));
    }
    out
}
