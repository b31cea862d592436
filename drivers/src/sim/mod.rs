//! The simulator: a software card and the world around it.
pub mod rng;
pub mod world;
