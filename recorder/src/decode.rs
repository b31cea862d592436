//! Our recordings back to 8 kHz linear PCM, for `hotline recordings play` and export.
//!
//! WAV in any encoding the drivers' reader takes (our PCM16, A-law and mu-law among
//! them). MP3 is not decoded: the encoder crate (mp3lame-encoder) offers no decoder, and
//! LAME's own decoder is reachable only through raw FFI, which this crate does not allow;
//! [`decode_file`] says so.
//!
//! [`play`] (feature `audio`) sends a decoded recording to the default sound card
//! through cpal.

use std::fmt;
use std::path::{Path, PathBuf};

use hotline_drivers::dsp::wav::read_wav_file;
use hotline_drivers::SAMPLE_RATE;

/// A decoded recording: interleaved 16-bit samples at 8 kHz.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// 1 (mono) or 2 (caller left, agent right).
    pub channels: u16,
    pub samples: Vec<i16>,
}

impl Decoded {
    /// The length of the audio.
    pub fn duration(&self) -> std::time::Duration {
        let frames = self.samples.len() as u64 / u64::from(self.channels.max(1));
        std::time::Duration::from_micros(frames * 1_000_000 / u64::from(SAMPLE_RATE))
    }
}

/// Why a recording cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file cannot be read or is no WAV we take; the message says where (byte
    /// offset) and what was expected.
    Wav(String),
    /// A WAV at another rate than 8 kHz: not one of ours.
    Rate { path: PathBuf, rate: u32 },
    /// An MP3: decoding is not supported (see the module docs).
    Mp3Unsupported(PathBuf),
    /// Playback failed (no sound card, feature `audio` off).
    Playback(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Wav(m) | DecodeError::Playback(m) => f.write_str(m),
            DecodeError::Rate { path, rate } => {
                write!(f, "{}: {rate} Hz, expected an 8000 Hz recording", path.display())
            }
            DecodeError::Mp3Unsupported(p) => write!(
                f,
                "{}: MP3 recordings cannot be decoded here (the encoder crate has no decoder); play it \
                 with any MP3 player",
                p.display()
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a recording by its content (not its name).
pub fn decode_file(path: &Path) -> Result<Decoded, DecodeError> {
    let mut head = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open(path) {
        use std::io::Read;
        let _ = f.read(&mut head);
    }
    if head.starts_with(b"ID3") || crate::repair::mp3_header(&head).is_some() {
        return Err(DecodeError::Mp3Unsupported(path.to_path_buf()));
    }
    let (spec, samples) = read_wav_file(path).map_err(|e| DecodeError::Wav(e.to_string()))?;
    if spec.sample_rate != SAMPLE_RATE {
        return Err(DecodeError::Rate { path: path.to_path_buf(), rate: spec.sample_rate });
    }
    Ok(Decoded { channels: spec.channels, samples })
}

/// Plays a decoded recording on the default output device and returns when it is done.
#[cfg(feature = "audio")]
pub fn play(audio: &Decoded) -> Result<(), DecodeError> {
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    use std::sync::mpsc;

    let err = |what: &str, e: &dyn fmt::Display| DecodeError::Playback(format!("sound card: {what}: {e}"));
    let device = cpal::default_host()
        .default_output_device()
        .ok_or_else(|| DecodeError::Playback("sound card: no default output device".into()))?;
    let supported = device.default_output_config().map_err(|e| err("output config", &e))?;
    let config: cpal::StreamConfig = supported.config();
    let out_channels = usize::from(config.channels);
    let in_channels = usize::from(audio.channels.max(1));
    // 8 kHz to the device's rate by linear interpolation: plenty for telephone audio.
    let step = f64::from(SAMPLE_RATE) / f64::from(config.sample_rate.0);
    let frames = audio.samples.len() / in_channels;
    let samples = audio.samples.clone();
    let mut pos = 0.0f64;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut done = Some(done_tx);
    let stream = device
        .build_output_stream(
            &config,
            move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                for out in data.chunks_mut(out_channels) {
                    let i = pos as usize;
                    if i + 1 >= frames {
                        out.fill(0.0);
                        if let Some(tx) = done.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    let frac = (pos - i as f64) as f32;
                    for (c, o) in out.iter_mut().enumerate() {
                        let ch = c.min(in_channels - 1);
                        let a = f32::from(samples[i * in_channels + ch]);
                        let b = f32::from(samples[(i + 1) * in_channels + ch]);
                        *o = (a + (b - a) * frac) / 32768.0;
                    }
                    pos += step;
                }
            },
            |e| eprintln!("sound card: {e}"),
            None,
        )
        .map_err(|e| err("open stream", &e))?;
    stream.play().map_err(|e| err("start", &e))?;
    let _ = done_rx.recv_timeout(audio.duration() + std::time::Duration::from_secs(2));
    Ok(())
}

/// Without the `audio` feature there is no playback; the CLI says how to get it.
#[cfg(not(feature = "audio"))]
pub fn play(_audio: &Decoded) -> Result<(), DecodeError> {
    Err(DecodeError::Playback(
        "playback is not built in: rebuild with the `audio` feature (needs ALSA: libasound2-dev)".into(),
    ))
}
