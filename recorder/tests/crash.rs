//! Crash safety: a process recording a WAV and an MP3 call is killed with SIGKILL
//! mid-recording; on "restart" `repair_dir` finds both, fixes them and the audio reads
//! back. The child is this test binary run again with an environment variable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant as WallInstant};

use hotline_drivers::command::TapFrame;
use hotline_drivers::dsp::wav::{read_wav_file, Encoding};
use hotline_drivers::{ChannelId, Instant, FRAME_SAMPLES};
use hotline_recorder::repair::{mp3_header, repair_file};
use hotline_recorder::{repair_dir, Format, Layout, Recorder, RecorderConfig, RecordingSpec};

const CHILD_ENV: &str = "HOTLINE_RECORDER_CRASH_CHILD";
const CALLER: ChannelId = ChannelId::e1(0, 1, 1);
const AGENT: ChannelId = ChannelId::fxs(0, 3);

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hotline-recorder-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spec(id: u64, path: PathBuf, format: Format) -> RecordingSpec {
    RecordingSpec {
        id,
        path,
        format,
        layout: Layout::Stereo { left: CALLER, right: AGENT },
        max_len: None,
        silence_end: None,
    }
}

/// The child: records two calls, three seconds each, then waits to be killed.
fn child(dir: &Path) -> ! {
    let (rec, _events) = Recorder::spawn(RecorderConfig::default());
    let wav = rec.begin(spec(1, dir.join("2024/05/01/1.wav"), Format::Wav(Encoding::Pcm16))).unwrap();
    let mp3 = rec.begin(spec(2, dir.join("2024/05/01/2.mp3"), Format::Mp3 { kbps: 32 })).unwrap();
    for n in 0..150u64 {
        let time = Instant::from_millis(1_000 + 20 * n);
        // Speech-like enough for the MP3 encoder: a 400 Hz tone left, 700 Hz right.
        let tone = |hz: f64, amp: f64| -> Vec<i16> {
            (0..FRAME_SAMPLES)
                .map(|i| {
                    let t = (n as usize * FRAME_SAMPLES + i) as f64 / 8000.0;
                    (amp * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
                })
                .collect()
        };
        for (tx, wav_audio) in [(&wav, true), (&mp3, false)] {
            let (l, r) = if wav_audio {
                (vec![1000; FRAME_SAMPLES], vec![-2000; FRAME_SAMPLES])
            } else {
                (tone(400.0, 8000.0), tone(700.0, 8000.0))
            };
            tx.send(TapFrame { ch: CALLER, id: 1, time, samples: l }).unwrap();
            tx.send(TapFrame { ch: AGENT, id: 1, time, samples: r }).unwrap();
        }
    }
    // The call goes on; the recorder has written two checkpoints by now.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_recording_cut_by_kill_9_is_repaired_on_restart_and_plays() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = temp_dir("crash");
    let mut kid = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_recording_cut_by_kill_9_is_repaired_on_restart_and_plays", "--nocapture"])
        .env(CHILD_ENV, &dir)
        .spawn()
        .unwrap();
    let wav_part = dir.join("2024/05/01/1.wav.part");
    let mp3_part = dir.join("2024/05/01/2.mp3.part");
    // Two checkpoints of stereo PCM16 (2 s) and a second of MP3 at 32 kbit/s.
    let deadline = WallInstant::now() + Duration::from_secs(30);
    while file_len(&wav_part) < 44 + 2 * 50 * 640 || file_len(&mp3_part) < 4000 {
        assert!(WallInstant::now() < deadline, "the child did not record within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    kid.kill().unwrap(); // SIGKILL
    kid.wait().unwrap();
    assert!(wav_part.exists() && mp3_part.exists(), "the files in progress are still .part");

    let repaired = repair_dir(&dir).unwrap();
    assert_eq!(repaired.len(), 2, "{repaired:?}");
    for r in &repaired {
        assert_eq!(r.problem, None);
        assert!(r.path.exists() && !r.part.exists());
    }
    let wav = repaired.iter().find(|r| r.path.ends_with("1.wav")).unwrap();
    assert!(wav.duration >= Duration::from_secs(2), "{wav:?}");
    let bytes = std::fs::read(&wav.path).unwrap();
    let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    assert_eq!((riff, data), (bytes.len() - 8, bytes.len() - 44), "the header sizes match the file");
    let (spec, samples) = read_wav_file(&wav.path).unwrap();
    assert_eq!(spec.channels, 2);
    assert_eq!(samples.len() as u128 / 2, wav.duration.as_micros() * 8000 / 1_000_000);
    assert!(samples.chunks(2).all(|lr| lr == [1000, -2000]));

    let mp3 = repaired.iter().find(|r| r.path.ends_with("2.mp3")).unwrap();
    assert!(mp3.duration >= Duration::from_millis(900), "{mp3:?}");
    // The file is whole MPEG frames, end to end.
    let bytes = std::fs::read(&mp3.path).unwrap();
    let mut pos = 0;
    while pos < bytes.len() {
        let (len, samples, rate) = mp3_header(&bytes[pos..]).expect("an MPEG frame header");
        assert_eq!((samples, rate), (576, 8000));
        pos += len;
    }
    assert_eq!(pos, bytes.len());

    // A second startup finds nothing more to do.
    assert!(repair_dir(&dir).unwrap().is_empty());
}

#[test]
fn a_half_written_sample_frame_is_cut_and_the_sizes_set() {
    let dir = temp_dir("half");
    let part = dir.join("x.wav.part");
    let mut bytes = hotline_recorder::sink::wav_header(Encoding::Alaw, 2, 0);
    let header = bytes.len();
    bytes.extend(std::iter::repeat_n(0xD5u8, 801)); // 400 stereo A-law frames and a half
    std::fs::write(&part, &bytes).unwrap();
    let r = repair_file(&part);
    assert_eq!((r.problem.as_deref(), r.cut_bytes, r.duration), (None, 1, Duration::from_millis(50)));
    let fixed = std::fs::read(dir.join("x.wav")).unwrap();
    assert_eq!(fixed.len(), header + 800);
    let fact = u32::from_le_bytes(fixed[46..50].try_into().unwrap());
    assert_eq!(fact, 400, "the fact chunk counts sample frames");
    let (_, samples) = read_wav_file(dir.join("x.wav")).unwrap();
    assert_eq!(samples.len(), 800);
}

#[test]
fn a_part_file_that_is_no_recording_is_left_alone_and_reported() {
    let dir = temp_dir("junk");
    let empty = dir.join("a.wav.part");
    let junk = dir.join("b.wav.part");
    std::fs::write(&empty, b"").unwrap();
    std::fs::write(&junk, b"hello, world").unwrap();
    let taken = dir.join("c.wav");
    std::fs::write(dir.join("c.wav.part"), hotline_recorder::sink::wav_header(Encoding::Pcm16, 1, 0))
        .unwrap();
    std::fs::write(&taken, b"already here").unwrap();
    let r = repair_dir(&dir).unwrap();
    assert_eq!(r.len(), 3);
    assert!(r[0].problem.as_deref().unwrap().contains("empty file"), "{r:?}");
    assert!(r[1].problem.as_deref().unwrap().contains("offset 0: expected 'RIFF'"), "{r:?}");
    assert!(r[2].problem.as_deref().unwrap().contains("exists already"), "{r:?}");
    assert!(empty.exists() && junk.exists());
    assert_eq!(std::fs::read(&taken).unwrap(), b"already here");
    assert!(repair_dir(&dir.join("missing")).unwrap().is_empty());
}
