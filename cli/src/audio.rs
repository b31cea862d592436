//! Reading audio files for the DSP tools: WAV in any encoding, rate and channel count
//! (mixed to mono and resampled to 8 kHz), or raw 8 kHz mono as a card writes it.

use std::path::Path;

use clap::ValueEnum;
use hotline_drivers::dsp::{g711, resample, wav};
use hotline_drivers::SAMPLE_RATE;

use crate::exit_codes::{CliError, CliResult};

/// Raw sample formats (8 kHz mono, no header).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum RawFormat {
    /// Signed 16-bit little-endian linear.
    S16,
    /// G.711 A-law, one byte a sample.
    Alaw,
    /// G.711 mu-law, one byte a sample.
    Ulaw,
}

/// Audio at 8 kHz mono, and what was done to get it there (for the user to see).
#[derive(Debug)]
pub struct Audio {
    pub samples: Vec<i16>,
    pub description: String,
}

pub fn load(path: &Path, raw: Option<RawFormat>) -> CliResult<Audio> {
    let bytes =
        std::fs::read(path).map_err(|e| CliError::input(format!("cannot read {}: {e}", path.display())))?;
    if let Some(format) = raw {
        let samples =
            decode_raw(&bytes, format).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
        let description = format!("raw {format:?} 8000 Hz mono").to_lowercase();
        return Ok(Audio { samples, description });
    }
    if !bytes.starts_with(b"RIFF") {
        return Err(CliError::input(format!(
            "{}: not a WAV file (no RIFF header at offset 0); for raw audio give --format s16|alaw|ulaw",
            path.display()
        )));
    }
    let (spec, interleaved) =
        wav::read_wav(&bytes).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let mono = resample::to_mono(&interleaved, spec.channels);
    let samples = if spec.sample_rate == SAMPLE_RATE {
        mono
    } else {
        resample::resample(&mono, spec.sample_rate, SAMPLE_RATE)
            .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?
    };
    let description = format!("{} Hz, {} channel(s), {:?}", spec.sample_rate, spec.channels, spec.format);
    Ok(Audio { samples, description })
}

fn decode_raw(bytes: &[u8], format: RawFormat) -> Result<Vec<i16>, String> {
    let mut out = Vec::with_capacity(bytes.len());
    match format {
        RawFormat::S16 => {
            if bytes.len() % 2 != 0 {
                return Err(format!(
                    "{} bytes is not a whole number of 16-bit samples: is this really s16?",
                    bytes.len()
                ));
            }
            out.extend(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
        }
        RawFormat::Alaw => g711::decode_alaw(bytes, &mut out),
        RawFormat::Ulaw => g711::decode_ulaw(bytes, &mut out),
    }
    Ok(out)
}

/// `HH:MM:SS.mmm` for a sample index at 8 kHz.
pub fn sample_time(index: u64) -> hotline_drivers::Instant {
    hotline_drivers::Instant::from_micros(index * 1_000_000 / SAMPLE_RATE as u64)
}
