//! (being written)
pub fn generate() {}
