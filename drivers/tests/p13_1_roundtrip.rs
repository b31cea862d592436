//! Issue 13 point 1: property-test round trips for the formats the drivers both write
//! and read: WAV files (our writer, read back by our reader), tone plans (TOML written by
//! `TonePlan::to_toml`, read by `TonePlan::from_toml`) and channel ids as text.

use hotline_drivers::dsp::g711;
use hotline_drivers::dsp::tones::{TonePlan, ToneSpec};
use hotline_drivers::dsp::wav::{self, Encoding, SampleFormat, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use hotline_drivers::ChannelId;
use proptest::prelude::*;

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![Just(Encoding::Pcm16), Just(Encoding::Alaw), Just(Encoding::Ulaw)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn p13_1_wav_written_reads_back(
        rate in MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE,
        channels in 1u16..=4,
        encoding in encoding(),
        frames in prop::collection::vec(any::<i16>(), 0..300),
    ) {
        // A whole number of frames.
        let n = frames.len() - frames.len() % usize::from(channels);
        let samples = &frames[..n];
        let mut bytes = Vec::new();
        wav::write_wav(&mut bytes, rate, channels, encoding, samples).unwrap();
        let (spec, back) = wav::read_wav(&bytes).unwrap();
        prop_assert_eq!(spec.sample_rate, rate);
        prop_assert_eq!(spec.channels, channels);
        let (format, expected): (SampleFormat, Vec<i16>) = match encoding {
            Encoding::Pcm16 => (SampleFormat::Pcm16, samples.to_vec()),
            Encoding::Alaw => {
                (SampleFormat::Alaw, samples.iter().map(|&s| g711::alaw_to_linear(g711::linear_to_alaw(s))).collect())
            }
            Encoding::Ulaw => {
                (SampleFormat::Ulaw, samples.iter().map(|&s| g711::ulaw_to_linear(g711::linear_to_ulaw(s))).collect())
            }
        };
        prop_assert_eq!(spec.format, format);
        prop_assert_eq!(back, expected);
    }

    /// Any prefix of a written WAV file is read without a panic: either the audio that
    /// is there (a cut recording) or an error naming the byte offset.
    #[test]
    fn p13_1_wav_truncated_or_flipped_never_panics(
        samples in prop::collection::vec(any::<i16>(), 0..64),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = Vec::new();
        wav::write_wav(&mut bytes, 8000, 1, Encoding::Pcm16, &samples).unwrap();
        let i = flip.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let cut = cut.index(bytes.len() + 1);
        match wav::read_wav(&bytes[..cut]) {
            Ok((spec, s)) => prop_assert!(s.len() <= cut && spec.channels >= 1),
            Err(e) => prop_assert!(e.offset().is_some(), "{}", e),
        }
    }

    #[test]
    fn p13_1_tone_plan_written_reads_back(
        specs in prop::collection::vec(
            (
                prop::collection::vec(100u16..=3400, 1..=2),
                -60i8..=3,
                prop::collection::vec(50u32..=60_000, 0..=4),
            ),
            5,
        ),
        name in "[a-z_]{1,12}",
    ) {
        let spec = |(freqs, level, cadence): &(Vec<u16>, i8, Vec<u32>)| {
            let mut freqs: Vec<f32> = freqs.iter().map(|&f| f32::from(f)).collect();
            if freqs.len() == 2 && (freqs[0] - freqs[1]).abs() < 30.0 {
                freqs.truncate(1);
            }
            let mut cadence = cadence.clone();
            cadence.truncate(cadence.len() / 2 * 2);
            ToneSpec::cadenced(&freqs, f32::from(*level), &cadence)
        };
        let plan = TonePlan {
            name,
            dial: spec(&specs[0]),
            busy: spec(&specs[1]),
            ringback: spec(&specs[2]),
            congestion: spec(&specs[3]),
            call_waiting: spec(&specs[4]),
        };
        plan.validate().unwrap();
        let text = plan.to_toml();
        let back = TonePlan::from_toml(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, plan);
    }

    #[test]
    fn p13_1_channel_id_text_reads_back(card in any::<u16>(), span in any::<u8>(), ts in 1u8..=31, port in any::<u16>(), kind in 0..3) {
        let id = match kind {
            0 => ChannelId::e1(card, span, if ts == 16 { 15 } else { ts }),
            1 => ChannelId::fxo(card, port),
            _ => ChannelId::fxs(card, port),
        };
        prop_assert_eq!(id.to_string().parse::<ChannelId>().unwrap(), id);
    }
}
