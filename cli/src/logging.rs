//! Logs on standard error: plain text, coloured only on a terminal, or JSON lines
//! (`--log-format json`, or `HOTLINE_LOG_FORMAT=json`). `HOTLINE_LOG` sets the filter
//! (`info`, `warn`, `hotline_cti=debug`, ...).

use std::io::IsTerminal;
use std::sync::OnceLock;

/// How log lines are written.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain text (coloured when standard error is a terminal).
    Text,
    /// One JSON object per line: timestamp, level, target, fields.
    Json,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The format chosen on the command line (else `HOTLINE_LOG_FORMAT`, else text).
pub fn set_format(f: Option<LogFormat>) {
    let f = f.unwrap_or_else(|| match std::env::var("HOTLINE_LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        _ => LogFormat::Text,
    });
    let _ = FORMAT.set(f);
}

/// Start logging; `quiet`: warnings and errors only unless `HOTLINE_LOG` says otherwise.
pub fn init(quiet: bool) {
    let filter =
        std::env::var("HOTLINE_LOG").unwrap_or_else(|_| if quiet { "warn".into() } else { "info".into() });
    let filter = tracing_subscriber::EnvFilter::new(filter);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match FORMAT.get().copied().unwrap_or(LogFormat::Text) {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}
