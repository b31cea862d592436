//! repair
#[derive(Debug)]
pub struct Repaired;
pub fn repair_dir() {}
