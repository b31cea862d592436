//! A call center for developing and testing the web pages: `hotline serve` (the same
//! `serve::start`) on an installation file with a simulated card, plus callers on
//! demand. It prints its URL; each line `call [ANI [DNIS]]` on stdin makes a simulated
//! caller arrive on the first E1 span (the caller waits for an agent, then talks until
//! released).
//!
//!     cargo run -p hotline-cti --example web_fixture -- --config tests/browser/center.toml \
//!         --http 127.0.0.1:0 --print-addr

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use hotline_cti::link::LinkConfig;
use hotline_cti::serve::{self, ServeOptions};
use hotline_drivers::config::Backend;
use hotline_drivers::sim::{CallerScript, CallerStep, InboundCall, Spread, Trunk};

struct Args {
    config: PathBuf,
    http: Option<SocketAddr>,
    print_addr: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser/center.toml")),
        http: None,
        print_addr: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => args.config = it.next().ok_or("--config needs a file")?.into(),
            "--http" => {
                let v = it.next().ok_or("--http needs an address such as 127.0.0.1:0")?;
                args.http = Some(v.parse().map_err(|_| format!("--http {v:?}: expected IP:PORT"))?);
            }
            "--print-addr" => args.print_addr = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; expected --config FILE, --http ADDR, --print-addr"
                ))
            }
        }
    }
    Ok(args)
}

/// The `--http` address, for the link's configuration.
static HTTP: OnceLock<SocketAddr> = OnceLock::new();

fn http_from_args(l: &mut LinkConfig) {
    if let Some(a) = HTTP.get() {
        l.http = Some(*a);
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web_fixture: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let origin = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config).map_err(|e| format!("cannot read {origin}: {e}"))?;
    let cards = hotline_drivers::config::parse(&text, &origin).map_err(|e| e.to_string())?;
    let card = cards
        .cards
        .iter()
        .find(|c| c.backend == Backend::Simulator)
        .ok_or_else(|| format!("{origin}: no card with backend = \"simulator\""))?;
    let span =
        card.spans.first().map(|s| s.span).ok_or_else(|| format!("{origin}: the card has no E1 span"))?;
    let card_id = card.id;
    let engine =
        hotline_cti::Config::parse(&text, &origin).map_err(|p| hotline_cti::config::problem_lines(&p))?;
    let default_dnis = engine.access_numbers.first().map(|a| a.dnis.clone()).unwrap_or_default();

    let mut opts = ServeOptions::new(text, origin, hotline_cti::link::now_unix_ms());
    if let Some(a) = args.http {
        let _ = HTTP.set(a);
        opts.link_override = Some(http_from_args);
    }
    let running = serve::start(opts)?;
    let addr = running.link.addrs().http.ok_or("the link server has no HTTP listener")?;
    if args.print_addr {
        println!("http://{addr}");
    } else {
        println!("Hotline web fixture: http://{addr}/agent (agent desktop), http://{addr}/wallboard");
        println!("type `call [ANI [DNIS]]` to make a caller arrive");
    }
    let _ = std::io::stdout().flush();

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("call") => {
                let ani = words.next().unwrap_or("13800138000").to_string();
                let dnis = words.next().map(str::to_string).unwrap_or_else(|| default_dnis.clone());
                let script = CallerScript::new(
                    Spread::secs(120.0),
                    vec![
                        CallerStep::WaitForAgent(None),
                        CallerStep::Talk(Spread::secs(600.0)),
                        CallerStep::HangUp,
                    ],
                );
                running
                    .simulate_call(card_id, InboundCall::new(Trunk::Span(span), Some(&ani), &dnis, script))?;
            }
            Some(other) => eprintln!("web_fixture: unknown command {other:?}; expected `call [ANI [DNIS]]`"),
            None => {}
        }
    }
    // End of stdin: keep serving; whoever started the fixture stops it.
    loop {
        std::thread::park();
    }
}
