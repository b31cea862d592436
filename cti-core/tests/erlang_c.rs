//! Traffic through the real engine in virtual time, checked against Erlang C.
//!
//! With phones that answer at once, no wrap-up and callers who never give up, the
//! ACD is an M/M/N queue, so the measured probability of waiting, average speed of
//! answer and service level must agree with the Erlang C formula.

use std::time::Duration;

use hotline_cti::traffic::{erlang_c, run_traffic, TrafficParams};

#[test]
fn the_acd_agrees_with_erlang_c() {
    let (agents, per_hour, handle) = (10usize, 160.0, 180.0);
    let a = per_hour * handle / 3600.0; // 8 Erlangs
                                        // 2,000 hours (about 320,000 calls): long enough that the average wait, which
                                        // converges slowly at 80% occupancy, is within a few percent (seeds 1–5 spread
                                        // ±3.5% around the formula).
    let report = run_traffic(&TrafficParams {
        agents,
        calls_per_hour: per_hour,
        handle_time: Duration::from_secs_f64(handle),
        patience: None,
        duration: Duration::from_secs(2000 * 3600),
        seed: 2026,
    })
    .unwrap();
    assert!(report.offered > 300_000, "enough calls for the statistics: {}", report.offered);
    assert_eq!(report.answered, report.offered, "nobody gives up, everyone is answered");
    assert_eq!(report.abandoned, 0);

    let c = erlang_c(agents, a);
    let asa = c * handle / (agents as f64 - a);
    let sl = 1.0 - c * (-(agents as f64 - a) * 20.0 / handle).exp();
    println!("Erlang C: P(wait) {c:.4} ASA {asa:.2} s SL20 {sl:.4} occupancy {:.4}", a / agents as f64);
    println!("measured: {report:?}");
    assert!((report.waited - c).abs() < 0.015, "P(wait): measured {:.4}, Erlang C {c:.4}", report.waited);
    let m = report.average_speed_of_answer;
    assert!((m - asa).abs() / asa < 0.06, "ASA: measured {m:.2} s, Erlang C {asa:.2} s");
    assert!(
        (report.service_level_20s - sl).abs() < 0.015,
        "SL20: measured {:.4}, Erlang C {sl:.4}",
        report.service_level_20s
    );
    assert!((report.occupancy - a / agents as f64).abs() < 0.01, "occupancy {:.4}", report.occupancy);
}

#[test]
fn impatient_callers_abandon_and_every_call_is_accounted_for() {
    let report = run_traffic(&TrafficParams {
        agents: 5,
        calls_per_hour: 150.0,
        handle_time: Duration::from_secs(180),
        patience: Some(Duration::from_secs(30)),
        duration: Duration::from_secs(8 * 3600),
        seed: 7,
    })
    .unwrap();
    assert!(report.abandoned > 0, "{report:?}");
    assert_eq!(report.answered + report.abandoned, report.offered);
    assert!(report.occupancy < 1.0);
}

#[test]
fn erlang_c_matches_a_textbook_value() {
    // 2 agents, 1 Erlang: C = 1/3.
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(erlang_c(3, 3.5), 1.0, "overload: everyone waits");
}
