//! Hotline's IVR: voice-menu flows as files, and a sans-IO interpreter that runs a
//! caller through them (prompts, menus, digit collection, say-number, recording,
//! HTTP lookups, hand-back to the engine).
