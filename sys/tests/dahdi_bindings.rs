//! The checked-in DAHDI bindings (`src/dahdi/bindings.rs`) are what bindgen makes of the
//! header today. Runs with `--features bindgen,dahdi`; on a difference, run
//! `sys/regen-bindings.sh` and review the diff.
#![cfg(all(feature = "bindgen", feature = "dahdi"))]

#[test]
fn checked_in_bindings_match_a_fresh_bindgen_run() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/dahdi_bindings.rs"));
    let checked_in = include_str!("../src/dahdi/bindings.rs");
    if fresh != checked_in {
        let first = fresh.lines().zip(checked_in.lines()).position(|(a, b)| a != b);
        let line = first.unwrap_or(fresh.lines().count().min(checked_in.lines().count())) + 1;
        panic!(
            "sys/src/dahdi/bindings.rs differs from bindgen's output (first at line {line}): \
             run sys/regen-bindings.sh and review the diff"
        );
    }
}
