//! Telephony signal processing on 8 kHz audio, each piece tested against the standard it
//! names.
//!
//! - [`g711`]: A-law and mu-law (ITU-T G.711), bit-exact with the G.191 vectors.
//! - [`dtmf`]: DTMF generation and detection (ITU-T Q.23, Q.24).
//! - [`tones`]: call-progress tone plans, generation and cadence-aware detection; fax
//!   CNG and CED.
//! - [`callerid`]: caller ID on analog lines, FSK (Bell 202, V.23; SDMF and MDMF) and DTMF.
//! - [`wav`]: WAV files in the encodings cards use.
//! - [`resample`]: sample-rate conversion and down-mixing to 8 kHz mono for prompts.

pub mod callerid;
pub mod dtmf;
pub mod g711;
pub mod resample;
pub mod tones;
pub mod wav;
