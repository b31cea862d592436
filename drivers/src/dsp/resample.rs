//! Sample-rate conversion and down-mixing, for turning any recording into an 8 kHz mono
//! prompt (`hotline prompt convert`).
//!
//! Resampling uses `rubato`'s synchronous FFT resampler: the exact rational ratio of the
//! two rates, and a windowed-sinc (Blackman-Harris²) low-pass below the lower Nyquist
//! frequency so nothing above 4 kHz folds back into the telephone band. Its filter is
//! linear-phase with a whole number of output samples of delay, which is removed: output
//! sample `k` is the input signal at time `k / to_rate`, and there are
//! `round(len * to / from)` of them.

use rubato::{FftFixedInOut, Resampler};

use crate::{Error, ErrorKind};

/// Input frames per FFT block, at least. The anti-aliasing filter is as long as a block:
/// 2048 keeps 300-3400 Hz flat within 0.1 dB from 48 kHz (512 lost 7 dB at 3.4 kHz).
const MIN_BLOCK: usize = 2048;

/// Mixes interleaved audio down to one channel by averaging the channels of each frame
/// (rounded to nearest). A trailing partial frame is dropped; zero channels give nothing.
pub fn to_mono(interleaved: &[i16], channels: u16) -> Vec<i16> {
    match channels {
        0 => Vec::new(),
        1 => interleaved.to_vec(),
        n => interleaved
            .chunks_exact(usize::from(n))
            .map(|frame| {
                let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
                // The mean of i16 values is within i16; round half away from zero.
                let n = i32::from(n);
                let half = if sum >= 0 { n / 2 } else { -(n / 2) };
                ((sum + half) / n) as i16
            })
            .collect(),
    }
}

/// Any interleaved audio as cards carry it: mixed down to mono, then resampled to
/// 8000 Hz ([`crate::SAMPLE_RATE`]).
pub fn to_card_audio(interleaved: &[i16], channels: u16, sample_rate: u32) -> Result<Vec<i16>, Error> {
    if channels == 0 {
        return Err(Error::new(ErrorKind::Media, "audio with 0 channels"));
    }
    resample(&to_mono(interleaved, channels), sample_rate, crate::SAMPLE_RATE)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resamples mono audio from `from_rate` to `to_rate` Hz with an anti-aliasing sinc
/// filter. The result has `round(len * to_rate / from_rate)` samples, aligned in time
/// with the input (the filter delay is compensated). Equal rates return the input.
pub fn resample(samples: &[i16], from_rate: u32, to_rate: u32) -> Result<Vec<i16>, Error> {
    use crate::dsp::wav::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
    // Rates outside what a WAV file may claim would make the filter (its blocks are
    // `from / gcd(from, to)` frames) or the output take gigabytes.
    let ok = |r: u32| (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&r);
    if !ok(from_rate) || !ok(to_rate) {
        return Err(Error::new(
            ErrorKind::Media,
            format!(
                "cannot resample from {from_rate} Hz to {to_rate} Hz: rates must be {MIN_SAMPLE_RATE} to \
                 {MAX_SAMPLE_RATE} Hz"
            ),
        ));
    }
    if from_rate == to_rate {
        return Ok(samples.to_vec());
    }
    let wanted = ((samples.len() as u128 * u128::from(to_rate) + u128::from(from_rate) / 2)
        / u128::from(from_rate)) as usize;
    if wanted == 0 {
        return Ok(Vec::new());
    }
    let (from, to) = (from_rate as usize, to_rate as usize);
    // rubato works in blocks of a whole number of `from / gcd` input frames. An even
    // number of them makes both block sizes even, so the filter (centred on half an
    // input block) delays by exactly half an output block.
    let unit = from / gcd(from, to);
    let block = 2 * unit * MIN_BLOCK.div_ceil(2 * unit);
    let failed = |e: &dyn std::fmt::Display| {
        Error::new(ErrorKind::Media, format!("resampling from {from_rate} Hz to {to_rate} Hz failed: {e}"))
    };
    let mut resampler = FftFixedInOut::<f32>::new(from, to, block, 1).map_err(|e| failed(&e))?;
    let block_in = resampler.input_frames_next();
    let block_out = resampler.output_frames_next();
    debug_assert!(block_in % 2 == 0 && block_out % 2 == 0);
    let delay = resampler.output_delay();

    let mut input = vec![0f32; block_in];
    let mut output: Vec<f32> = Vec::with_capacity(delay + wanted + block_out);
    let mut buf = resampler.output_buffer_allocate(true);
    let mut chunks = samples.chunks(block_in);
    // Zeros after the input flush the filter until the delayed output covers it all.
    while output.len() < delay + wanted {
        input.fill(0.0);
        if let Some(chunk) = chunks.next() {
            for (x, &s) in input.iter_mut().zip(chunk) {
                *x = f32::from(s) / 32768.0;
            }
        }
        let (_, produced) =
            resampler.process_into_buffer(&[&input], &mut buf, None).map_err(|e| failed(&e))?;
        output.extend_from_slice(&buf[0][..produced]);
    }
    Ok(output[delay..delay + wanted]
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(freq: f64, rate: u32, secs: f64, peak: f64) -> Vec<i16> {
        let n = (secs * f64::from(rate)) as usize;
        (0..n).map(|i| (peak * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()).round() as i16).collect()
    }

    /// RMS of the middle half, away from the edges where the signal starts and stops.
    fn middle_rms(x: &[i16]) -> f64 {
        let mid = &x[x.len() / 4..3 * x.len() / 4];
        (mid.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / mid.len() as f64).sqrt()
    }

    /// Frequency from the zero crossings of the middle half, interpolated between samples.
    fn zero_crossing_hz(x: &[i16], rate: u32) -> f64 {
        let mid = &x[x.len() / 4..3 * x.len() / 4];
        let crossings: Vec<f64> = mid
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
            .map(|(i, w)| i as f64 + f64::from(w[0]) / f64::from(w[0] - w[1]))
            .collect();
        let periods = (crossings.len() - 1) as f64;
        f64::from(rate) * periods / (crossings[crossings.len() - 1] - crossings[0])
    }

    /// Time offset (in output samples) of a resampled sine against the ideal one.
    fn offset_in_output_samples(y: &[i16], freq: f64, rate: u32) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for (j, &v) in y.iter().enumerate().take(3 * y.len() / 4).skip(y.len() / 4) {
            let t = 2.0 * PI * freq * j as f64 / f64::from(rate);
            s += f64::from(v) * t.sin();
            c += f64::from(v) * t.cos();
        }
        c.atan2(s) / (2.0 * PI * freq) * f64::from(rate)
    }

    #[test]
    fn a_1_khz_tone_from_cd_rate_keeps_its_frequency_and_level() {
        let x = sine(1000.0, 44_100, 0.5, 16_000.0);
        let y = resample(&x, 44_100, 8000).unwrap();
        assert_eq!(y.len(), 4000);
        let hz = zero_crossing_hz(&y, 8000);
        assert!((hz - 1000.0).abs() < 0.5, "{hz} Hz");
        let gain_db = 20.0 * (middle_rms(&y) / middle_rms(&x)).log10();
        assert!(gain_db.abs() < 0.5, "{gain_db:.3} dB");
    }

    #[test]
    fn a_6_khz_tone_is_filtered_out_rather_than_aliased_to_2_khz() {
        let x = sine(6000.0, 44_100, 0.5, 16_000.0);
        let y = resample(&x, 44_100, 8000).unwrap();
        let gain_db = 20.0 * (middle_rms(&y).max(1e-3) / middle_rms(&x)).log10();
        assert!(gain_db < -40.0, "only {gain_db:.1} dB down");
    }

    #[test]
    fn the_telephone_band_passes_flat_and_what_would_fold_into_it_is_stopped() {
        for from in [44_100, 48_000, 16_000, 22_050] {
            for freq in [300.0, 1000.0, 3400.0] {
                let x = sine(freq, from, 0.25, 16_000.0);
                let y = resample(&x, from, 8000).unwrap();
                let gain_db = 20.0 * (middle_rms(&y) / middle_rms(&x)).log10();
                assert!(gain_db.abs() < 0.5, "{freq} Hz from {from} Hz: {gain_db:.2} dB");
            }
            // 4.4 kHz would fold to 3.6 kHz.
            let x = sine(4400.0, from, 0.25, 16_000.0);
            let y = resample(&x, from, 8000).unwrap();
            let gain_db = 20.0 * (middle_rms(&y).max(1e-3) / middle_rms(&x)).log10();
            assert!(gain_db < -40.0, "4400 Hz from {from} Hz: only {gain_db:.1} dB down");
        }
    }

    #[test]
    fn output_is_aligned_in_time_with_the_input() {
        for (from, to) in
            [(8000, 16_000), (44_100, 8000), (48_000, 8000), (11_025, 8000), (8000, 44_100), (7919, 8000)]
        {
            let y = resample(&sine(200.0, from, 0.5, 10_000.0), from, to).unwrap();
            let offset = offset_in_output_samples(&y, 200.0, to);
            assert!(offset.abs() < 0.02, "{from} -> {to}: shifted by {offset:.3} samples");
        }
    }

    #[test]
    fn an_impulse_stays_where_it_was() {
        let mut x = vec![0i16; 400];
        x[100] = 20_000;
        let y = resample(&x, 8000, 16_000).unwrap();
        assert_eq!(y.len(), 800);
        let peak = (0..y.len()).max_by_key(|&i| y[i].unsigned_abs()).unwrap();
        assert_eq!(peak, 200, "{:?}", &y[195..206]);
    }

    #[test]
    fn output_length_is_the_rounded_duration() {
        for (len, from, to, expected) in
            [(441, 44_100, 8000, 80), (100, 44_100, 8000, 18), (3, 8000, 44_100, 17), (2, 44_100, 8000, 0)]
        {
            assert_eq!(resample(&vec![0; len], from, to).unwrap().len(), expected, "{len} at {from} -> {to}");
        }
    }

    #[test]
    fn same_rate_is_the_identity() {
        let x = sine(1234.0, 8000, 0.1, 30_000.0);
        assert_eq!(resample(&x, 8000, 8000).unwrap(), x);
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(resample(&[], 44_100, 8000).unwrap().is_empty());
        assert!(to_mono(&[], 2).is_empty());
    }

    #[test]
    fn a_zero_rate_is_a_media_error() {
        let err = resample(&[1, 2, 3], 0, 8000).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Media);
        assert!(err.message().contains("0 Hz"), "{err}");
    }

    #[test]
    fn stereo_at_48_khz_becomes_an_8_khz_mono_prompt() {
        let left = sine(500.0, 48_000, 0.5, 8000.0);
        let right: Vec<i16> = left.iter().map(|&s| s / 2).collect();
        let interleaved: Vec<i16> = left.iter().zip(&right).flat_map(|(&l, &r)| [l, r]).collect();
        let mono = to_mono(&interleaved, 2);
        assert_eq!(mono.len(), left.len());
        let y = resample(&mono, 48_000, 8000).unwrap();
        assert_eq!(to_card_audio(&interleaved, 2, 48_000).unwrap(), y);
        assert_eq!(to_card_audio(&interleaved, 0, 48_000).unwrap_err().kind(), ErrorKind::Media);
        assert_eq!(y.len(), 4000);
        assert!((zero_crossing_hz(&y, 8000) - 500.0).abs() < 0.5);
        let expected_rms = 0.75 * 8000.0 / 2f64.sqrt();
        assert!((middle_rms(&y) / expected_rms - 1.0).abs() < 0.01, "{}", middle_rms(&y));
    }

    #[test]
    fn stereo_frames_average_to_mono() {
        assert_eq!(to_mono(&[100, 200, -3, -4, 32767, 32767, -32768, -32768], 2), [150, -4, 32767, -32768]);
        assert_eq!(to_mono(&[1, 2, 3, 9], 3), [2], "partial frame dropped");
        assert_eq!(to_mono(&[5, 6], 1), [5, 6]);
    }
}
