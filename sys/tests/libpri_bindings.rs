//! The checked-in libpri bindings are what bindgen makes of the installed `libpri.h`
//! today. Runs only with `--features bindgen,libpri` (the build then regenerates into
//! `$OUT_DIR`); on a difference, run `sys/regen-bindings.sh` and commit the result.

#![cfg(all(feature = "bindgen", feature = "libpri"))]

#[test]
fn checked_in_libpri_bindings_match_a_fresh_generation() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/libpri_bindings.rs"));
    let checked_in = include_str!("../src/libpri/bindings.rs");
    if fresh != checked_in {
        let line = fresh
            .lines()
            .zip(checked_in.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| fresh.lines().count().min(checked_in.lines().count()) + 1, |i| i + 1);
        panic!(
            "sys/src/libpri/bindings.rs differs from a fresh bindgen run (first at line {line}; \
             {} lines fresh, {} checked in): run sys/regen-bindings.sh and commit",
            fresh.lines().count(),
            checked_in.lines().count()
        );
    }
}
