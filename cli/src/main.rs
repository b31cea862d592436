//! `hotline`: the one binary.
fn main() {}
