//! WAV files: round trips in every encoding cards use, the formats recordings come in,
//! files from unfinished writers, and a table of broken files with the message each gets.

use hotline_drivers::dsp::g711;
use hotline_drivers::dsp::wav::{self, Encoding, SampleFormat, WavSpec};
use hotline_drivers::{Error, ErrorKind};

const PCM: u16 = 1;
const FLOAT: u16 = 3;
const ALAW: u16 = 6;
const MULAW: u16 = 7;
const EXTENSIBLE: u16 = 0xFFFE;

/// A RIFF/WAVE file from chunks, with correct sizes and pad bytes.
fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    for (id, data) in chunks {
        body.extend_from_slice(*id);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend(body);
    file
}

/// A 16-byte `fmt ` body.
fn fmt(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(&channels.to_le_bytes());
    f.extend_from_slice(&rate.to_le_bytes());
    f.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    f.extend_from_slice(&block_align.to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f
}

/// A 40-byte `WAVE_FORMAT_EXTENSIBLE` body whose sub-format GUID derives from `sub_tag`.
fn fmt_extensible(sub_tag: u16, channels: u16, rate: u32, bits: u16, valid_bits: u16) -> Vec<u8> {
    let mut f = fmt(EXTENSIBLE, channels, rate, channels * bits / 8, bits);
    f.extend_from_slice(&22u16.to_le_bytes());
    f.extend_from_slice(&valid_bits.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes()); // channel mask: unspecified
    f.extend_from_slice(&sub_tag.to_le_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    f
}

fn pcm16_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn sweep(n: usize) -> Vec<i16> {
    (0..n).map(|i| ((i as i64 * 7919) % 65_536 - 32_768) as i16).collect()
}

fn written(rate: u32, channels: u16, encoding: Encoding, samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::new();
    wav::write_wav(&mut out, rate, channels, encoding, samples).unwrap();
    out
}

#[test]
fn pcm16_stereo_comes_back_sample_for_sample() {
    let samples = sweep(2 * 500);
    let file = written(44_100, 2, Encoding::Pcm16, &samples);
    assert_eq!(file.len(), 44 + samples.len() * 2, "canonical 44-byte header");
    let (spec, back) = wav::read_wav(&file).unwrap();
    assert_eq!(spec, WavSpec { sample_rate: 44_100, channels: 2, format: SampleFormat::Pcm16 });
    assert_eq!(back, samples);
}

#[test]
fn alaw_file_holds_g711_codes_and_reads_back_as_a_trunk_would_deliver() {
    let samples = sweep(801); // odd: the data chunk needs a pad byte
    let file = written(8000, 1, Encoding::Alaw, &samples);
    assert_eq!(file.len() % 2, 0, "chunks are word-aligned");
    let mut codes = Vec::new();
    g711::encode_alaw(&samples, &mut codes);
    let data_at = file.windows(4).position(|w| w == b"data").unwrap() + 8;
    assert_eq!(&file[data_at..data_at + codes.len()], &codes[..]);
    assert!(file.windows(4).any(|w| w == b"fact"), "non-PCM formats carry a fact chunk");

    let (spec, back) = wav::read_wav(&file).unwrap();
    assert_eq!(spec, WavSpec { sample_rate: 8000, channels: 1, format: SampleFormat::Alaw });
    let mut expected = samples.clone();
    g711::alaw_round_trip(&mut expected);
    assert_eq!(back, expected);
}

#[test]
fn ulaw_file_reads_back_as_a_trunk_would_deliver() {
    let samples = sweep(640);
    let (spec, back) = wav::read_wav(&written(8000, 2, Encoding::Ulaw, &samples)).unwrap();
    assert_eq!(spec, WavSpec { sample_rate: 8000, channels: 2, format: SampleFormat::Ulaw });
    let mut expected = samples;
    g711::ulaw_round_trip(&mut expected);
    assert_eq!(back, expected);
}

#[test]
fn files_written_to_disk_read_back_and_serve_as_prompts() {
    let dir = std::env::temp_dir().join(format!("hotline-wav-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("welcome.wav");
    let samples = sweep(1600);
    wav::write_wav_file(&path, 8000, 1, Encoding::Pcm16, &samples).unwrap();
    assert_eq!(wav::read_wav_file(&path).unwrap().1, samples);
    assert_eq!(wav::read_prompt(&path).unwrap(), samples);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cd_quality_prompt_is_refused_with_the_command_that_fixes_it() {
    let dir = std::env::temp_dir().join(format!("hotline-wav-prompt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, rate, channels) in [("cd.wav", 44_100, 2), ("stereo8k.wav", 8000, 2), ("wide.wav", 16_000, 1)]
    {
        let path = dir.join(name);
        wav::write_wav_file(&path, rate, channels, Encoding::Pcm16, &sweep(usize::from(channels) * 10))
            .unwrap();
        let err = wav::read_prompt(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Media);
        assert!(err.message().contains("run `hotline prompt convert`"), "{err}");
        assert!(err.message().contains(name), "names the file: {err}");
    }
    // 8 kHz mono but 8-bit PCM: still not something a card plays.
    let path = dir.join("pcm8.wav");
    std::fs::write(&path, riff(&[(b"fmt ", fmt(PCM, 1, 8000, 1, 8)), (b"data", vec![128; 10])])).unwrap();
    assert!(wav::read_prompt(&path).unwrap_err().message().contains("8-bit PCM"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_file_is_a_media_error_naming_it() {
    let err: Error = wav::read_wav_file("/nonexistent/hotline/prompt.wav").unwrap_err().into();
    assert_eq!(err.kind(), ErrorKind::Media);
    assert!(err.message().starts_with("/nonexistent/hotline/prompt.wav: "), "{err}");
}

#[test]
fn list_and_odd_sized_chunks_are_skipped_with_their_padding() {
    let samples = [1000i16, -1000, 2000, -2000, 32767, -32768];
    let file = riff(&[
        (b"JUNK", vec![0xEE; 3]),
        (b"fmt ", fmt(PCM, 2, 8000, 4, 16)),
        (b"LIST", b"INFOISFT\x05\x00\x00\x00sox!\x00".to_vec()), // 17 bytes: padded
        (b"fact", 3u32.to_le_bytes().to_vec()),
        (b"data", pcm16_bytes(&samples)),
        (b"LIST", b"INFOICMT\x01\x00\x00\x00x".to_vec()), // after the audio: ignored
    ]);
    let (spec, back) = wav::read_wav(&file).unwrap();
    assert_eq!((spec.sample_rate, spec.channels), (8000, 2));
    assert_eq!(back, samples);
}

#[test]
fn extensible_files_of_each_sub_format_are_read() {
    // 24-bit PCM in a 24-bit container (20 valid bits): the top 16 bits are kept.
    let data = [0x00, 0x34, 0x12, 0xF0, 0xFF, 0xFF];
    let (spec, back) =
        wav::read_wav(&riff(&[(b"fmt ", fmt_extensible(PCM, 1, 48_000, 24, 20)), (b"data", data.to_vec())]))
            .unwrap();
    assert_eq!(spec, WavSpec { sample_rate: 48_000, channels: 1, format: SampleFormat::Pcm24 });
    assert_eq!(back, [0x1234, -1]);

    let floats: Vec<u8> = [0.5f32, -1.0, 2.0, f32::NAN].iter().flat_map(|x| x.to_le_bytes()).collect();
    let (spec, back) =
        wav::read_wav(&riff(&[(b"fmt ", fmt_extensible(FLOAT, 2, 22_050, 32, 32)), (b"data", floats)]))
            .unwrap();
    assert_eq!(spec.format, SampleFormat::Float32);
    assert_eq!(back, [16_384, -32_768, 32_767, 0], "full scale is ±1.0, beyond clips, NaN is silence");

    let (spec, back) = wav::read_wav(&riff(&[
        (b"fmt ", fmt_extensible(MULAW, 1, 8000, 8, 8)),
        (b"data", vec![0xFF, 0x80, 0x00]),
    ]))
    .unwrap();
    assert_eq!(spec.format, SampleFormat::Ulaw);
    assert_eq!(back, [0, g711::ulaw_to_linear(0x80), g711::ulaw_to_linear(0x00)]);

    let (spec, _) =
        wav::read_wav(&riff(&[(b"fmt ", fmt_extensible(ALAW, 1, 8000, 8, 8)), (b"data", vec![0xD5])]))
            .unwrap();
    assert_eq!(spec.format, SampleFormat::Alaw);
}

#[test]
fn every_pcm_width_and_float64_converts_to_16_bit() {
    // (format tag, bits, data, format read, samples)
    type Case = (u16, u16, Vec<u8>, SampleFormat, Vec<i16>);
    let cases: [Case; 4] = [
        (PCM, 8, vec![0, 128, 255], SampleFormat::Pcm8, vec![-32_768, 0, 32_512]),
        (PCM, 24, vec![0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x80], SampleFormat::Pcm24, vec![32_767, -32_768]),
        (
            PCM,
            32,
            [0x1234_5678i32, -65_536].iter().flat_map(|x| x.to_le_bytes()).collect(),
            SampleFormat::Pcm32,
            vec![0x1234, -1],
        ),
        (
            FLOAT,
            64,
            [-0.25f64].iter().flat_map(|x| x.to_le_bytes()).collect(),
            SampleFormat::Float64,
            vec![-8192],
        ),
    ];
    for (tag, bits, data, format, expected) in cases {
        let file = riff(&[(b"fmt ", fmt(tag, 1, 11_025, bits / 8, bits)), (b"data", data)]);
        let (spec, back) = wav::read_wav(&file).unwrap();
        assert_eq!(spec.format, format);
        assert_eq!(back, expected, "{format}");
    }
}

/// A 16-bit mono file whose data chunk says `data_size` and holds `samples`.
fn unfinished(riff_size: u32, data_size: u32, samples: &[i16]) -> Vec<u8> {
    let mut file = riff(&[(b"fmt ", fmt(PCM, 1, 8000, 2, 16)), (b"data", pcm16_bytes(samples))]);
    file[4..8].copy_from_slice(&riff_size.to_le_bytes());
    file[40..44].copy_from_slice(&data_size.to_le_bytes());
    file
}

#[test]
fn a_crashed_or_streaming_writer_leaves_audio_that_is_still_read() {
    let samples = sweep(100);
    assert_eq!(wav::read_wav(&unfinished(0, 0, &samples)).unwrap().1, samples, "sizes never filled in");
    assert_eq!(wav::read_wav(&unfinished(u32::MAX, u32::MAX, &samples)).unwrap().1, samples, "streaming");
    assert_eq!(wav::read_wav(&unfinished(236, 1_000_000, &samples)).unwrap().1, samples, "cut short");
    // Cut inside a sample: the whole samples before the cut are read.
    let mut file = unfinished(0, 0, &samples);
    file.pop();
    assert_eq!(wav::read_wav(&file).unwrap().1, samples[..99]);
}

#[test]
fn a_finished_file_with_no_audio_reads_as_empty() {
    let file = riff(&[(b"fmt ", fmt(ALAW, 1, 8000, 1, 8)), (b"data", vec![])]);
    let (spec, samples) = wav::read_wav(&file).unwrap();
    assert_eq!(spec.format, SampleFormat::Alaw);
    assert!(samples.is_empty());
    assert!(wav::read_wav(&written(8000, 1, Encoding::Pcm16, &[])).unwrap().1.is_empty());
}

#[test]
fn the_writer_refuses_impossible_files() {
    let mut sink = Vec::new();
    for (rate, channels, samples) in [(8000, 0, vec![]), (0, 1, vec![1]), (8000, 2, vec![1, 2, 3])] {
        let err = wav::write_wav(&mut sink, rate, channels, Encoding::Pcm16, &samples).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
    assert!(sink.is_empty(), "nothing written on error");
}

fn with(mut file: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    file[at..at + bytes.len()].copy_from_slice(bytes);
    file
}

#[test]
fn broken_files_get_an_error_saying_where_and_what() {
    let good = riff(&[(b"fmt ", fmt(PCM, 1, 8000, 2, 16)), (b"data", pcm16_bytes(&[1, 2, 3]))]);
    let header_only = good[..12].to_vec();
    let mut huge_list = good[..12].to_vec();
    huge_list.extend_from_slice(b"LIST\xF0\xFF\xFF\x7F");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty file", vec![], "not a WAV file: expected 'RIFF' at offset 0, found end of file"),
        (
            "an Ogg file",
            b"OggS\0\x02\0\0\0\0\0\0\0\0".to_vec(),
            "not a WAV file: expected 'RIFF' at offset 0, found 'OggS'",
        ),
        ("binary junk", vec![0x00, 0xFF, 0x10, 0x80], "expected 'RIFF' at offset 0, found 0x00FF1080"),
        ("big-endian RIFX", with(good.clone(), 0, b"RIFX"), "big-endian RIFX is not supported"),
        ("RF64", with(good.clone(), 0, b"RF64"), "64-bit RF64 is not supported"),
        ("an AVI file", with(good.clone(), 8, b"AVI "), "offset 8: expected form type 'WAVE', found 'AVI '"),
        ("cut inside the RIFF header", good[..10].to_vec(), "offset 10: file ends inside the RIFF header"),
        ("nothing after the header", header_only, "offset 12: expected a 'fmt ' chunk, found end of file"),
        (
            "cut inside a chunk header",
            good[..17].to_vec(),
            "offset 12: file ends inside a chunk header (5 of 8 bytes)",
        ),
        (
            "data before fmt",
            riff(&[(b"data", vec![0; 4]), (b"fmt ", fmt(PCM, 1, 8000, 2, 16))]),
            "offset 12: expected chunk id 'fmt ', found 'data'",
        ),
        ("no data chunk", good[..36].to_vec(), "offset 36: expected a 'data' chunk, found end of file"),
        (
            "garbage chunk id",
            with(good.clone(), 36, &[0, 0, 0, 0]),
            "offset 36: expected a chunk id, found 0x00000000",
        ),
        (
            "a LIST chunk of 2 GiB",
            huge_list,
            "offset 16: chunk 'LIST' claims 2147483632 bytes, but only 0 remain",
        ),
        (
            "fmt chunk past the end",
            good[..30].to_vec(),
            "offset 16: chunk 'fmt ' claims 16 bytes, but only 10 remain",
        ),
        (
            "short fmt chunk",
            riff(&[(b"fmt ", fmt(PCM, 1, 8000, 2, 16)[..14].to_vec())]),
            "offset 16: 'fmt ' chunk of 14 bytes, expected at least 16",
        ),
        ("zero channels", with(good.clone(), 22, &[0, 0]), "offset 22: channel count 0, expected at least 1"),
        ("zero sample rate", with(good.clone(), 24, &[0, 0, 0, 0]), "offset 24: sample rate 0"),
        ("ADPCM", with(good.clone(), 20, &[2, 0]), "offset 20: unsupported format tag 0x0002"),
        ("MPEG", with(good.clone(), 20, &[0x50, 0]), "unsupported format tag 0x0050"),
        (
            "12-bit PCM",
            with(good.clone(), 34, &[12, 0]),
            "offset 34: 12 bits per sample, expected 8, 16, 24 or 32",
        ),
        (
            "16-bit A-law",
            with(good.clone(), 20, &[6, 0]),
            "offset 34: 16 bits per sample, expected 8 for format tag 0x0006",
        ),
        (
            "wrong block align",
            with(good.clone(), 32, &[3, 0]),
            "offset 32: block align 3, expected 2 for 1 channel(s) of 16-bit PCM",
        ),
        (
            "absurd block align for the channel count",
            with(good.clone(), 22, &[0xFF, 0xFF]),
            "offset 32: block align 2, expected 131070 for 65535 channel(s)",
        ),
        (
            "extensible without its extension",
            riff(&[
                (b"fmt ", with(fmt(PCM, 1, 8000, 2, 16), 0, &EXTENSIBLE.to_le_bytes())),
                (b"data", vec![]),
            ]),
            "offset 16: 'fmt ' chunk of 16 bytes, expected 40 for WAVE_FORMAT_EXTENSIBLE",
        ),
        (
            "extensible with a short extension size",
            riff(&[(b"fmt ", with(fmt_extensible(PCM, 1, 8000, 16, 16), 16, &[10, 0])), (b"data", vec![])]),
            "offset 36: extension size 10, expected at least 22",
        ),
        (
            "extensible with an unknown GUID",
            riff(&[(b"fmt ", with(fmt_extensible(PCM, 1, 8000, 16, 16), 30, &[0x42])), (b"data", vec![])]),
            "offset 44: unknown sub-format GUID",
        ),
        (
            "two fmt chunks",
            riff(&[
                (b"fmt ", fmt(PCM, 1, 8000, 2, 16)),
                (b"fmt ", fmt(PCM, 1, 8000, 2, 16)),
                (b"data", vec![]),
            ]),
            "offset 36: second 'fmt ' chunk",
        ),
    ];
    for (what, file, fragment) in cases {
        let err = wav::read_wav(&file).expect_err(what);
        assert!(err.to_string().contains(fragment), "{what}: got \"{err}\", want \"{fragment}\"");
        assert!(err.offset().is_some(), "{what}: has an offset");
        let err: Error = err.into();
        assert_eq!(err.kind(), ErrorKind::Media, "{what}");
    }
}

#[test]
fn no_truncation_or_corrupted_byte_makes_the_reader_panic() {
    let file = riff(&[
        (b"fmt ", fmt_extensible(FLOAT, 2, 8000, 32, 32)),
        (b"LIST", vec![7; 5]),
        (b"data", vec![0x3F; 24]),
    ]);
    for len in 0..=file.len() {
        let _ = wav::read_wav(&file[..len]);
    }
    for at in 0..file.len() {
        for value in [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF] {
            let _ = wav::read_wav(&with(file.clone(), at, &[value]));
        }
    }
}

#[test]
fn encodings_are_named_as_on_the_command_line() {
    for encoding in [Encoding::Pcm16, Encoding::Alaw, Encoding::Ulaw] {
        assert_eq!(encoding.to_string().parse::<Encoding>().unwrap(), encoding);
    }
    assert_eq!("mu-law".parse::<Encoding>().unwrap(), Encoding::Ulaw);
    assert_eq!("A-law".parse::<Encoding>().unwrap(), Encoding::Alaw);
    let err = "gsm".parse::<Encoding>().unwrap_err();
    assert!(err.message().contains("unknown encoding 'gsm', expected pcm16, alaw or ulaw"), "{err}");
}
