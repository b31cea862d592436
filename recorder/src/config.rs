//! The `[recording]` table of the installation file.
#[derive(Debug)]
pub struct RecordingConfig;
