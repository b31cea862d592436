//! The ground floor's capacity figure: how many channels one core keeps up with in real
//! time running DTMF plus call-progress tone detection on every 20 ms frame.
//!
//! Unlike the per-frame benches, this one holds 10,000 channels at once, each with its
//! own detectors and its own place in its own kind of audio, and times one 20 ms tick
//! over all of them, so cache misses between channels are paid as on a real card.
//! Channels per core = 10,000 x 20 ms / (time per tick).

use criterion::{criterion_group, criterion_main, Criterion};
use hotline_drivers::dsp::dtmf::{DtmfDetector, DtmfGenerator, DtmfParams};
use hotline_drivers::dsp::tones::{ToneDetector, ToneGenerator, TonePlan};
use hotline_drivers::signal::Tone;
use hotline_drivers::FRAME_SAMPLES;

const CHANNELS: usize = 10_000;
const SIGNAL_SAMPLES: usize = 80_000; // 10 s of each kind of audio

/// Speech-like sound: white noise through a slowly moving resonance, bursts and gaps.
fn speechlike(seed: u64) -> Vec<i16> {
    let mut state = seed | 1;
    let mut y1 = 0.0f32;
    let mut y2 = 0.0f32;
    (0..SIGNAL_SAMPLES)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6000.0;
            let f = 300.0 + 900.0 * (1.0 + (i as f32 / 1600.0).sin());
            let r = 0.97f32;
            let c = 2.0 * r * (2.0 * std::f32::consts::PI * f / 8000.0).cos();
            let y = x + c * y1 - r * r * y2;
            y2 = y1;
            y1 = y;
            let syllable = if (i / 1200) % 4 == 3 { 0.05 } else { 1.0 };
            (y * 0.08 * syllable).clamp(-32000.0, 32000.0) as i16
        })
        .collect()
}

fn tone(plan: &TonePlan, t: Tone) -> Vec<i16> {
    let mut out = vec![0i16; SIGNAL_SAMPLES];
    ToneGenerator::for_tone(plan, t).fill(&mut out);
    out
}

fn bench(c: &mut Criterion) {
    let plan = TonePlan::china();
    let mut dialling = DtmfGenerator::generate(
        &"4008001234#".repeat(5),
        DtmfParams { on_ms: 80, off_ms: 80, ..Default::default() },
    )
    .unwrap();
    dialling.resize(SIGNAL_SAMPLES, 0);
    // What a busy card's channels carry: mostly talk, some silence, tones, keypresses.
    let signals: Vec<Vec<i16>> = vec![
        speechlike(1),
        speechlike(2),
        speechlike(3),
        vec![0; SIGNAL_SAMPLES],
        tone(&plan, Tone::Ringback),
        tone(&plan, Tone::Busy),
        dialling,
    ];
    let frames_per_signal = SIGNAL_SAMPLES / FRAME_SAMPLES;
    struct Channel {
        signal: usize,
        frame: usize,
        dtmf: DtmfDetector,
        tones: ToneDetector,
    }
    let mut channels: Vec<Channel> = (0..CHANNELS)
        .map(|i| Channel {
            signal: i % signals.len(),
            frame: (i * 7919) % frames_per_signal,
            dtmf: DtmfDetector::new(),
            tones: ToneDetector::new(&plan),
        })
        .collect();
    let mut digits = Vec::with_capacity(64);
    let mut tones = Vec::with_capacity(64);

    let mut group = c.benchmark_group("detection, 10000 channels");
    group.sample_size(30);
    group.bench_function("one 20 ms tick (DTMF + tones)", |b| {
        b.iter(|| {
            for ch in channels.iter_mut() {
                let start = ch.frame * FRAME_SAMPLES;
                let frame = &signals[ch.signal][start..start + FRAME_SAMPLES];
                ch.dtmf.process(frame, &mut digits);
                ch.tones.process(frame, &mut tones);
                ch.frame = (ch.frame + 1) % frames_per_signal;
            }
            digits.clear();
            tones.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
