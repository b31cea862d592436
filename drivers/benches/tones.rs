//! Cost of call-progress tone detection per 20 ms frame (160 samples), for the Chinese plan
//! (3 filters) and the North American one (6 filters): on silence (filters skipped), busy
//! tone (half its frames silent), dial tone and loud white noise (filters on every frame).
//! Then a channel's whole listening cost, DTMF and tone detectors together, with the
//! channels one core keeps up with in real time (50 frames per second each).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hotline_drivers::dsp::dtmf::DtmfDetector;
use hotline_drivers::dsp::tones::{ToneDetector, ToneGenerator, TonePlan};
use hotline_drivers::signal::Tone;
use hotline_drivers::FRAME_SAMPLES;

enum Audio {
    Silence,
    Tone(Tone),
    Noise,
}

fn frames(plan: &TonePlan, audio: &Audio) -> Vec<i16> {
    // 100 frames (2 s) cycled through, so cadence tracking runs as it would on a line.
    let mut s = vec![0i16; 100 * FRAME_SAMPLES];
    match audio {
        Audio::Silence => {}
        Audio::Tone(tone) => ToneGenerator::for_tone(plan, *tone).fill(&mut s),
        Audio::Noise => {
            // Uniform white noise around -15 dBm0 (xorshift32).
            let mut x = 0x1234_5678u32;
            for v in &mut s {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *v = ((x >> 16) as i16) / 6;
            }
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    for plan in [TonePlan::china(), TonePlan::north_america()] {
        for (what, audio) in [
            ("silence", Audio::Silence),
            ("busy", Audio::Tone(Tone::Busy)),
            ("dial", Audio::Tone(Tone::Dial)),
            ("noise", Audio::Noise),
        ] {
            let audio = frames(&plan, &audio);
            let mut detector = ToneDetector::new(&plan);
            let mut events = Vec::with_capacity(16);
            let mut frame = audio.chunks_exact(FRAME_SAMPLES).cycle();
            c.bench_function(&format!("tones/{}/{what}/frame", plan.name), |b| {
                b.iter(|| {
                    detector.process(black_box(frame.next().unwrap_or(&[])), &mut events);
                    events.clear();
                })
            });
        }
    }
}

fn bench_with_dtmf(c: &mut Criterion) {
    let plan = TonePlan::china();
    for (what, audio) in
        [("silence", Audio::Silence), ("busy", Audio::Tone(Tone::Busy)), ("noise", Audio::Noise)]
    {
        let audio = frames(&plan, &audio);
        let mut tones = ToneDetector::new(&plan);
        let mut dtmf = DtmfDetector::new();
        let (mut tone_events, mut digits) = (Vec::with_capacity(16), Vec::with_capacity(16));
        let mut frame = audio.chunks_exact(FRAME_SAMPLES).cycle();
        c.bench_function(&format!("dtmf+tones/china/{what}/frame"), |b| {
            b.iter(|| {
                let f = black_box(frame.next().unwrap_or(&[]));
                dtmf.process(f, &mut digits);
                tones.process(f, &mut tone_events);
                digits.clear();
                tone_events.clear();
            })
        });
    }
}

criterion_group!(benches, bench, bench_with_dtmf);
criterion_main!(benches);
