//! WAV (RIFF/WAVE) files: reading recordings and prompts in whatever encoding they come,
//! writing them in the encodings cards play (16-bit PCM, A-law, mu-law).
//!
//! The reader takes PCM (8-bit unsigned, 16, 24, 32-bit), IEEE float (32, 64-bit),
//! A-law, mu-law and `WAVE_FORMAT_EXTENSIBLE` wrapping any of them, at any rate and
//! channel count, and converts every sample to 16-bit linear. It skips chunks it does not
//! need (`LIST`, `fact`, `JUNK`...). A file left behind by a crashed or streaming writer
//! (data size 0 or 0xFFFFFFFF, or running past the end) yields the audio that is there.
//! Everything else that is wrong gets a [`WavError`] naming the byte offset and what
//! was expected there.
//!
//! Prompts for cards must be 8 kHz mono: [`read_prompt`] checks that and points at
//! `hotline prompt convert` otherwise.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::dsp::g711;
use crate::{Error, ErrorKind};

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_ALAW: u16 = 0x0006;
const WAVE_FORMAT_MULAW: u16 = 0x0007;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The tail shared by every `KSDATAFORMAT_SUBTYPE_*` GUID derived from a format tag
/// (`xxxxxxxx-0000-0010-8000-00AA00389B71`); the tag is in the first two bytes.
const SUBTYPE_GUID_TAIL: [u8; 14] =
    [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

/// The lowest sample rate the reader accepts: below it a header is corrupt (and
/// resampling 1 Hz audio to 8 kHz would multiply it 8000 times).
pub const MIN_SAMPLE_RATE: u32 = 1000;
/// The highest sample rate the reader accepts (the highest studio rate, 384 kHz): above
/// it a header is corrupt, and the resampler's filter would take gigabytes.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// The encodings the writer produces: the ones cards play.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// 16-bit linear PCM.
    Pcm16,
    /// G.711 A-law, one byte per sample.
    Alaw,
    /// G.711 mu-law, one byte per sample.
    Ulaw,
}

impl Encoding {
    /// The name `--encoding` takes on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Pcm16 => "pcm16",
            Encoding::Alaw => "alaw",
            Encoding::Ulaw => "ulaw",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Encoding {
    type Err = Error;

    /// `pcm16`, `alaw` or `ulaw` (also `a-law`, `mulaw`, `mu-law`), in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "pcm16" | "s16" => Ok(Encoding::Pcm16),
            "alaw" | "a-law" => Ok(Encoding::Alaw),
            "ulaw" | "mulaw" | "mu-law" | "u-law" => Ok(Encoding::Ulaw),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!("unknown encoding '{s}', expected pcm16, alaw or ulaw"),
            )),
        }
    }
}

/// How the samples were stored in the file that was read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleFormat {
    /// 8-bit unsigned PCM (128 is silence).
    Pcm8,
    /// 16-bit signed PCM.
    Pcm16,
    /// 24-bit signed PCM.
    Pcm24,
    /// 32-bit signed PCM.
    Pcm32,
    /// 32-bit IEEE float, full scale ±1.0.
    Float32,
    /// 64-bit IEEE float, full scale ±1.0.
    Float64,
    /// G.711 A-law.
    Alaw,
    /// G.711 mu-law.
    Ulaw,
}

impl SampleFormat {
    /// Bytes one sample of one channel takes in the file.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            SampleFormat::Pcm8 | SampleFormat::Alaw | SampleFormat::Ulaw => 1,
            SampleFormat::Pcm16 => 2,
            SampleFormat::Pcm24 => 3,
            SampleFormat::Pcm32 | SampleFormat::Float32 => 4,
            SampleFormat::Float64 => 8,
        }
    }

    /// Converts one stored sample (exactly [`bytes_per_sample`](Self::bytes_per_sample)
    /// bytes) to 16-bit linear. Wider formats keep their top 16 bits.
    fn to_linear(self, b: &[u8]) -> i16 {
        match self {
            SampleFormat::Pcm8 => (i16::from(b[0]) - 128) << 8,
            SampleFormat::Pcm16 => i16::from_le_bytes([b[0], b[1]]),
            SampleFormat::Pcm24 => i16::from_le_bytes([b[1], b[2]]),
            SampleFormat::Pcm32 => i16::from_le_bytes([b[2], b[3]]),
            SampleFormat::Float32 => float_to_linear(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            SampleFormat::Float64 => {
                float_to_linear(f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            }
            SampleFormat::Alaw => g711::alaw_to_linear(b[0]),
            SampleFormat::Ulaw => g711::ulaw_to_linear(b[0]),
        }
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SampleFormat::Pcm8 => "8-bit PCM",
            SampleFormat::Pcm16 => "16-bit PCM",
            SampleFormat::Pcm24 => "24-bit PCM",
            SampleFormat::Pcm32 => "32-bit PCM",
            SampleFormat::Float32 => "32-bit float",
            SampleFormat::Float64 => "64-bit float",
            SampleFormat::Alaw => "A-law",
            SampleFormat::Ulaw => "mu-law",
        })
    }
}

/// Full scale ±1.0 maps to ±32768; beyond it clips, NaN is silence.
fn float_to_linear(x: f64) -> i16 {
    if x.is_nan() {
        0
    } else {
        (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
    }
}

/// What a WAV file holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct WavSpec {
    pub sample_rate: u32,
    pub channels: u16,
    /// How the file stored its samples (they are returned as 16-bit linear regardless).
    pub format: SampleFormat,
}

/// A WAV file that cannot be read: where in the file, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavError {
    path: Option<PathBuf>,
    offset: Option<u64>,
    message: String,
}

impl WavError {
    /// An error about the bytes at `offset`; the message reads "offset N: ...".
    fn at(offset: usize, what: impl fmt::Display) -> Self {
        WavError { path: None, offset: Some(offset as u64), message: format!("offset {offset}: {what}") }
    }

    /// The byte offset in the file the error is about, if it is about the content.
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    /// The file, when it was read by path.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn in_file(mut self, path: &Path) -> Self {
        self.path = Some(path.to_path_buf());
        self
    }
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for WavError {}

impl From<WavError> for Error {
    fn from(e: WavError) -> Self {
        Error::new(ErrorKind::Media, e.to_string())
    }
}

/// A four-character code as people read it: printable ASCII quoted, anything else in hex.
fn fourcc(id: &[u8]) -> String {
    if id.iter().all(|b| (0x20..0x7F).contains(b)) {
        format!("'{}'", String::from_utf8_lossy(id))
    } else {
        format!("0x{}", id.iter().map(|b| format!("{b:02X}")).collect::<String>())
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses a `fmt ` chunk whose body starts at `at` and is `len` bytes.
fn parse_fmt(bytes: &[u8], at: usize, len: usize) -> Result<(u32, u16, SampleFormat), WavError> {
    if len < 16 {
        return Err(WavError::at(at - 4, format!("'fmt ' chunk of {len} bytes, expected at least 16")));
    }
    let f = &bytes[at..at + len];
    let mut tag = u16_at(f, 0);
    let channels = u16_at(f, 2);
    let sample_rate = u32_at(f, 4);
    let block_align = u16_at(f, 12);
    let bits = u16_at(f, 14);
    if tag == WAVE_FORMAT_EXTENSIBLE {
        if len < 40 {
            return Err(WavError::at(
                at - 4,
                format!("'fmt ' chunk of {len} bytes, expected 40 for WAVE_FORMAT_EXTENSIBLE"),
            ));
        }
        let cb_size = u16_at(f, 16);
        if cb_size < 22 {
            return Err(WavError::at(
                at + 16,
                format!("extension size {cb_size}, expected at least 22 for WAVE_FORMAT_EXTENSIBLE"),
            ));
        }
        let guid = &f[24..40];
        if guid[2..] != SUBTYPE_GUID_TAIL {
            return Err(WavError::at(
                at + 24,
                "unknown sub-format GUID, expected PCM, IEEE float, A-law or mu-law",
            ));
        }
        tag = u16_at(guid, 0);
    }
    if channels == 0 {
        return Err(WavError::at(at + 2, "channel count 0, expected at least 1"));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(WavError::at(
            at + 4,
            format!("sample rate {sample_rate} Hz, expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"),
        ));
    }
    let format = match (tag, bits) {
        (WAVE_FORMAT_PCM, 8) => SampleFormat::Pcm8,
        (WAVE_FORMAT_PCM, 16) => SampleFormat::Pcm16,
        (WAVE_FORMAT_PCM, 24) => SampleFormat::Pcm24,
        (WAVE_FORMAT_PCM, 32) => SampleFormat::Pcm32,
        (WAVE_FORMAT_IEEE_FLOAT, 32) => SampleFormat::Float32,
        (WAVE_FORMAT_IEEE_FLOAT, 64) => SampleFormat::Float64,
        (WAVE_FORMAT_ALAW, 8) => SampleFormat::Alaw,
        (WAVE_FORMAT_MULAW, 8) => SampleFormat::Ulaw,
        (WAVE_FORMAT_PCM | WAVE_FORMAT_IEEE_FLOAT | WAVE_FORMAT_ALAW | WAVE_FORMAT_MULAW, _) => {
            let expected = match tag {
                WAVE_FORMAT_PCM => "8, 16, 24 or 32",
                WAVE_FORMAT_IEEE_FLOAT => "32 or 64",
                _ => "8",
            };
            return Err(WavError::at(
                at + 14,
                format!("{bits} bits per sample, expected {expected} for format tag {tag:#06x}"),
            ));
        }
        _ => {
            return Err(WavError::at(
                at,
                format!(
                    "unsupported format tag {tag:#06x}, expected 0x0001 (PCM), 0x0003 (float), \
                     0x0006 (A-law), 0x0007 (mu-law) or 0xfffe (extensible)"
                ),
            ))
        }
    };
    let expected_align = usize::from(channels) * format.bytes_per_sample();
    if usize::from(block_align) != expected_align {
        return Err(WavError::at(
            at + 12,
            format!(
                "block align {block_align}, expected {expected_align} for {channels} channel(s) of {format}"
            ),
        ));
    }
    Ok((sample_rate, channels, format))
}

/// Reads a WAV file's audio as interleaved 16-bit linear samples.
pub fn read_wav(bytes: &[u8]) -> Result<(WavSpec, Vec<i16>), WavError> {
    if bytes.len() < 4 || &bytes[..4] != b"RIFF" {
        let found = if bytes.len() < 4 { "end of file".to_string() } else { fourcc(&bytes[..4]) };
        let note = match bytes.get(..4) {
            Some(b"RIFX") => " (big-endian RIFX is not supported)",
            Some(b"RF64") => " (64-bit RF64 is not supported)",
            _ => "",
        };
        return Err(WavError {
            path: None,
            offset: Some(0),
            message: format!("not a WAV file: expected 'RIFF' at offset 0, found {found}{note}"),
        });
    }
    if bytes.len() < 12 {
        return Err(WavError::at(
            bytes.len(),
            "file ends inside the RIFF header, expected 'WAVE' at offset 8",
        ));
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(WavError::at(8, format!("expected form type 'WAVE', found {}", fourcc(&bytes[8..12]))));
    }
    let riff_size = u32_at(bytes, 4);
    // Where the RIFF header says the file ends, if it is a finished writer's size.
    let riff_end = (riff_size != 0 && riff_size != u32::MAX)
        .then(|| riff_size as usize + 8)
        .filter(|&end| end <= bytes.len());

    let mut fmt: Option<(u32, u16, SampleFormat)> = None;
    let mut pos = 12;
    loop {
        if pos >= bytes.len() {
            let what = if fmt.is_none() { "'fmt '" } else { "'data'" };
            return Err(WavError::at(pos, format!("expected a {what} chunk, found end of file")));
        }
        if bytes.len() - pos < 8 {
            return Err(WavError::at(
                pos,
                format!("file ends inside a chunk header ({} of 8 bytes)", bytes.len() - pos),
            ));
        }
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4);
        let body = pos + 8;
        let remaining = bytes.len() - body;
        if !id.iter().all(|b| (0x20..0x7F).contains(b)) {
            return Err(WavError::at(pos, format!("expected a chunk id, found {}", fourcc(id))));
        }
        match id {
            b"data" => {
                let Some((sample_rate, channels, format)) = fmt else {
                    return Err(WavError::at(pos, "expected chunk id 'fmt ', found 'data'"));
                };
                // An unfinished file's data size is a placeholder (0 or all ones) or too
                // big: take what is there. A size of 0 is believed when the RIFF size
                // shows a finished file.
                let believed_empty = size == 0 && riff_end == Some(bytes.len());
                let len = if believed_empty {
                    0
                } else if size == 0 || size == u32::MAX || size as usize > remaining {
                    remaining
                } else {
                    size as usize
                };
                let frame = usize::from(channels) * format.bytes_per_sample();
                let data = &bytes[body..body + len - len % frame];
                let bps = format.bytes_per_sample();
                let samples = data.chunks_exact(bps).map(|b| format.to_linear(b)).collect();
                return Ok((WavSpec { sample_rate, channels, format }, samples));
            }
            _ if size as usize > remaining => {
                return Err(WavError::at(
                    pos + 4,
                    format!(
                        "chunk {} claims {size} bytes, but only {remaining} remain in the file",
                        fourcc(id)
                    ),
                ));
            }
            b"fmt " => {
                if fmt.is_some() {
                    return Err(WavError::at(pos, "second 'fmt ' chunk, expected 'data'"));
                }
                fmt = Some(parse_fmt(bytes, body, size as usize)?);
            }
            // LIST, fact, JUNK, cue, bext...: nothing a card needs.
            _ => {}
        }
        // Chunks are word-aligned: an odd-sized body is followed by one pad byte.
        pos = body + size as usize + (size as usize & 1);
    }
}

/// Reads a WAV file from disk; errors name the file.
pub fn read_wav_file(path: impl AsRef<Path>) -> Result<(WavSpec, Vec<i16>), WavError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| WavError {
        path: Some(path.to_path_buf()),
        offset: None,
        message: e.to_string(),
    })?;
    read_wav(&bytes).map_err(|e| e.in_file(path))
}

/// Reads a prompt for a card: 8 kHz mono 16-bit PCM, A-law or mu-law, nothing else.
pub fn read_prompt(path: &Path) -> Result<Vec<i16>, Error> {
    let (spec, samples) = read_wav_file(path)?;
    let playable = matches!(spec.format, SampleFormat::Pcm16 | SampleFormat::Alaw | SampleFormat::Ulaw);
    if spec.sample_rate != crate::SAMPLE_RATE || spec.channels != 1 || !playable {
        return Err(Error::new(
            ErrorKind::Media,
            format!(
                "{}: prompt is {} Hz, {} channel(s), {}; cards play 8000 Hz mono 16-bit PCM, A-law \
                 or mu-law: run `hotline prompt convert` on it",
                path.display(),
                spec.sample_rate,
                spec.channels,
                spec.format
            ),
        ));
    }
    Ok(samples)
}

/// Writes interleaved 16-bit linear samples as a WAV file in `encoding`.
///
/// A-law and mu-law files carry the `fact` chunk that non-PCM formats need. Fails with
/// [`io::ErrorKind::InvalidInput`] for zero channels, a sample count that is not a whole
/// number of frames, or audio too long for a WAV file (4 GiB).
pub fn write_wav(
    mut w: impl Write,
    sample_rate: u32,
    channels: u16,
    encoding: Encoding,
    interleaved: &[i16],
) -> io::Result<()> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
    if channels == 0 {
        return Err(invalid("WAV with 0 channels".into()));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(invalid(format!(
            "WAV with sample rate {sample_rate} Hz: expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"
        )));
    }
    if interleaved.len() % usize::from(channels) != 0 {
        return Err(invalid(format!(
            "{} samples are not a whole number of {channels}-channel frames",
            interleaved.len()
        )));
    }
    let frames = interleaved.len() / usize::from(channels);
    let (tag, bytes_per_sample) = match encoding {
        Encoding::Pcm16 => (WAVE_FORMAT_PCM, 2u16),
        Encoding::Alaw => (WAVE_FORMAT_ALAW, 1),
        Encoding::Ulaw => (WAVE_FORMAT_MULAW, 1),
    };
    let block_align = u32::from(channels) * u32::from(bytes_per_sample);
    if block_align > u32::from(u16::MAX) {
        return Err(invalid(format!("{channels} channels do not fit a WAV frame")));
    }
    let data_len = interleaved.len() * usize::from(bytes_per_sample);
    let pcm = encoding == Encoding::Pcm16;
    // fmt (16 or 18 bytes), fact for companded formats, data and its pad byte.
    let header_len = 12 + 8 + if pcm { 16 } else { 18 + 12 } + 8;
    let total = header_len + data_len + (data_len & 1);
    let riff_size = u32::try_from(total - 8)
        .map_err(|_| invalid(format!("{data_len} bytes of audio do not fit a WAV file")))?;
    let frames = u32::try_from(frames).map_err(|_| invalid("too many frames".into()))?;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_size.to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&(if pcm { 16u32 } else { 18 }).to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    let byte_rate = u32::try_from(u64::from(sample_rate) * u64::from(block_align)).unwrap_or(u32::MAX);
    out.extend_from_slice(&byte_rate.to_le_bytes());
    out.extend_from_slice(&(block_align as u16).to_le_bytes());
    out.extend_from_slice(&(bytes_per_sample * 8).to_le_bytes());
    if !pcm {
        out.extend_from_slice(&0u16.to_le_bytes()); // cbSize: no extension
        out.extend_from_slice(b"fact");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&frames.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    match encoding {
        Encoding::Pcm16 => interleaved.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes())),
        Encoding::Alaw => g711::encode_alaw(interleaved, &mut out),
        Encoding::Ulaw => g711::encode_ulaw(interleaved, &mut out),
    }
    if data_len & 1 == 1 {
        out.push(0);
    }
    w.write_all(&out)
}

/// Writes a WAV file to disk (see [`write_wav`]); errors name the file.
pub fn write_wav_file(
    path: impl AsRef<Path>,
    sample_rate: u32,
    channels: u16,
    encoding: Encoding,
    interleaved: &[i16],
) -> io::Result<()> {
    let path = path.as_ref();
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut buf = Vec::new();
    write_wav(&mut buf, sample_rate, channels, encoding, interleaved).map_err(named)?;
    std::fs::write(path, buf).map_err(named)
}
