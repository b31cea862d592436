//! G.711 against the ITU-T G.191 conformance vectors: every word of all six result files.
//!
//! The vectors are found through `HOTLINE_TEST_VECTORS` (a directory holding `g711/`) or
//! by walking up from the crate looking for `shared/test-vectors/g711`. Missing vectors
//! fail the test, saying where it looked.

use std::path::{Path, PathBuf};

use hotline_drivers::dsp::g711;

fn vectors_dir() -> PathBuf {
    let mut looked = Vec::new();
    if let Some(dir) = std::env::var_os("HOTLINE_TEST_VECTORS") {
        let candidate = Path::new(&dir).join("g711");
        if candidate.join("sweep.src").is_file() {
            return candidate;
        }
        looked.push(candidate);
    }
    let mut dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let candidate = d.join("shared/test-vectors/g711");
        if candidate.join("sweep.src").is_file() {
            return candidate;
        }
        looked.push(candidate);
        dir = d.parent();
    }
    panic!(
        "G.191 vectors not found (set HOTLINE_TEST_VECTORS to the directory holding g711/); looked in:\n{}",
        looked.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n")
    );
}

/// A vector file as its little-endian 16-bit words.
fn words(name: &str) -> Vec<i16> {
    let path = vectors_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len(), 2 * 65_536, "{}: expected 65,536 words", path.display());
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

fn codes(name: &str) -> Vec<u8> {
    words(name)
        .into_iter()
        .map(|w| u8::try_from(w).unwrap_or_else(|_| panic!("{name}: word {w} is not a code")))
        .collect()
}

/// Compares word by word and reports the first few mismatches with their sample index.
fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let bad: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .map(|(i, (g, w))| format!("word {i}: got {g:?}, want {w:?}"))
        .collect();
    assert!(bad.is_empty(), "{what}: {} words differ, first: {:?}", bad.len(), &bad[..bad.len().min(8)]);
}

#[test]
fn alaw_encoder_matches_every_code_of_the_sweep() {
    let src = words("sweep.src");
    let mut out = Vec::new();
    g711::encode_alaw(&src, &mut out);
    assert_same("sweep-r.a", &out, &codes("sweep-r.a"));
    let one_by_one: Vec<u8> = src.iter().map(|&s| g711::linear_to_alaw(s)).collect();
    assert_same("sweep-r.a (per sample)", &one_by_one, &codes("sweep-r.a"));
}

#[test]
fn alaw_decoder_matches_every_sample_of_the_decoded_sweep() {
    let mut out = Vec::new();
    g711::decode_alaw(&codes("sweep-r.a"), &mut out);
    assert_same("sweep-r.a-a", &out, &words("sweep-r.a-a"));
}

#[test]
fn alaw_trunk_round_trip_matches_the_reference() {
    let mut pcm = words("sweep.src");
    g711::alaw_round_trip(&mut pcm);
    assert_same("sweep-r.rea", &pcm, &words("sweep-r.rea"));
}

#[test]
fn ulaw_encoder_matches_every_code_of_the_sweep() {
    let src = words("sweep.src");
    let mut out = Vec::new();
    g711::encode_ulaw(&src, &mut out);
    assert_same("sweep-r.u", &out, &codes("sweep-r.u"));
    let one_by_one: Vec<u8> = src.iter().map(|&s| g711::linear_to_ulaw(s)).collect();
    assert_same("sweep-r.u (per sample)", &one_by_one, &codes("sweep-r.u"));
}

#[test]
fn ulaw_decoder_matches_every_sample_of_the_decoded_sweep() {
    let codes = codes("sweep-r.u");
    let mut out = Vec::new();
    g711::decode_ulaw(&codes, &mut out);
    assert_same("sweep-r.u-u", &out, &words("sweep-r.u-u"));
    let one_by_one: Vec<i16> = codes.iter().map(|&c| g711::ulaw_to_linear(c)).collect();
    assert_same("sweep-r.u-u (per code)", &one_by_one, &words("sweep-r.u-u"));
}

#[test]
fn ulaw_trunk_round_trip_matches_the_reference() {
    let mut pcm = words("sweep.src");
    g711::ulaw_round_trip(&mut pcm);
    assert_same("sweep-r.reu", &pcm, &words("sweep-r.reu"));
}

#[test]
fn slice_helpers_append_rather_than_replace() {
    let mut codes = vec![0xAA];
    g711::encode_alaw(&[0, 1000], &mut codes);
    assert_eq!(codes, [0xAA, g711::linear_to_alaw(0), g711::linear_to_alaw(1000)]);
    let mut pcm = vec![7];
    g711::decode_ulaw(&[0xFF], &mut pcm);
    assert_eq!(pcm, [7, 0]);
}
