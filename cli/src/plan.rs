//! `hotline sim traffic` (sizing a center) and `hotline config check` (an installation
//! file, every problem at once).

use std::path::Path;
use std::time::Duration;

use hotline_cti::traffic::{erlang_c, run_traffic, TrafficParams};

use crate::exit_codes::{CliError, CliResult};

/// `90`, `90s`, `30m`, `8h`: a duration as planners write it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let value: f64 = num.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0).ok_or_else(|| {
        format!("{text:?} is not a duration: expected a number with s, m or h (90s, 30m, 8h)")
    })?;
    let secs = match unit {
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use s, m or h")),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Debug, clap::Args)]
pub struct TrafficArgs {
    /// Agents logged in and ready.
    #[arg(long)]
    agents: usize,
    /// Calls offered per hour (Poisson arrivals).
    #[arg(long)]
    calls_per_hour: f64,
    /// Mean handle time (exponential), e.g. 180 or 3m.
    #[arg(long, value_parser = parse_duration)]
    handle_time: Duration,
    /// Mean caller patience (exponential), or `none` for callers who never give up.
    #[arg(long, default_value = "none")]
    patience: String,
    /// How long a day to simulate, e.g. 8h.
    #[arg(long, value_parser = parse_duration, default_value = "8h")]
    duration: Duration,
    /// The random seed: the same seed gives the same day.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn traffic(args: TrafficArgs) -> CliResult<String> {
    let patience = match args.patience.as_str() {
        "none" => None,
        p => Some(parse_duration(p).map_err(|e| CliError::input(format!("--patience: {e}")))?),
    };
    let params = TrafficParams {
        agents: args.agents,
        calls_per_hour: args.calls_per_hour,
        handle_time: args.handle_time,
        patience,
        duration: args.duration,
        seed: args.seed,
    };
    let report = run_traffic(&params).map_err(|e| CliError::input(e.to_string()))?;
    if args.json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string(&report).map_err(|e| CliError::failure(e.to_string()))?
        ));
    }
    let erlangs = args.calls_per_hour * args.handle_time.as_secs_f64() / 3600.0;
    let mut out = format!(
        "{} agents, {} calls/hour, handle time {:.0} s ({erlangs:.2} Erlangs), patience {}, {:.1} h, seed {}\n\n",
        args.agents,
        args.calls_per_hour,
        args.handle_time.as_secs_f64(),
        patience.map_or("none".to_string(), |p| format!("{:.0} s", p.as_secs_f64())),
        args.duration.as_secs_f64() / 3600.0,
        args.seed
    );
    out.push_str(&format!("offered                 {}\n", report.offered));
    out.push_str(&format!("answered                {}\n", report.answered));
    out.push_str(&format!("abandoned               {}\n", report.abandoned));
    out.push_str(&format!("answered within 20 s    {:.1} %\n", report.service_level_20s * 100.0));
    out.push_str(&format!("average speed of answer {:.1} s\n", report.average_speed_of_answer));
    out.push_str(&format!("agent occupancy         {:.1} %\n", report.occupancy * 100.0));
    if patience.is_none() && (erlangs as usize) < args.agents {
        out.push_str(&format!(
            "\nErlang C for comparison: P(wait) {:.3} (simulated {:.3})\n",
            erlang_c(args.agents, erlangs),
            report.waited
        ));
        if args.duration < Duration::from_secs(100 * 3600) {
            out.push_str(
                "(one day's figures vary a lot from day to day; a long --duration, say 2000h, \
                 gives the long-run average that Erlang C predicts)\n",
            );
        }
    }
    Ok(out)
}

pub fn config_check(path: &Path) -> CliResult<String> {
    let text = hotline_drivers::text::read_text_file(path, hotline_drivers::text::MAX_TEXT_FILE)
        .map_err(CliError::input)?;
    let origin = path.display().to_string();
    // Every component's tables, one problem per mistake (hotline_cti::install).
    let problems: Vec<String> =
        hotline_cti::install::check_installation(&text, &origin).iter().map(|p| p.to_string()).collect();
    if problems.is_empty() {
        return Ok(format!("{origin}: no problems found\n"));
    }
    Err(CliError::input(format!("{} problem(s):\n{}", problems.len(), problems.join("\n"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_planners_write_them() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("3m").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_duration("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert!(parse_duration("8d").is_err());
        assert!(parse_duration("-1").is_err());
    }
}
