//! Built without the `pri` feature, a span asking for libpri is refused with a message
//! that says what to build with; the file itself still parses.

#![cfg(not(feature = "pri"))]

use hotline_drivers::sim::SimCard;
use hotline_drivers::{config, ErrorKind};

#[test]
fn a_libpri_span_without_the_pri_feature_is_a_configuration_error_that_says_how_to_get_it() {
    let text = "[[card]]\nid = 1\n[[card.span]]\nspan = 2\nsignalling = \"isdn_pri\"\nstack = \"libpri\"\n";
    let cfg = config::parse(text, "x.toml").expect("the file is valid");
    let (tx, _rx) = crossbeam_channel::unbounded();
    let err = SimCard::from_config(&cfg, 1, tx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("span 2") && err.message().contains("`pri` feature"), "{}", err.message());
}
