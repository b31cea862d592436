//! Caller ID scenarios: messages encoded and decoded, sent as FSK over the line in the
//! conditions a real FXO port meets (levels, noise, frequency error, G.711, speech
//! around it), and DTMF caller ID digit strings.

use hotline_drivers::dsp::callerid::{
    decode_message, dtmf_caller_id_audio, dtmf_caller_id_digits, dtmf_caller_id_params, encode_message,
    fsk_audio, fsk_modulate, parse_dtmf_caller_id, try_dtmf_caller_id_digits, CallerIdEvent,
    DtmfCallerIdReceiver, FskReceiver, FskStandard, MessageFormat,
};
use hotline_drivers::dsp::dtmf::DtmfGenerator;
use hotline_drivers::signal::{Absence, CallerId};

const STANDARDS: [FskStandard; 2] = [FskStandard::Bell202, FskStandard::V23];

fn full_caller() -> CallerId {
    CallerId {
        number: Some("01087654321".into()),
        name: Some("ZHANG WEI".into()),
        time: Some((11, 21, 9, 5)),
        absence: None,
    }
}

fn sdmf_caller() -> CallerId {
    CallerId { name: None, ..full_caller() }
}

fn private_caller() -> CallerId {
    CallerId { number: None, name: None, time: Some((2, 29, 23, 59)), absence: Some(Absence::Private) }
}

/// Deterministic noise: xorshift64* and a sum of uniforms for a near-Gaussian.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
    /// Unit variance: twelve uniforms of variance 1/12.
    fn gaussian(&mut self) -> f32 {
        (0..12).map(|_| self.uniform()).sum()
    }
}

fn rms(samples: &[i16]) -> f32 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

fn add_noise(samples: &[i16], snr_db: f32, seed: u64) -> Vec<i16> {
    let sigma = rms(samples) / 10f32.powf(snr_db / 20.0);
    let mut noise = Noise(seed);
    samples
        .iter()
        .map(|&s| (f32::from(s) + sigma * noise.gaussian()).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Feed `audio` in uneven chunks, then finish.
fn receive(standard: FskStandard, audio: &[i16]) -> Vec<CallerIdEvent> {
    let mut rx = FskReceiver::new(standard);
    let mut events = Vec::new();
    let mut rest = audio;
    let sizes = [160usize, 1, 37, 80, 500, 3];
    let mut i = 0;
    while !rest.is_empty() {
        let take = sizes[i % sizes.len()].min(rest.len());
        rx.process(&rest[..take], &mut events);
        rest = &rest[take..];
        i += 1;
    }
    rx.finish(&mut events);
    events
}

fn receive_one(standard: FskStandard, audio: &[i16]) -> CallerId {
    let events = receive(standard, audio);
    assert_eq!(events.len(), 1, "{standard:?}: expected one message, got {events:?}");
    events[0].result.clone().unwrap_or_else(|e| panic!("{standard:?}: {e}"))
}

fn silence(samples: usize) -> Vec<i16> {
    vec![0; samples]
}

#[test]
fn sdmf_and_mdmf_messages_round_trip_through_their_bytes() {
    let sdmf = encode_message(&sdmf_caller(), MessageFormat::Sdmf).unwrap();
    assert_eq!(&sdmf[..2], &[0x04, 19]);
    assert_eq!(&sdmf[2..10], b"11210905");
    assert_eq!(sdmf.iter().fold(0u8, |s, &b| s.wrapping_add(b)), 0, "checksum sums to zero");
    assert_eq!(decode_message(&sdmf).unwrap(), sdmf_caller());

    let mdmf = encode_message(&full_caller(), MessageFormat::Mdmf).unwrap();
    assert_eq!(mdmf[0], 0x80);
    assert_eq!(&mdmf[2..4], &[0x01, 8]);
    assert_eq!(decode_message(&mdmf).unwrap(), full_caller());
}

#[test]
fn sdmf_leaves_the_name_out_and_sends_p_for_a_private_number() {
    let sent = encode_message(&full_caller(), MessageFormat::Sdmf).unwrap();
    assert_eq!(decode_message(&sent).unwrap(), sdmf_caller());
    let private = encode_message(&private_caller(), MessageFormat::Sdmf).unwrap();
    assert_eq!(&private[2..11], b"02292359P");
    assert_eq!(decode_message(&private).unwrap(), private_caller());
    let err = encode_message(&CallerId::default(), MessageFormat::Sdmf).unwrap_err();
    assert!(err.message().contains("date and time"), "{err}");
    let letters = CallerId { number: Some("555-CALL".into()), ..sdmf_caller() };
    let err = encode_message(&letters, MessageFormat::Sdmf).unwrap_err();
    assert!(err.message().contains("'-' at position 3"), "{err}");
    let loud = fsk_audio(&sdmf_caller(), FskStandard::V23, MessageFormat::Sdmf, 6.0).unwrap_err();
    assert!(loud.message().contains("6 dBm0"), "{loud}");
}

#[test]
fn mdmf_carries_name_and_reasons_for_absence() {
    let withheld = CallerId { number: None, name: None, time: None, absence: Some(Absence::Unavailable) };
    let bytes = encode_message(&withheld, MessageFormat::Mdmf).unwrap();
    // Number absence 'O' and name absence 'O'.
    assert_eq!(&bytes[2..8], &[0x04, 1, b'O', 0x08, 1, b'O']);
    assert_eq!(decode_message(&bytes).unwrap(), withheld);

    let named_private = CallerId { name: Some("Müller".into()), ..private_caller() };
    let bytes = encode_message(&named_private, MessageFormat::Mdmf).unwrap();
    assert_eq!(decode_message(&bytes).unwrap(), named_private);
}

#[test]
fn both_fsk_standards_carry_sdmf_and_mdmf_over_the_line() {
    for standard in STANDARDS {
        for (format, cid) in [
            (MessageFormat::Sdmf, sdmf_caller()),
            (MessageFormat::Mdmf, full_caller()),
            (MessageFormat::Sdmf, private_caller()),
            (MessageFormat::Mdmf, private_caller()),
        ] {
            let audio = fsk_audio(&cid, standard, format, -13.5).unwrap();
            assert_eq!(receive_one(standard, &audio), cid, "{standard:?} {format:?}");
        }
    }
}

#[test]
fn the_receiver_finds_the_same_messages_whatever_the_chunk_size() {
    use hotline_drivers::dsp::callerid::FskPreamble;
    let standard = FskStandard::V23;
    let mut audio = fsk_audio(&full_caller(), standard, MessageFormat::Mdmf, -13.5).unwrap();
    audio.extend(silence(800));
    audio.extend(fsk_audio(&private_caller(), standard, MessageFormat::Sdmf, -20.0).unwrap());
    let whole = {
        let mut rx = FskReceiver::new(standard);
        let mut events = Vec::new();
        rx.process(&audio, &mut events);
        events
    };
    let by_frames = {
        let mut rx = FskReceiver::new(standard);
        let mut events = Vec::new();
        for frame in audio.chunks(160) {
            rx.process(frame, &mut events);
        }
        events
    };
    assert_eq!(whole.len(), 2, "{whole:?}");
    assert_eq!(whole, by_frames);
    assert_eq!(whole, receive(standard, &audio));
    assert_eq!(whole[0].result, Ok(full_caller()));
    assert_eq!(whole[1].result, Ok(private_caller()));

    // The shortest ETSI mark signal, and no seizure signal at all.
    let bytes = encode_message(&full_caller(), MessageFormat::Mdmf).unwrap();
    let short = FskPreamble { seizure_bits: 0, mark_bits: 55 };
    let audio = fsk_modulate(&bytes, standard, short, -13.5).unwrap();
    assert_eq!(receive_one(standard, &audio), full_caller());
}

#[test]
fn the_event_marks_where_the_message_ends() {
    for standard in STANDARDS {
        let bytes = encode_message(&full_caller(), MessageFormat::Mdmf).unwrap();
        let preamble = standard.default_preamble();
        let mut audio = silence(4000);
        audio.extend(fsk_modulate(&bytes, standard, preamble, -13.5).unwrap());
        let events = receive(standard, &audio);
        assert_eq!(events.len(), 1);
        let bits = preamble.seizure_bits + preamble.mark_bits + 10 * bytes.len() as u32;
        let end = 4000 + u64::from(bits) * 8000 / 1200;
        let at = events[0].at;
        assert!(at.abs_diff(end) <= 8, "{standard:?}: event at {at}, message ends at {end}");
    }
}

#[test]
fn caller_id_survives_a_g711_round_trip() {
    use hotline_drivers::dsp::g711::{alaw_round_trip, ulaw_round_trip};
    for standard in STANDARDS {
        for level in [-13.5, -30.0] {
            let audio = fsk_audio(&full_caller(), standard, MessageFormat::Mdmf, level).unwrap();
            let mut alaw = audio.clone();
            alaw_round_trip(&mut alaw);
            assert_eq!(receive_one(standard, &alaw), full_caller(), "{standard:?} A-law {level}");
            let mut ulaw = audio;
            ulaw_round_trip(&mut ulaw);
            assert_eq!(receive_one(standard, &ulaw), full_caller(), "{standard:?} mu-law {level}");
        }
    }
}

#[test]
fn caller_id_is_read_at_minus_10_and_minus_30_dbm0() {
    for standard in STANDARDS {
        for level in [-10.0, -30.0] {
            let audio = fsk_audio(&full_caller(), standard, MessageFormat::Mdmf, level).unwrap();
            // A 0 dBm0 sine peaks at 22 706, so its RMS is 22 706 / sqrt(2).
            let dbm0 = 20.0 * (rms(&audio) * 2f32.sqrt() / 22_706.0).log10();
            assert!((dbm0 - level).abs() < 0.1, "{standard:?}: sent at {dbm0} dBm0");
            assert_eq!(receive_one(standard, &audio), full_caller(), "{standard:?} at {level} dBm0");
        }
    }
}

#[test]
fn caller_id_is_read_through_white_noise_at_20_db_snr() {
    for standard in STANDARDS {
        for seed in 1..=5u64 {
            let audio = fsk_audio(&full_caller(), standard, MessageFormat::Mdmf, -13.5).unwrap();
            let noisy = add_noise(&audio, 20.0, seed * 7919);
            assert_eq!(receive_one(standard, &noisy), full_caller(), "{standard:?} seed {seed}");
        }
    }
}

/// Modulate by hand with both tones shifted by `ratio`, as a drifting exchange would.
fn off_frequency(bytes: &[u8], standard: FskStandard, ratio: f32) -> Vec<i16> {
    modulate_by_hand(bytes, standard, ratio, 0.0)
}

/// Modulate by hand: tones scaled by `ratio`, the space tone `tilt_db` louder than mark.
fn modulate_by_hand(bytes: &[u8], standard: FskStandard, ratio: f32, tilt_db: f32) -> Vec<i16> {
    let preamble = standard.default_preamble();
    let mut bits: Vec<bool> = (0..preamble.seizure_bits).map(|i| i % 2 == 1).collect();
    bits.extend((0..preamble.mark_bits).map(|_| true));
    for &b in bytes {
        bits.push(false);
        bits.extend((0..8).map(|i| b >> i & 1 == 1));
        bits.push(true);
    }
    bits.extend([true; 4]);
    let peak = 22_706.0 * 10f32.powf(-13.5 / 20.0);
    let mut phase = 0.0f64;
    let samples = bits.len() * 8000 / 1200;
    (0..samples)
        .map(|n| {
            let mark = bits[n * 1200 / 8000];
            let hz = if mark { standard.mark_hz() } else { standard.space_hz() };
            let gain = if mark { 1.0 } else { 10f64.powf(f64::from(tilt_db) / 20.0) };
            let s = (gain * peak as f64 * phase.sin()).round() as i16;
            phase += 2.0 * std::f64::consts::PI * f64::from(hz * ratio) / 8000.0;
            s
        })
        .collect()
}

#[test]
fn caller_id_is_read_with_the_carrier_one_percent_off_frequency() {
    let bytes = encode_message(&full_caller(), MessageFormat::Mdmf).unwrap();
    for standard in STANDARDS {
        for ratio in [0.99, 1.01] {
            let audio = off_frequency(&bytes, standard, ratio);
            assert_eq!(receive_one(standard, &audio), full_caller(), "{standard:?} x{ratio}");
        }
    }
}

#[test]
fn caller_id_is_read_through_a_line_that_tilts_the_tones_by_6_db() {
    let bytes = encode_message(&full_caller(), MessageFormat::Mdmf).unwrap();
    for standard in STANDARDS {
        for tilt in [-6.0, 6.0] {
            let audio = modulate_by_hand(&bytes, standard, 1.0, tilt);
            assert_eq!(receive_one(standard, &audio), full_caller(), "{standard:?} {tilt} dB");
        }
    }
}

#[test]
fn caller_id_is_read_over_mains_hum() {
    for standard in STANDARDS {
        let audio = fsk_audio(&full_caller(), standard, MessageFormat::Mdmf, -25.0).unwrap();
        // 50 Hz at -10 dBm0, 15 dB above the caller ID.
        let hum_peak = 22_706.0 * 10f32.powf(-10.0 / 20.0);
        let line: Vec<i16> = audio
            .iter()
            .enumerate()
            .map(|(n, &s)| {
                let hum = hum_peak * (2.0 * std::f32::consts::PI * 50.0 * n as f32 / 8000.0).sin();
                (f32::from(s) + hum).round() as i16
            })
            .collect();
        assert_eq!(receive_one(standard, &line), full_caller(), "{standard:?}");
    }
}

/// Noise shaped like speech: low-passed, with syllables about 4 times a second.
fn speech_like(samples: usize, seed: u64) -> Vec<i16> {
    let mut noise = Noise(seed);
    let mut low = 0.0f32;
    (0..samples)
        .map(|n| {
            low += 0.3 * (noise.gaussian() - low);
            let syllable = (std::f32::consts::PI * n as f32 * 4.0 / 8000.0).sin().abs();
            (3000.0 * syllable * low).round() as i16
        })
        .collect()
}

#[test]
fn caller_id_between_ring_silence_and_speech_is_found_once() {
    for standard in STANDARDS {
        let mut noise = Noise(42);
        // Two seconds of a quiet line between rings, then caller ID, then talk.
        let mut audio: Vec<i16> = (0..16_000).map(|_| (20.0 * noise.gaussian()) as i16).collect();
        audio.extend(fsk_audio(&full_caller(), standard, MessageFormat::Mdmf, -13.5).unwrap());
        audio.extend(silence(2000));
        audio.extend(speech_like(5 * 8000, 99));
        assert_eq!(receive_one(standard, &audio), full_caller(), "{standard:?}");
    }
}

#[test]
fn speech_alone_produces_no_caller_id() {
    for standard in STANDARDS {
        let events = receive(standard, &speech_like(20 * 8000, 7));
        assert!(events.is_empty(), "{standard:?}: {events:?}");
    }
}

#[test]
fn a_single_flipped_bit_is_reported_as_a_checksum_error() {
    for standard in STANDARDS {
        let mut bytes = encode_message(&full_caller(), MessageFormat::Mdmf).unwrap();
        bytes[14] ^= 0x08;
        let audio = fsk_modulate(&bytes, standard, standard.default_preamble(), -13.5).unwrap();
        let events = receive(standard, &audio);
        assert_eq!(events.len(), 1, "{standard:?}: {events:?}");
        let err = events[0].result.clone().unwrap_err();
        assert!(err.message().contains("checksum"), "{standard:?}: {err}");
    }
}

#[test]
fn a_message_cut_off_mid_way_is_reported_as_truncated() {
    for standard in STANDARDS {
        let audio = fsk_audio(&full_caller(), standard, MessageFormat::Mdmf, -13.5).unwrap();
        let cut = &audio[..audio.len() - 100];
        let mut with_silence = cut.to_vec();
        with_silence.extend(silence(4000));
        for input in [cut, &with_silence[..]] {
            let events = receive(standard, input);
            assert_eq!(events.len(), 1, "{standard:?}: {events:?}");
            let err = events[0].result.clone().unwrap_err();
            assert!(err.message().contains("truncated"), "{standard:?}: {err}");
        }
    }
}

#[test]
fn decoding_truncated_or_garbage_bytes_errors_with_the_offset() {
    let good = encode_message(&full_caller(), MessageFormat::Mdmf).unwrap();
    for len in 0..good.len() {
        let err = decode_message(&good[..len]).unwrap_err();
        assert!(err.message().contains("truncated"), "{len}: {err}");
    }
    let mut unknown = vec![0x42, 2, b'1', b'2'];
    unknown.push(0u8.wrapping_sub(unknown.iter().fold(0u8, |s, &b| s.wrapping_add(b))));
    let err = decode_message(&unknown).unwrap_err();
    assert!(err.message().contains("type 0x42 at offset 0"), "{err}");

    // A parameter that runs past the end of the data.
    let mut overrun = vec![0x80, 4, 0x02, 9, b'1', b'2'];
    overrun.push(0u8.wrapping_sub(overrun.iter().fold(0u8, |s, &b| s.wrapping_add(b))));
    let err = decode_message(&overrun).unwrap_err();
    assert!(err.message().contains("offset 2 announces 9 bytes"), "{err}");

    let mut trailing = good.clone();
    trailing.push(0);
    assert!(decode_message(&trailing).unwrap_err().message().contains("after the checksum"));

    // Pseudo-random garbage never panics.
    let mut noise = Noise(5);
    for _ in 0..2000 {
        let len = (noise.uniform() + 0.5) * 40.0;
        let bytes: Vec<u8> = (0..len as usize).map(|_| ((noise.uniform() + 0.5) * 256.0) as u8).collect();
        let _ = decode_message(&bytes);
    }
}

#[test]
fn a_bad_date_in_a_message_is_named() {
    let mut bytes = vec![0x04, 9];
    bytes.extend(b"13210905P");
    bytes.push(0u8.wrapping_sub(bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))));
    let err = decode_message(&bytes).unwrap_err();
    assert!(err.message().contains("month 13 at offset 2"), "{err}");
}

#[test]
fn dtmf_caller_id_digit_strings_round_trip() {
    let number = CallerId { number: Some("0123456789".into()), ..CallerId::default() };
    assert_eq!(dtmf_caller_id_digits(&number), "A0123456789C");
    assert_eq!(parse_dtmf_caller_id("A0123456789C").unwrap(), number);
    assert_eq!(parse_dtmf_caller_id("A0123456789#").unwrap(), number);

    let private = CallerId { absence: Some(Absence::Private), ..CallerId::default() };
    let unavailable = CallerId { absence: Some(Absence::Unavailable), ..CallerId::default() };
    assert_eq!(dtmf_caller_id_digits(&private), "D1C");
    assert_eq!(dtmf_caller_id_digits(&unavailable), "D3C");
    assert_eq!(parse_dtmf_caller_id("D1C").unwrap(), private);
    assert_eq!(parse_dtmf_caller_id("D2C").unwrap(), unavailable);
    assert_eq!(parse_dtmf_caller_id("D3C").unwrap(), unavailable);

    // Date, time and name do not travel in DTMF.
    assert_eq!(dtmf_caller_id_digits(&full_caller()), "A01087654321C");
    let plus = CallerId { number: Some("+8610123".into()), ..CallerId::default() };
    assert_eq!(dtmf_caller_id_digits(&plus), "A8610123C");
    assert!(try_dtmf_caller_id_digits(&plus).unwrap_err().message().contains("'+' at position 0"));
}

#[test]
fn dtmf_caller_id_parse_errors_name_the_problem() {
    let cases = [
        ("", "empty"),
        ("B123C", "'B' at position 0"),
        ("A123", "no end digit"),
        ("A12*3C", "'*' at position 3"),
        ("AC", "no number"),
        ("D7C", "absence code \"7\""),
        ("A123C45", "2 digits after the end digit"),
    ];
    for (digits, expected) in cases {
        let err = parse_dtmf_caller_id(digits).unwrap_err();
        assert!(err.message().contains(expected), "{digits:?}: {err}");
    }
}

fn receive_dtmf(audio: &[i16]) -> Vec<CallerIdEvent> {
    let mut rx = DtmfCallerIdReceiver::new();
    let mut events = Vec::new();
    for frame in audio.chunks(160) {
        rx.process(frame, &mut events);
    }
    rx.finish(&mut events);
    events
}

#[test]
fn dtmf_caller_id_is_sent_before_the_ring_and_read_back() {
    use hotline_drivers::dsp::g711::alaw_round_trip;
    let number = CallerId { number: Some("01087654321".into()), ..CallerId::default() };
    let private = CallerId { absence: Some(Absence::Private), ..CallerId::default() };
    for cid in [number, private] {
        let mut audio = silence(4000);
        audio.extend(dtmf_caller_id_audio(&cid, dtmf_caller_id_params()).unwrap());
        audio.extend(silence(8000));
        let clean = receive_dtmf(&audio);
        assert_eq!(clean.len(), 1, "{clean:?}");
        assert_eq!(clean[0].result, Ok(cid.clone()));

        let mut line = add_noise(&audio, 20.0, 3);
        alaw_round_trip(&mut line);
        let noisy = receive_dtmf(&line);
        assert_eq!(noisy.len(), 1, "{noisy:?}");
        assert_eq!(noisy[0].result, Ok(cid));
    }
}

#[test]
fn dtmf_caller_id_ignores_stray_digits_and_reports_a_cut_off_string() {
    let params = dtmf_caller_id_params();
    let mut audio = DtmfGenerator::generate("59", params).unwrap();
    audio.extend(silence(16_000));
    audio.extend(DtmfGenerator::generate("A1234", params).unwrap());
    audio.extend(silence(16_000));
    audio.extend(DtmfGenerator::generate("A7C", params).unwrap());
    let events = receive_dtmf(&audio);
    assert_eq!(events.len(), 2, "{events:?}");
    let err = events[0].result.clone().unwrap_err();
    assert!(err.message().contains("\"A1234\""), "{err}");
    assert_eq!(events[1].result.as_ref().unwrap().number.as_deref(), Some("7"));

    let plus = CallerId { number: Some("+86".into()), ..CallerId::default() };
    assert!(dtmf_caller_id_audio(&plus, params).is_err());
}
