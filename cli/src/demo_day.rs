//! `hotline demo --fast`: the demo's day in virtual time (`hotline_cti::demo_day`, on
//! the virtual-time loop `hotline_cti::coupled`), then the day's reports from its store
//! (`hotline_cti::report`, what `hotline report` prints).

use std::time::Duration;

use hotline_cti::report::{self, By, Kind, Params};
use hotline_cti::store::{Store, StoreConfig};

use crate::exit_codes::{CliError, CliResult};

const DAY: Duration = Duration::from_secs(86_400);

/// Run the demo's day (or its first `seconds`) and print its reports.
pub fn run(text: &str, origin: &str, people: &[String], seconds: Option<u64>) -> CliResult {
    let cfg = hotline_cti::Config::parse(text, origin)
        .map_err(|problems| CliError::input(hotline_cti::config::problem_lines(&problems)))?;
    let offset_ms = i64::from(cfg.utc_offset_secs) * 1000;
    // Today 00:00 in the installation's time zone.
    let local_now = hotline_cti::link::now_unix_ms() + offset_ms;
    let start_ms = local_now - local_now.rem_euclid(86_400_000) - offset_ms;
    let length = seconds.map_or(DAY, Duration::from_secs);
    let store_cfg = StoreConfig::from_toml(text, std::path::Path::new(origin)).map_err(CliError::input)?;
    let store = hotline_cti::demo_day::day_store(&store_cfg.path);
    // The day's store is this command's own output: each run starts a new one.
    for suffix in ["", "-wal", "-shm"] {
        let mut p = store.clone().into_os_string();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CliError::failure(format!("cannot remove {}: {e}", store.display()))),
        }
    }
    let from = report::format_local(start_ms, cfg.utc_offset_secs);
    let to = report::format_local(start_ms + length.as_millis() as i64, cfg.utc_offset_secs);
    println!(
        "Hotline demo, the day in virtual time ({origin}): {from} to {to} (UTC{}), the simulated agents only.",
        utc_offset_text(cfg.utc_offset_secs)
    );
    let started = std::time::Instant::now();
    let opts = hotline_cti::demo_day::DayOptions {
        text: text.to_string(),
        origin: origin.to_string(),
        start_ms,
        length,
        drain_limit: Duration::from_secs(600),
        people: people.to_vec(),
        store: store.clone(),
    };
    let day = hotline_cti::demo_day::run(&opts).map_err(CliError::failure)?;
    println!(
        "{} calls, {} simulated agents; run in {:.1} s. Records in {}{}.\n",
        day.calls,
        day.agents,
        started.elapsed().as_secs_f64(),
        store.display(),
        if day.store_errors > 0 { format!(" ({} writes lost)", day.store_errors) } else { String::new() }
    );

    let store_file = store.display().to_string();
    let db = Store::open(&store).map_err(|e| CliError::failure(format!("{store_file}: {e}")))?;
    let mut p = Params::new(start_ms, day.end_ms.max(start_ms + 1));
    p.utc_offset_secs = cfg.utc_offset_secs;
    let by = if length > Duration::from_secs(4 * 3600) { By::Hour } else { By::HalfHour };
    let sections = [
        ("Queues", Kind::Queue, None),
        (
            if by == By::Hour { "All queues by hour" } else { "All queues by half hour" },
            Kind::Queue,
            Some(by),
        ),
        ("Agents", Kind::Agent, None),
        ("Missed calls", Kind::Missed, None),
        ("IVR", Kind::Ivr, None),
    ];
    for (title, kind, by) in sections {
        p.by = by;
        let table = report::run(&db, kind, &p).map_err(|e| CliError::failure(format!("{title}: {e}")))?;
        println!("== {title}\n{}", table.to_text());
    }
    // With --db a report has no time zone: the range in UTC.
    println!(
        "More reports of this day: hotline report calls|queue|agent|missed|ivr|agent-states --db {store_file} \
         --from \"{}\" --to \"{}\" (UTC)",
        &report::format_local(start_ms, 0)[..16],
        &report::format_local(day.end_ms + 60_000, 0)[..16]
    );
    Ok(())
}

fn utc_offset_text(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}
