//! Hotline's call recorder: writers on their own threads that turn tapped channel audio
//! into WAV or MP3 files, crash repair, and retention.
