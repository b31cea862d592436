//! Cost of call-progress tone detection per 20 ms frame (160 samples), on silence and on
//! busy tone, for the Chinese plan (3 filters) and the North American one (6 filters).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hotline_drivers::dsp::tones::{ToneDetector, ToneGenerator, TonePlan};
use hotline_drivers::signal::Tone;
use hotline_drivers::FRAME_SAMPLES;

fn frames(plan: &TonePlan, tone: Option<Tone>) -> Vec<i16> {
    // 100 frames (2 s) cycled through, so cadence tracking runs as it would on a line.
    let mut s = vec![0i16; 100 * FRAME_SAMPLES];
    if let Some(tone) = tone {
        ToneGenerator::for_tone(plan, tone).fill(&mut s);
    }
    s
}

fn bench(c: &mut Criterion) {
    for plan in [TonePlan::china(), TonePlan::north_america()] {
        for (what, tone) in [("silence", None), ("busy", Some(Tone::Busy))] {
            let audio = frames(&plan, tone);
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

criterion_group!(benches, bench);
criterion_main!(benches);
