//! The CPU cost of recording 480 simultaneous calls, in stereo WAV (PCM16) and in MP3
//! (32 kbit/s joint stereo): speech-like audio, 50 frames a second per leg, through the
//! real writing path (`Session`: placement, mixing, encoding, files in a temp directory),
//! driven synchronously on one thread so that the time measured is processing time.
//!
//! Criterion reports the wall time for the audio of all calls, opening and finishing the
//! files included (finishing syncs each file to disk, a wait rather than CPU work). The
//! bench also prints the figure the issue asks for, from the thread's CPU time
//! (/proc/thread-self/stat) while the calls run, without opening and finishing: CPU % of
//! one core = processing time / audio time.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant as WallInstant};

use criterion::{criterion_group, criterion_main, Criterion};
use hotline_drivers::command::TapFrame;
use hotline_drivers::dsp::wav::Encoding;
use hotline_drivers::{ChannelId, Instant, FRAME_SAMPLES};
use hotline_recorder::writer::Session;
use hotline_recorder::{EndReason, Format, Layout, RecorderConfig, RecorderEvent, RecordingSpec};

const CALLS: u64 = 480;

/// Speech-like: a voiced buzz (120 Hz fundamental and harmonics) under a syllable
/// envelope of about 4 Hz, with pauses, plus a little noise. Not a tone: the MP3 encoder
/// works as hard as on speech.
fn speech(seconds: usize, seed: u32) -> Vec<i16> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let n = seconds * 8000;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let noise = (x % 400) as f64 - 200.0;
            let f0 = 110.0 + 20.0 * (t * 0.7 + f64::from(seed)).sin();
            let voiced: f64 =
                (1..8).map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64).sum();
            let syllable = (2.0 * std::f64::consts::PI * 4.0 * t + f64::from(seed)).sin().max(0.0);
            let talking = if (t + f64::from(seed % 7)) % 6.0 < 4.0 { 1.0 } else { 0.05 };
            (6000.0 * voiced * syllable * talking + noise) as i16
        })
        .collect()
}

/// This thread's CPU time (user + system), in clock ticks of 10 ms.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<u64> = rest.split(' ').skip(11).take(2).map(|x| x.parse().expect("a number")).collect();
    Duration::from_millis((f[0] + f[1]) * 10)
}

/// Runs the calls; returns the wall time of everything and the CPU time of the steady
/// part (frames in, files written).
fn run(dir: &PathBuf, format: Format, seconds: u64, audio: &[Vec<i16>]) -> (Duration, Duration) {
    let _ = std::fs::remove_dir_all(dir);
    let cfg = RecorderConfig::default();
    let started = WallInstant::now();
    let mut sessions: Vec<Session> = (0..CALLS)
        .map(|id| {
            let spec = RecordingSpec {
                id,
                path: dir.join(format!("{id}.{}", format.extension())),
                format,
                layout: Layout::Stereo {
                    left: ChannelId::e1(0, 1 + (id / 30) as u8, 1),
                    right: ChannelId::fxs(0, id as u16),
                },
                max_len: None,
                silence_end: None,
            };
            Session::open(&spec, &cfg).expect("open")
        })
        .collect();
    let mut batch = Vec::with_capacity(2);
    let cpu = thread_cpu();
    for n in 0..seconds * 50 {
        let time = Instant::from_millis(20 * n);
        for (id, s) in sessions.iter_mut().enumerate() {
            let id = id as u64;
            let at = |leg: u64| {
                let a = &audio[((id * 2 + leg) % audio.len() as u64) as usize];
                let start = (n as usize * FRAME_SAMPLES) % (a.len() - FRAME_SAMPLES);
                a[start..start + FRAME_SAMPLES].to_vec()
            };
            // What the card's tap hands over: one owned frame per leg.
            batch.clear();
            batch.push(TapFrame {
                ch: ChannelId::e1(0, 1 + (id / 30) as u8, 1),
                id: 1,
                time,
                samples: at(0),
            });
            batch.push(TapFrame { ch: ChannelId::fxs(0, id as u16), id: 1, time, samples: at(1) });
            s.accept(&batch);
            s.advance(false).expect("write");
        }
    }
    let cpu = thread_cpu() - cpu;
    for s in sessions.drain(..) {
        match s.finish(EndReason::Stopped) {
            RecorderEvent::Finished { .. } => {}
            RecorderEvent::Failed { message, .. } => panic!("{message}"),
        }
    }
    (started.elapsed(), cpu)
}

fn bench(c: &mut Criterion) {
    let audio: Vec<Vec<i16>> = (0..16).map(|s| speech(7, s)).collect();
    let root = std::env::temp_dir().join(format!("hotline-recorder-bench-{}", std::process::id()));
    for (name, format, seconds) in [
        ("480 calls, stereo WAV PCM16", Format::Wav(Encoding::Pcm16), 10),
        ("480 calls, stereo MP3 32 kbit/s", Format::Mp3 { kbps: 32 }, 2),
    ] {
        let spent = Cell::new((Duration::ZERO, 0u64));
        let dir = root.join(format.extension());
        let mut g = c.benchmark_group("recording");
        g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(30));
        g.bench_function(format!("{name}, {seconds} s of audio"), |b| {
            b.iter_custom(|iters| {
                let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    let (w, c) = run(&dir, format, seconds, &audio);
                    wall += w;
                    cpu += c;
                }
                let (t, n) = spent.get();
                spent.set((t + cpu, n + iters * seconds));
                wall
            })
        });
        g.finish();
        let (t, audio_s) = spent.get();
        eprintln!(
            "{name}: {:.1}% of one core (CPU time while recording / audio time)",
            100.0 * t.as_secs_f64() / audio_s as f64
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, bench);
criterion_main!(benches);
