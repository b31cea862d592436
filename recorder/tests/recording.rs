//! Recording scenarios through the real writer threads: what goes where in the file, how
//! gaps, late legs and formats come out, and how a recording ends by itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use hotline_drivers::command::TapFrame;
use hotline_drivers::dsp::wav::{read_wav_file, Encoding, SampleFormat};
use hotline_drivers::{ChannelId, Instant, FRAME_SAMPLES};
use hotline_recorder::{
    EndReason, ErrorKind, Format, Layout, Recorder, RecorderConfig, RecorderEvent, RecordingSpec, Side,
};

const CALLER: ChannelId = ChannelId::e1(0, 1, 1);
const AGENT: ChannelId = ChannelId::fxs(0, 3);
const CONSULTED: ChannelId = ChannelId::fxs(0, 4);

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hotline-recorder-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn frame(ch: ChannelId, n: u64, value: i16) -> TapFrame {
    TapFrame { ch, id: 1, time: Instant::from_millis(5_000 + 20 * n), samples: vec![value; FRAME_SAMPLES] }
}

fn stereo(id: u64, path: &Path, format: Format) -> RecordingSpec {
    RecordingSpec {
        id,
        path: path.to_path_buf(),
        format,
        layout: Layout::Stereo { left: CALLER, right: AGENT },
        max_len: None,
        silence_end: None,
    }
}

fn wait(events: &Receiver<RecorderEvent>) -> RecorderEvent {
    events.recv_timeout(Duration::from_secs(20)).expect("the recorder reports within 20 s")
}

fn finished(ev: RecorderEvent) -> (PathBuf, Duration, u64, u64, u64, EndReason) {
    match ev {
        RecorderEvent::Finished { path, duration, frames, dropped, unplaced, reason, .. } => {
            (path, duration, frames, dropped, unplaced, reason)
        }
        RecorderEvent::Failed { message, .. } => panic!("recording failed: {message}"),
    }
}

fn feed(tx: &Sender<TapFrame>, ch: ChannelId, range: std::ops::Range<u64>, value: i16) {
    for n in range {
        tx.send(frame(ch, n, value)).unwrap();
    }
}

#[test]
fn a_stereo_call_has_the_caller_left_and_the_agent_right() {
    let dir = temp_dir("stereo");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("call.wav");
    let tx = rec.begin(stereo(1, &path, Format::Wav(Encoding::Pcm16))).unwrap();
    for n in 0..100 {
        tx.send(frame(CALLER, n, 1000)).unwrap();
        tx.send(frame(AGENT, n, -2000)).unwrap();
    }
    rec.end(1);
    let (p, duration, frames, dropped, unplaced, reason) = finished(wait(&events));
    assert_eq!((p.as_path(), reason), (path.as_path(), EndReason::Stopped));
    assert_eq!((duration, frames, dropped, unplaced), (Duration::from_secs(2), 200, 0, 0));
    assert!(!dir.join("call.wav.part").exists(), "the .part name is gone once finished");
    let (spec, samples) = read_wav_file(&path).unwrap();
    assert_eq!((spec.sample_rate, spec.channels, spec.format), (8000, 2, SampleFormat::Pcm16));
    assert_eq!(samples.len(), 2 * 100 * FRAME_SAMPLES);
    assert!(samples.chunks(2).all(|lr| lr == [1000, -2000]));
}

#[test]
fn a_frame_the_card_dropped_is_silence_and_counted() {
    let dir = temp_dir("gap");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("gap.wav");
    let tx = rec.begin(stereo(2, &path, Format::Wav(Encoding::Pcm16))).unwrap();
    for n in 0..50 {
        tx.send(frame(AGENT, n, 500)).unwrap();
        // Frames 20..25 of the caller never arrive (the card's queue was full).
        if !(20..25).contains(&n) {
            tx.send(frame(CALLER, n, 700)).unwrap();
        }
    }
    rec.end(2);
    let (_, duration, frames, dropped, _, _) = finished(wait(&events));
    assert_eq!((duration, frames, dropped), (Duration::from_secs(1), 95, 5));
    let (_, samples) = read_wav_file(&path).unwrap();
    let left: Vec<i16> = samples.chunks(2).map(|lr| lr[0]).collect();
    assert!(left[..20 * FRAME_SAMPLES].iter().all(|&s| s == 700));
    assert!(left[20 * FRAME_SAMPLES..25 * FRAME_SAMPLES].iter().all(|&s| s == 0));
    assert!(left[25 * FRAME_SAMPLES..].iter().all(|&s| s == 700));
}

#[test]
fn a_consulted_agent_is_mixed_into_the_agent_side_from_when_they_join() {
    let dir = temp_dir("consult");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("consult.wav");
    let tx = rec.begin(stereo(3, &path, Format::Wav(Encoding::Pcm16))).unwrap();
    feed(&tx, CALLER, 0..10, 100);
    feed(&tx, AGENT, 0..10, 200);
    rec.add_leg(3, CONSULTED, Side::Agent).unwrap();
    for n in 10..20 {
        tx.send(frame(CALLER, n, 100)).unwrap();
        tx.send(frame(AGENT, n, 200)).unwrap();
        tx.send(frame(CONSULTED, n, 30)).unwrap();
    }
    rec.end(3);
    let (_, duration, frames, _, unplaced, _) = finished(wait(&events));
    assert_eq!((duration, frames, unplaced), (Duration::from_millis(400), 50, 0));
    let (_, samples) = read_wav_file(&path).unwrap();
    let right: Vec<i16> = samples.chunks(2).map(|lr| lr[1]).collect();
    assert!(right[..10 * FRAME_SAMPLES].iter().all(|&s| s == 200));
    assert!(right[10 * FRAME_SAMPLES..].iter().all(|&s| s == 230), "the consulted party is added in");
}

#[test]
fn a_mono_recording_mixes_both_parties_and_saturates_instead_of_wrapping() {
    let dir = temp_dir("mono");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("mono.wav");
    let spec = RecordingSpec {
        layout: Layout::Mono { chs: vec![CALLER, AGENT] },
        ..stereo(4, &path, Format::Wav(Encoding::Pcm16))
    };
    let tx = rec.begin(spec).unwrap();
    feed(&tx, CALLER, 0..5, 30_000);
    feed(&tx, AGENT, 0..5, 10_000);
    feed(&tx, CALLER, 5..10, -3);
    feed(&tx, AGENT, 5..10, 5);
    rec.end(4);
    finished(wait(&events));
    let (spec, samples) = read_wav_file(&path).unwrap();
    assert_eq!(spec.channels, 1);
    assert!(samples[..5 * FRAME_SAMPLES].iter().all(|&s| s == i16::MAX));
    assert!(samples[5 * FRAME_SAMPLES..].iter().all(|&s| s == 2));
}

#[test]
fn a_law_and_mu_law_files_read_back_within_the_codec_step() {
    for (id, enc, format) in
        [(5, Encoding::Alaw, SampleFormat::Alaw), (6, Encoding::Ulaw, SampleFormat::Ulaw)]
    {
        let dir = temp_dir(enc.name());
        let (rec, events) = Recorder::spawn(RecorderConfig::default());
        let path = dir.join("g711.wav");
        let tx = rec.begin(stereo(id, &path, Format::Wav(enc))).unwrap();
        feed(&tx, CALLER, 0..25, 1000);
        feed(&tx, AGENT, 0..25, -1000);
        rec.end(id);
        let (_, duration, ..) = finished(wait(&events));
        assert_eq!(duration, Duration::from_millis(500));
        let (spec, samples) = read_wav_file(&path).unwrap();
        assert_eq!((spec.channels, spec.format), (2, format));
        assert_eq!(samples.len(), 2 * 25 * FRAME_SAMPLES);
        assert!(samples.chunks(2).all(|lr| (lr[0] - 1000).abs() < 40 && (lr[1] + 1000).abs() < 40));
    }
}

#[test]
fn a_voicemail_ends_on_silence_without_keeping_the_silence() {
    let dir = temp_dir("silence");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("vm.wav");
    let spec = RecordingSpec {
        layout: Layout::Mono { chs: vec![CALLER] },
        silence_end: Some(Duration::from_secs(1)),
        ..stereo(7, &path, Format::Wav(Encoding::Pcm16))
    };
    let tx = rec.begin(spec).unwrap();
    feed(&tx, CALLER, 0..50, 3000); // a second of speech
    feed(&tx, CALLER, 50..55, 0); // a short pause is kept
    feed(&tx, CALLER, 55..60, 3000);
    feed(&tx, CALLER, 60..200, 10); // then line noise: the caller has finished
    let (_, duration, _, _, _, reason) = finished(wait(&events));
    assert_eq!((reason, duration), (EndReason::Silence, Duration::from_millis(1200)));
    assert!(!rec.is_running(7));
    let (_, samples) = read_wav_file(&path).unwrap();
    assert_eq!(samples.len(), 60 * FRAME_SAMPLES);
}

#[test]
fn a_recording_stops_itself_at_its_maximum_length() {
    let dir = temp_dir("maxlen");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("max.wav");
    let spec = RecordingSpec {
        max_len: Some(Duration::from_secs(1)),
        ..stereo(8, &path, Format::Wav(Encoding::Pcm16))
    };
    let tx = rec.begin(spec).unwrap();
    for n in 0..100 {
        tx.send(frame(CALLER, n, 1)).unwrap();
        // The writer stops reading after a second of audio; the card's try_send fails.
        let _ = tx.try_send(frame(AGENT, n, 2));
    }
    let (_, duration, _, _, _, reason) = finished(wait(&events));
    assert_eq!((reason, duration), (EndReason::MaxLength, Duration::from_secs(1)));
    assert_eq!(read_wav_file(&path).unwrap().1.len(), 2 * 50 * FRAME_SAMPLES);
}

#[test]
fn a_recording_whose_channels_are_all_gone_finishes_by_itself() {
    let dir = temp_dir("gone");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("gone.wav");
    let tx = rec.begin(stereo(9, &path, Format::Wav(Encoding::Pcm16))).unwrap();
    let agent_tap = tx.clone();
    feed(&tx, CALLER, 0..30, 5);
    feed(&agent_tap, AGENT, 0..30, 6);
    drop(tx);
    drop(agent_tap); // both taps ended: the channels were released
    let (_, duration, frames, _, _, reason) = finished(wait(&events));
    assert_eq!((reason, duration, frames), (EndReason::ChannelGone, Duration::from_millis(600), 60));
}

#[test]
fn frames_from_a_channel_that_is_no_leg_and_late_duplicates_are_counted_not_placed() {
    let dir = temp_dir("stray");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let path = dir.join("stray.wav");
    let tx = rec.begin(stereo(10, &path, Format::Wav(Encoding::Pcm16))).unwrap();
    feed(&tx, CALLER, 0..10, 1);
    feed(&tx, AGENT, 0..10, 1);
    tx.send(frame(CONSULTED, 3, 9)).unwrap(); // not added with add_leg
    tx.send(frame(CALLER, 4, 9)).unwrap(); // a duplicate
    rec.end(10);
    let (_, _, frames, dropped, unplaced, _) = finished(wait(&events));
    assert_eq!((frames, dropped, unplaced), (20, 0, 2));
}

#[test]
fn the_api_refuses_what_it_cannot_do_without_blocking() {
    let dir = temp_dir("refuse");
    let (rec, events) = Recorder::spawn(RecorderConfig { writers: 1, ..RecorderConfig::default() });
    let path = dir.join("a.wav");
    let _tx = rec.begin(stereo(11, &path, Format::Wav(Encoding::Pcm16))).unwrap();
    let again = rec.begin(stereo(11, &dir.join("b.wav"), Format::Wav(Encoding::Pcm16))).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::DuplicateId);
    let bad = rec.begin(stereo(12, &dir.join("c.mp3"), Format::Mp3 { kbps: 17 })).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidSpec);
    assert!(bad.message().contains("17 kbit/s"), "{bad}");
    let mono = RecordingSpec {
        layout: Layout::Mono { chs: vec![] },
        ..stereo(13, &path, Format::Wav(Encoding::Pcm16))
    };
    assert_eq!(rec.begin(mono).unwrap_err().kind(), ErrorKind::InvalidSpec);
    assert_eq!(rec.add_leg(99, CONSULTED, Side::Agent).unwrap_err().kind(), ErrorKind::UnknownId);
    rec.end(99); // ignored
                 // A file that cannot be created is reported, not panicked on.
    let blocked = dir.join("file-not-dir");
    std::fs::write(&blocked, b"x").unwrap();
    let _tx2 = rec.begin(stereo(14, &blocked.join("x.wav"), Format::Wav(Encoding::Pcm16))).unwrap();
    match wait(&events) {
        RecorderEvent::Failed { id, message } => {
            assert_eq!(id, 14);
            assert!(message.contains("x.wav.part"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(!rec.is_running(14));
}

#[test]
fn a_full_queue_costs_frames_at_the_card_and_the_recording_reports_them() {
    let dir = temp_dir("full");
    let (rec, events) =
        Recorder::spawn(RecorderConfig { writers: 1, queue_depth: 8, ..RecorderConfig::default() });
    let path = dir.join("full.wav");
    let tx = rec.begin(stereo(15, &path, Format::Wav(Encoding::Pcm16))).unwrap();
    // The card sends 400 frames at once, faster than any writer: try_send, as a card does.
    let mut card_dropped = 0u64;
    for n in 0..200 {
        for ch in [CALLER, AGENT] {
            if tx.try_send(frame(ch, n, 1)).is_err() {
                card_dropped += 1;
            }
        }
    }
    // The last frame of each leg, so that every hole lies inside the timeline.
    for ch in [CALLER, AGENT] {
        tx.send(frame(ch, 200, 1)).unwrap();
    }
    rec.end(15);
    let (_, duration, frames, dropped, unplaced, _) = finished(wait(&events));
    assert!(card_dropped > 0, "a queue of 8 cannot take 400 frames at once");
    // The first frames went into an empty queue and the last ones were waited for, so
    // every frame the card lost is a hole inside its leg's timeline.
    assert_eq!((dropped, frames + dropped, unplaced), (card_dropped, 2 * 201, 0));
    assert_eq!(duration, Duration::from_millis(20 * 201));
}

#[test]
fn a_finished_recording_decodes_back_for_playback_and_an_mp3_says_it_cannot() {
    let dir = temp_dir("decode");
    let (rec, events) = Recorder::spawn(RecorderConfig::default());
    let wav = dir.join("d.wav");
    let mp3 = dir.join("d.mp3");
    let a = rec.begin(stereo(20, &wav, Format::Wav(Encoding::Ulaw))).unwrap();
    let b = rec.begin(stereo(21, &mp3, Format::Mp3 { kbps: 24 })).unwrap();
    for tx in [&a, &b] {
        feed(tx, CALLER, 0..50, 800);
        feed(tx, AGENT, 0..50, -800);
    }
    rec.end(20);
    rec.end(21);
    finished(wait(&events));
    finished(wait(&events));
    let d = hotline_recorder::decode::decode_file(&wav).unwrap();
    assert_eq!((d.channels, d.duration()), (2, Duration::from_secs(1)));
    let e = hotline_recorder::decode::decode_file(&mp3).unwrap_err();
    assert!(e.to_string().contains("MP3 recordings cannot be decoded"), "{e}");
    let e = hotline_recorder::decode::decode_file(&dir.join("none.wav")).unwrap_err();
    assert!(e.to_string().contains("none.wav"), "{e}");
}
