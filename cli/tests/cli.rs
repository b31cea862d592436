//! The `hotline` binary as a user runs it.

use std::path::PathBuf;
use std::process::Command;

fn hotline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("hotline runs");
    assert!(out.status.success(), "hotline failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn the_demo_shows_calls_digits_tones_caller_id_and_alarms_from_real_audio() {
    let out = run_ok(hotline().args(["sim", "card", "--fast", "--duration", "40"]));
    for expected in [
        "offered: 13800138000 calls 4008001234",
        "offered: 02188886666 calls this line (caller ID decoded between the rings)",
        "digit 1 (tone",
        "digit 2 (tone",
        "its display showed 13800138000",
        "ringback tone detected",
        "busy tone detected",
        "span alarm raised : loss of signal (LOS)",
        "cause 38 (network out of order)",
    ] {
        assert!(out.contains(expected), "demo output lacks {expected:?}:\n{out}");
    }
}

#[test]
fn the_demo_is_the_same_every_time_in_virtual_time() {
    let a = run_ok(hotline().args(["sim", "card", "--fast", "--duration", "25", "--seed", "7"]));
    let b = run_ok(hotline().args(["sim", "card", "--fast", "--duration", "25", "--seed", "7"]));
    assert_eq!(a, b);
}

#[test]
fn cards_lists_spans_and_lines_of_the_example_installation() {
    let out = run_ok(hotline().arg("cards").arg("--config").arg(repo().join("examples/hotline.toml")));
    assert!(out.contains("card 1  backend simulator"), "{out}");
    assert!(out.contains("span 1  ISDN PRI"), "{out}");
    assert!(out.contains("30 channels 1/1/1..1/1/31: 30 idle"), "{out}");
    assert!(out.contains("China No.1 (MFC-R2)"), "{out}");
    assert!(out.contains("fxo"), "{out}");
}

#[test]
fn a_broken_config_is_refused_with_its_line() {
    let dir = std::env::temp_dir().join(format!("hotline-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    std::fs::write(&path, "[[card]]\nid = 1\n[[card.span]]\nspan = 1\nsignalling = \"r2d2\"\n").unwrap();
    let out = hotline().arg("cards").arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml:5"), "{err}");
    assert!(err.contains("isdn_pri"), "the message lists the valid names: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

mod dsp_tools {
    use super::*;
    use hotline_drivers::dsp::callerid::{fsk_audio, FskStandard, MessageFormat};
    use hotline_drivers::dsp::dtmf::{DtmfGenerator, DtmfParams};
    use hotline_drivers::dsp::tones::{ToneGenerator, TonePlan};
    use hotline_drivers::dsp::{g711, wav};
    use hotline_drivers::signal::{CallerId, Tone};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hotline-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn with_silence(mut audio: Vec<i16>) -> Vec<i16> {
        let mut out = vec![0i16; 4000];
        out.append(&mut audio);
        out.extend(std::iter::repeat(0).take(4000));
        out
    }

    #[test]
    fn dtmf_finds_the_digits_of_an_alaw_wav_and_of_raw_alaw() {
        let dir = scratch("dtmf");
        let audio = with_silence(DtmfGenerator::generate("4008001234#", DtmfParams::default()).unwrap());
        let wav_path = dir.join("digits.wav");
        wav::write_wav_file(&wav_path, 8000, 1, wav::Encoding::Alaw, &audio).unwrap();
        let out = run_ok(hotline().args(["dsp", "dtmf"]).arg(&wav_path));
        assert!(out.contains("digits: 4008001234#"), "{out}");

        let mut raw = Vec::new();
        g711::encode_alaw(&audio, &mut raw);
        let raw_path = dir.join("digits.alaw");
        std::fs::write(&raw_path, raw).unwrap();
        let json = run_ok(hotline().args(["dsp", "dtmf", "--format", "alaw", "--json"]).arg(&raw_path));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["digits"], "4008001234#");
        assert_eq!(v["events"].as_array().unwrap().len(), 11);
        // The first digit starts after the half second of silence and lasts 100 ms.
        let start = v["events"][0]["start_ms"].as_u64().unwrap();
        let end = v["events"][0]["end_ms"].as_u64().unwrap();
        assert!((490..=510).contains(&start), "first digit starts at {start} ms");
        assert!((90..=110).contains(&(end - start)), "first digit lasts {} ms", end - start);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tones_recognises_busy_tone_on_a_capture() {
        let dir = scratch("tones");
        let mut audio = vec![0i16; 8000 * 4];
        ToneGenerator::for_tone(&TonePlan::china(), Tone::Busy).fill(&mut audio);
        let path = dir.join("busy.wav");
        wav::write_wav_file(&path, 8000, 1, wav::Encoding::Pcm16, &with_silence(audio)).unwrap();
        let out = run_ok(hotline().args(["dsp", "tones"]).arg(&path));
        assert!(out.contains("busy"), "{out}");
        assert!(!out.contains("congestion"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn callerid_decodes_v23_fsk_from_a_line_recording() {
        let dir = scratch("cid");
        let cid = CallerId {
            number: Some("02188886666".into()),
            time: Some((11, 21, 9, 30)),
            ..CallerId::default()
        };
        let audio = fsk_audio(&cid, FskStandard::V23, MessageFormat::Mdmf, -13.0).unwrap();
        let path = dir.join("cid.wav");
        wav::write_wav_file(&path, 8000, 1, wav::Encoding::Ulaw, &with_silence(audio)).unwrap();
        let out = run_ok(hotline().args(["dsp", "callerid"]).arg(&path));
        assert!(out.contains("FSK V.23  number 02188886666"), "{out}");
        assert!(out.contains("time 11-21 09:30"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_wav_is_refused_with_the_offset_and_what_was_expected() {
        let dir = scratch("broken");
        let path = dir.join("broken.wav");
        std::fs::write(&path, b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00").unwrap();
        let out = hotline().args(["dsp", "dtmf"]).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("broken.wav") && err.contains("offset"), "{err}");
        let odd = dir.join("odd.raw");
        std::fs::write(&odd, [0u8; 21]).unwrap();
        let out = hotline().args(["dsp", "dtmf", "--format", "s16"]).arg(&odd).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "an odd-length raw file is refused too");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn prompt_convert_turns_44k_stereo_into_8k_mono_alaw_bit_exact_with_g711() {
        let dir = scratch("convert");
        let input = dir.join("studio.wav");
        let n = 44_100; // one second
        let mut stereo = Vec::with_capacity(n * 2);
        for i in 0..n {
            let s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 44_100.0).sin()) as i16;
            stereo.extend([s, s]);
        }
        wav::write_wav_file(&input, 44_100, 2, wav::Encoding::Pcm16, &stereo).unwrap();
        let output = dir.join("prompt.wav");
        let out = run_ok(hotline().args(["prompt", "convert"]).arg(&input).arg(&output));
        assert!(out.contains("8000 Hz, mono, Alaw, 1.00 s"), "{out}");

        let bytes = std::fs::read(&output).unwrap();
        let (spec, samples) = wav::read_wav(&bytes).unwrap();
        assert_eq!((spec.sample_rate, spec.channels), (8000, 1));
        assert_eq!(samples.len(), 8000);
        // Bit-exact G.711 of the resampled PCM: the same as our own encoder gives.
        let pcm = hotline_drivers::dsp::resample::resample(
            &hotline_drivers::dsp::resample::to_mono(&stereo, 2),
            44_100,
            8000,
        )
        .unwrap();
        let mut codes = Vec::new();
        g711::encode_alaw(&pcm, &mut codes);
        let data = &bytes[bytes.len() - codes.len()..];
        assert_eq!(data, &codes[..]);
        // A prompt converted is one a card plays.
        assert_eq!(wav::read_prompt(&output).unwrap().len(), 8000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn config_check_passes_the_example_and_lists_every_problem_of_a_broken_file() {
    let out = run_ok(hotline().args(["config", "check"]).arg(repo().join("examples/hotline.toml")));
    assert!(out.contains("no problems found"), "{out}");

    let dir = std::env::temp_dir().join(format!("hotline-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("site.toml");
    std::fs::write(
        &path,
        "[[card]]\nid = 1\n[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n\n\
         [[queue]]\nname = \"sales\"\nstrategy = \"alphabetical\"\n",
    )
    .unwrap();
    let out = hotline().args(["config", "check"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("site.toml:9"), "the bad strategy is on line 9: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_check_reads_the_ivr_recording_store_and_link_tables_too() {
    // The demo's file names its flows relative to the repository's root.
    let out = hotline().args(["config", "check", "examples/demo.toml"]).current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = std::env::temp_dir().join(format!("hotline-cli-check-tables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("site.toml");
    std::fs::write(
        &path,
        "[ivr]\nflows = [\"missing-flow.toml\"]\n\n[recording]\nformat = \"ogg\"\n\n[link]\ntcp = \"nowhere\"\n",
    )
    .unwrap();
    let out = hotline().args(["config", "check"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("site.toml:2:10: cannot read flow file missing-flow.toml"), "{err}");
    assert!(err.contains("site.toml:5:10: unknown format \"ogg\""), "{err}");
    assert!(err.contains("site.toml:8:7: bad address \"nowhere\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_traffic_reports_the_planners_figures_as_json() {
    let out = run_ok(hotline().args([
        "sim",
        "traffic",
        "--agents",
        "5",
        "--calls-per-hour",
        "60",
        "--handle-time",
        "3m",
        "--patience",
        "60s",
        "--duration",
        "8h",
        "--seed",
        "3",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let offered = v["offered"].as_u64().unwrap();
    let answered = v["answered"].as_u64().unwrap();
    let abandoned = v["abandoned"].as_u64().unwrap();
    // 60 calls an hour for 8 hours: about 480 offered.
    assert!((380..=580).contains(&offered), "offered {offered}");
    assert!(answered + abandoned <= offered && answered > offered / 2, "{v}");
    let occupancy = v["occupancy"].as_f64().unwrap();
    assert!(occupancy > 0.3 && occupancy < 0.8, "3 Erlangs on 5 agents: {occupancy}");
}

#[test]
fn cards_probe_on_a_machine_without_cards_says_what_to_install() {
    let empty = std::env::temp_dir().join(format!("hotline-probe-root-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = run_ok(hotline().args(["cards", "probe", "--root"]).arg(&empty));
    assert!(out.contains("DAHDI: module not loaded"), "{out}");
    assert!(out.contains("modprobe dahdi"), "{out}");

    let cfg = empty.join("site.toml");
    std::fs::write(&cfg, "[[card]]\nid = 2\nbackend = \"synway\"\nsdk_path = \"/nonexistent/libshpa3.so\"\n")
        .unwrap();
    let out = run_ok(hotline().args(["cards", "probe", "--root"]).arg(&empty).arg("--config").arg(&cfg));
    assert!(out.contains("card 2: synway SDK: /nonexistent/libshpa3.so: no such file"), "{out}");
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn cards_lists_a_hardware_card_from_its_configuration_without_opening_it() {
    let dir = std::env::temp_dir().join(format!("hotline-cli-hw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("site.toml");
    std::fs::write(
        &path,
        "[[card]]\nid = 1\nbackend = \"dahdi\"\n[[card.span]]\nspan = 1\nsignalling = \"isdn_pri\"\n\
         [card.fxo]\nports = \"1-4\"\n",
    )
    .unwrap();
    let out = run_ok(hotline().arg("cards").arg("--config").arg(&path));
    assert!(out.contains("card 1  backend dahdi"), "{out}");
    assert!(out.contains("span 1  ISDN PRI"), "{out}");
    assert!(out.contains("fxo     ports 1-4 configured"), "{out}");
    assert!(out.contains("hotline cards probe"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
