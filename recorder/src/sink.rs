//! The files a recording is written to: WAV (16-bit PCM, A-law, mu-law) and MP3.
//!
//! A sink takes one 20 ms frame at a time (one side for mono, two for stereo), buffers
//! it, and writes at each [`Sink::checkpoint`] (the writer calls it about once a second
//! of audio). A WAV sink then rewrites its header with the sizes so far, so that a file
//! cut by a crash plays up to its last checkpoint even before repair. An MP3 sink writes
//! whole MPEG frames, which are self-delimiting.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::num::NonZeroU32;
use std::os::unix::fs::FileExt;
use std::path::Path;

use hotline_drivers::dsp::g711;
use hotline_drivers::{FRAME_SAMPLES, SAMPLE_RATE};
use mp3lame_encoder::{Bitrate, Builder, DualPcm, Encoder, FlushNoGap, MonoPcm, Quality};

use crate::{Format, WavEncoding};

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_ALAW: u16 = 0x0006;
const WAVE_FORMAT_MULAW: u16 = 0x0007;

/// The header of a WAV file holding `data_bytes` of audio: RIFF, `fmt `, for G.711 a
/// `fact` chunk (required for non-PCM formats), and the `data` chunk header.
pub fn wav_header(enc: WavEncoding, channels: u16, data_bytes: u32) -> Vec<u8> {
    let (tag, bits) = match enc {
        WavEncoding::Pcm16 => (WAVE_FORMAT_PCM, 16u16),
        WavEncoding::Alaw => (WAVE_FORMAT_ALAW, 8),
        WavEncoding::Ulaw => (WAVE_FORMAT_MULAW, 8),
    };
    let block_align = channels * bits / 8;
    let pcm = enc == WavEncoding::Pcm16;
    let mut h = Vec::with_capacity(58);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&[0; 4]); // RIFF size, set below
    h.extend_from_slice(b"WAVE");
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&(if pcm { 16u32 } else { 18 }).to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    h.extend_from_slice(&(SAMPLE_RATE * u32::from(block_align)).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    if !pcm {
        h.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        h.extend_from_slice(b"fact");
        h.extend_from_slice(&4u32.to_le_bytes());
        h.extend_from_slice(&(data_bytes / u32::from(block_align)).to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_bytes.to_le_bytes());
    let riff = (h.len() as u32 - 8).saturating_add(data_bytes);
    h[4..8].copy_from_slice(&riff.to_le_bytes());
    h
}

/// A recording file being written.
#[derive(Debug)]
pub enum Sink {
    Wav(WavSink),
    Mp3(Mp3Sink),
}

impl Sink {
    /// Creates `path` (truncating) and writes what the format needs up front.
    pub fn create(path: &Path, format: Format, channels: u16) -> io::Result<Sink> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let file = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
        Ok(match format {
            Format::Wav(enc) => Sink::Wav(WavSink::new(file, enc, channels)?),
            Format::Mp3 { kbps } => Sink::Mp3(Mp3Sink::new(file, kbps, channels)?),
        })
    }

    /// Adds one 20 ms frame; `right` is `Some` exactly for stereo files.
    pub fn push(&mut self, left: &[i16; FRAME_SAMPLES], right: Option<&[i16; FRAME_SAMPLES]>) {
        match self {
            Sink::Wav(w) => w.push(left, right),
            Sink::Mp3(m) => m.push(left, right),
        }
    }

    /// Writes what is buffered, and for WAV the header sizes, so the file on disk is
    /// playable as it stands.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        match self {
            Sink::Wav(w) => w.checkpoint(),
            Sink::Mp3(m) => m.checkpoint(),
        }
    }

    /// Writes everything, finalizes the file and syncs it to disk. Returns its length.
    pub fn finish(self) -> io::Result<u64> {
        match self {
            Sink::Wav(w) => w.finish(),
            Sink::Mp3(m) => m.finish(),
        }
    }
}

/// A WAV file: header first, then interleaved samples.
#[derive(Debug)]
pub struct WavSink {
    file: File,
    enc: WavEncoding,
    channels: u16,
    header_len: u64,
    /// Audio bytes on disk after the header.
    written: u64,
    buf: Vec<u8>,
}

impl WavSink {
    fn new(file: File, enc: WavEncoding, channels: u16) -> io::Result<WavSink> {
        let header = wav_header(enc, channels, 0);
        file.write_all_at(&header, 0)?;
        Ok(WavSink {
            file,
            enc,
            channels,
            header_len: header.len() as u64,
            written: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    fn push(&mut self, left: &[i16; FRAME_SAMPLES], right: Option<&[i16; FRAME_SAMPLES]>) {
        // One loop per encoding and layout: this runs for every frame of every call.
        let buf = &mut self.buf;
        match (self.enc, right) {
            (WavEncoding::Pcm16, Some(right)) => {
                for (&l, &r) in left.iter().zip(right.iter()) {
                    let (l, r) = (l.to_le_bytes(), r.to_le_bytes());
                    buf.extend_from_slice(&[l[0], l[1], r[0], r[1]]);
                }
            }
            (WavEncoding::Pcm16, None) => {
                for &l in left {
                    buf.extend_from_slice(&l.to_le_bytes());
                }
            }
            (enc, right) => {
                let code = if enc == WavEncoding::Alaw { g711::linear_to_alaw } else { g711::linear_to_ulaw };
                match right {
                    Some(right) => {
                        for (&l, &r) in left.iter().zip(right.iter()) {
                            buf.extend_from_slice(&[code(l), code(r)]);
                        }
                    }
                    None => buf.extend(left.iter().map(|&l| code(l))),
                }
            }
        }
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&self.buf, self.header_len + self.written)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        // A WAV's sizes are 32-bit: past 4 GiB (74 hours of stereo PCM16) the header
        // stays saturated and readers take the data to the end of the file.
        let data = u32::try_from(self.written).unwrap_or(u32::MAX);
        self.file.write_all_at(&wav_header(self.enc, self.channels, data), 0)
    }

    fn finish(mut self) -> io::Result<u64> {
        self.checkpoint()?;
        self.file.sync_data()?;
        Ok(self.header_len + self.written)
    }
}

/// An MP3 file from LAME: constant bit rate, no Xing/LAME tag (the file is written as a
/// stream), so that every frame on disk stands alone.
pub struct Mp3Sink {
    file: File,
    enc: Encoder,
    stereo: bool,
    left: Vec<i16>,
    right: Vec<i16>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Mp3Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp3Sink").field("stereo", &self.stereo).field("buffered", &self.left.len()).finish()
    }
}

fn lame_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("MP3 encoder: {what}: {e}"))
}

impl Mp3Sink {
    fn new(file: File, kbps: u16, channels: u16) -> io::Result<Mp3Sink> {
        let brate = match kbps {
            8 => Bitrate::Kbps8,
            16 => Bitrate::Kbps16,
            24 => Bitrate::Kbps24,
            32 => Bitrate::Kbps32,
            40 => Bitrate::Kbps40,
            48 => Bitrate::Kbps48,
            64 => Bitrate::Kbps64,
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("MP3 at {other} kbit/s: expected one of {:?}", crate::MP3_KBPS),
                ))
            }
        };
        let mut b = Builder::new().ok_or_else(|| lame_err("init", "lame_init failed"))?;
        b.set_num_channels(channels as u8).map_err(|e| lame_err("channels", e))?;
        b.set_sample_rate(SAMPLE_RATE).map_err(|e| lame_err("sample rate", e))?;
        b.set_output_sample_rate(NonZeroU32::new(SAMPLE_RATE)).map_err(|e| lame_err("output rate", e))?;
        b.set_brate(brate).map_err(|e| lame_err("bit rate", e))?;
        let mode =
            if channels == 2 { mp3lame_encoder::Mode::JointStereo } else { mp3lame_encoder::Mode::Mono };
        b.set_mode(mode).map_err(|e| lame_err("mode", e))?;
        // Speech at 8 kHz: the faster psychoacoustics cost nothing audible.
        b.set_quality(Quality::Ok).map_err(|e| lame_err("quality", e))?;
        b.set_to_write_vbr_tag(false).map_err(|e| lame_err("tag", e))?;
        let enc = b.build().map_err(|e| lame_err("build", e))?;
        Ok(Mp3Sink {
            file,
            enc,
            stereo: channels == 2,
            left: Vec::with_capacity(50 * FRAME_SAMPLES),
            right: Vec::with_capacity(50 * FRAME_SAMPLES),
            out: Vec::new(),
        })
    }

    fn push(&mut self, left: &[i16; FRAME_SAMPLES], right: Option<&[i16; FRAME_SAMPLES]>) {
        self.left.extend_from_slice(left);
        if let Some(r) = right {
            self.right.extend_from_slice(r);
        }
    }

    fn encode_buffered(&mut self) -> io::Result<()> {
        if self.left.is_empty() {
            return Ok(());
        }
        // LAME's worst case: 1.25 × samples + 7200 bytes.
        self.out.clear();
        self.out.reserve(self.left.len() * 5 / 4 + 7200);
        let r = if self.stereo {
            self.enc.encode_to_vec(DualPcm { left: &self.left, right: &self.right }, &mut self.out)
        } else {
            self.enc.encode_to_vec(MonoPcm(&self.left), &mut self.out)
        };
        r.map_err(|e| lame_err("encode", e))?;
        self.left.clear();
        self.right.clear();
        self.file.write_all(&self.out)
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        self.encode_buffered()
    }

    fn finish(mut self) -> io::Result<u64> {
        self.encode_buffered()?;
        self.out.clear();
        self.out.reserve(7200);
        self.enc.flush_to_vec::<FlushNoGap>(&mut self.out).map_err(|e| lame_err("flush", e))?;
        self.file.write_all(&self.out)?;
        self.file.sync_data()?;
        self.file.metadata().map(|m| m.len())
    }
}
