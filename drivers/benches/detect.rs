//! Cost of DTMF detection per 20 ms frame (160 samples), the figure behind "how many
//! channels one core keeps up with": channels per core = 20 ms / time per frame.
//!
//! Each case feeds a long recording frame by frame, cycling, so the detector's state
//! (block boundaries, tracked digits) evolves as on a live channel.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hotline_drivers::dsp::dtmf::{DtmfDetector, DtmfGenerator, DtmfParams};
use hotline_drivers::FRAME_SAMPLES;

/// Ten seconds of white noise at about -15 dBm0 (xorshift, sum of uniforms).
fn noise() -> Vec<i16> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..80_000)
        .map(|_| {
            let mut sum = 0i32;
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                sum += (state >> 52) as i32 - 2048;
            }
            (sum * 2) as i16
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let held = DtmfParams { on_ms: 10_000, off_ms: 0, ..Default::default() };
    let dialling = DtmfParams { on_ms: 60, off_ms: 60, ..Default::default() };
    let cases = [
        ("silence", vec![0i16; 80_000]),
        ("held digit", DtmfGenerator::generate("5", held).unwrap()),
        ("dialling", DtmfGenerator::generate(&"0123456789*#ABCD".repeat(6), dialling).unwrap()),
        ("noise", noise()),
    ];
    let mut group = c.benchmark_group("dtmf detector per 20 ms frame");
    group.throughput(Throughput::Elements(1));
    for (name, signal) in cases {
        let frames: Vec<&[i16]> = signal.chunks_exact(FRAME_SAMPLES).collect();
        let mut detector = DtmfDetector::new();
        let mut events = Vec::with_capacity(16);
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                detector.process(black_box(frames[next]), &mut events);
                next = (next + 1) % frames.len();
                events.clear();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
