//! Caller ID on analog lines: generated for stations (FXS) between rings, decoded on
//! trunks (FXO).
//!
//! - [`message`]: SDMF and MDMF messages (type, length, data, checksum).
//! - [`fsk`]: Bell 202 and V.23 FSK modulation and a streaming receiver.
//! - [`dtmf_clip`]: DTMF caller ID digit strings (`A…C`, `D…C`), their audio, and a
//!   streaming receiver.
//!
//! What goes in and comes out is always [`crate::signal::CallerId`].

pub mod dtmf_clip;
pub mod fsk;
pub mod message;

pub use dtmf_clip::{
    dtmf_caller_id_audio, dtmf_caller_id_digits, dtmf_caller_id_params, parse_dtmf_caller_id,
    try_dtmf_caller_id_digits, DtmfCallerIdReceiver,
};
pub use fsk::{fsk_audio, fsk_modulate, CallerIdEvent, FskPreamble, FskReceiver, FskStandard};
pub use message::{checksum, decode_message, encode_message, MessageFormat};
