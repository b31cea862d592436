//! `hotline prompt convert IN OUT`: any WAV to 8 kHz mono for a card.

use std::path::Path;

use clap::ValueEnum;
use hotline_drivers::dsp::{resample, wav};
use hotline_drivers::SAMPLE_RATE;

use crate::exit_codes::{CliError, CliResult};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutEncoding {
    /// G.711 A-law (E1 in Europe and China).
    Alaw,
    /// G.711 mu-law (T1, North America, Japan).
    Ulaw,
    /// Linear 16-bit PCM.
    Pcm16,
}

pub fn convert(input: &Path, output: &Path, encoding: OutEncoding) -> CliResult<String> {
    if input.canonicalize().ok().is_some_and(|i| output.canonicalize().ok() == Some(i)) {
        return Err(CliError::input(format!(
            "{}: output is the input file; write the converted prompt elsewhere",
            output.display()
        )));
    }
    let (spec, interleaved) =
        wav::read_wav_file(input).map_err(|e| CliError::input(format!("{}: {e}", input.display())))?;
    let mono = resample::to_mono(&interleaved, spec.channels);
    let samples = resample::resample(&mono, spec.sample_rate, SAMPLE_RATE)
        .map_err(|e| CliError::failure(format!("{}: {e}", input.display())))?;
    let enc = match encoding {
        OutEncoding::Alaw => wav::Encoding::Alaw,
        OutEncoding::Ulaw => wav::Encoding::Ulaw,
        OutEncoding::Pcm16 => wav::Encoding::Pcm16,
    };
    // Write beside the target and rename, so a failed conversion never leaves a broken
    // prompt where a good one was.
    let tmp = output.with_extension("wav.part");
    wav::write_wav_file(&tmp, SAMPLE_RATE, 1, enc, &samples)
        .and_then(|()| std::fs::rename(&tmp, output))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            CliError::failure(format!("cannot write {}: {e}", output.display()))
        })?;
    let secs_in = interleaved.len() as f64 / spec.channels.max(1) as f64 / spec.sample_rate.max(1) as f64;
    Ok(format!(
        "{}: {} Hz, {} channel(s), {:?}, {:.2} s\n{}: 8000 Hz, mono, {:?}, {:.2} s\n",
        input.display(),
        spec.sample_rate,
        spec.channels,
        spec.format,
        secs_in,
        output.display(),
        encoding,
        samples.len() as f64 / SAMPLE_RATE as f64
    ))
}
