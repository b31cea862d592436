//! `hotline flow try --audio`: prompts through the sound card when the build and the
//! machine have one, a clear word and printed prompts when not.

use std::path::PathBuf;
use std::process::Command;

fn hotline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-flow-audio-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn flow_try_with_audio_plays_or_says_why_not_and_still_walks_the_flow() {
    let prompts = scratch("prompts");
    let made = hotline()
        .args(["flow", "prompts", "--set"])
        .arg(repo().join("prompts/en.toml"))
        .arg("--out")
        .arg(&prompts)
        .arg("--tones")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    // ALSA's null device as the default output: a build with sound plays into it, so
    // the test never makes noise on a desk machine and needs no sound card.
    let home = scratch("home");
    std::fs::write(home.join(".asoundrc"), "pcm.!default {\n  type null\n}\n").unwrap();
    let out = hotline()
        .env("HOME", &home)
        .args(["flow", "try"])
        .arg(repo().join("examples/flows/demo.toml"))
        .arg("--prompts")
        .arg(&prompts)
        .args(["--audio", "--digits", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    if cfg!(feature = "audio") {
        assert!(stderr.contains("playing prompts on"), "{stderr}");
    } else {
        assert!(stderr.contains("no sound: this hotline was built without sound support"), "{stderr}");
        assert!(stderr.contains("--features audio"), "{stderr}");
    }
    assert!(stdout.contains("[prompt welcome]"), "prompts are printed either way: {stdout}");
    assert!(stdout.contains("path: welcome -> menu -> voicemail"), "{stdout}");
    let _ = std::fs::remove_dir_all(&prompts);
    let _ = std::fs::remove_dir_all(&home);
}
