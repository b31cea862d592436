//! The computer's sound card for `hotline flow try --audio`: a prompt's 8 kHz samples,
//! resampled to the default output device's rate (the drivers' rubato resampler), played
//! through cpal. Built only with the `audio` feature (ALSA: libasound2-dev); without it,
//! or without a usable device, [`Speaker::open`] says why and the caller prints instead.

/// The default output device, ready to play prompts.
pub struct Speaker {
    #[cfg(feature = "audio")]
    device: cpal::Device,
    #[cfg(feature = "audio")]
    config: cpal::SupportedStreamConfig,
    /// What the device is, for the user.
    pub description: String,
}

#[cfg(not(feature = "audio"))]
impl Speaker {
    /// Always refuses: this build has no sound support.
    pub fn open() -> Result<Speaker, String> {
        Err("this hotline was built without sound support \
             (rebuild with `cargo build -p hotline --features audio`; it needs libasound2-dev)"
            .into())
    }

    /// Unreachable without the feature: `open` never succeeds.
    pub fn play(&self, _samples: &[i16], _stop: &mut dyn FnMut() -> bool) -> Result<bool, String> {
        Err("no sound support in this build".into())
    }
}

#[cfg(feature = "audio")]
impl Speaker {
    /// The default output device and its preferred configuration, or why there is none.
    pub fn open() -> Result<Speaker, String> {
        use cpal::traits::{DeviceTrait, HostTrait};
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .ok_or_else(|| format!("no sound output device found ({} audio host)", host.id().name()))?;
        let config = device
            .default_output_config()
            .map_err(|e| format!("the sound output device cannot be used: {e}"))?;
        let name = device.name().unwrap_or_else(|_| "default".into());
        let description = format!(
            "{name}, {} Hz, {} channel(s), {:?}",
            config.sample_rate().0,
            config.channels(),
            config.sample_format()
        );
        Ok(Speaker { device, config, description })
    }

    /// Play 8 kHz mono samples to the end, or until `stop` returns true (it is asked
    /// every 20 ms); returns whether it was stopped early.
    pub fn play(&self, samples: &[i16], stop: &mut dyn FnMut() -> bool) -> Result<bool, String> {
        use cpal::SampleFormat as F;
        let rate = self.config.sample_rate().0;
        let audio = hotline_drivers::dsp::resample::resample(samples, hotline_drivers::SAMPLE_RATE, rate)
            .map_err(|e| e.to_string())?;
        let audio: Vec<f32> = audio.iter().map(|&s| f32::from(s) / 32768.0).collect();
        match self.config.sample_format() {
            F::F32 => self.play_as::<f32>(audio, stop),
            F::I16 => self.play_as::<i16>(audio, stop),
            F::U16 => self.play_as::<u16>(audio, stop),
            F::I32 => self.play_as::<i32>(audio, stop),
            other => {
                Err(format!("the sound output device wants {other:?} samples, which hotline does not write"))
            }
        }
    }

    fn play_as<T>(&self, audio: Vec<f32>, stop: &mut dyn FnMut() -> bool) -> Result<bool, String>
    where
        T: cpal::SizedSample + cpal::FromSample<f32>,
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        use cpal::traits::{DeviceTrait, StreamTrait};

        let channels = usize::from(self.config.channels());
        let finished = Arc::new(AtomicBool::new(false));
        let failed: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let (done, fail) = (finished.clone(), failed.clone());
        let mut pos = 0usize;
        let stream = self
            .device
            .build_output_stream(
                &self.config.config(),
                move |out: &mut [T], _| {
                    // Each device frame gets the same sample on every channel; silence
                    // after the end until the main thread stops the stream.
                    for frame in out.chunks_mut(channels) {
                        let s = audio.get(pos).copied().unwrap_or(0.0);
                        pos += 1;
                        frame.fill(T::from_sample(s));
                    }
                    if pos >= audio.len() {
                        done.store(true, Ordering::Release);
                    }
                },
                move |e| {
                    if let Ok(mut f) = fail.lock() {
                        f.get_or_insert(e.to_string());
                    }
                },
                None,
            )
            .map_err(|e| format!("cannot open a sound output stream: {e}"))?;
        stream.play().map_err(|e| format!("cannot start the sound output stream: {e}"))?;
        loop {
            if finished.load(Ordering::Acquire) {
                // Let the device's buffer drain before the stream is dropped.
                std::thread::sleep(std::time::Duration::from_millis(100));
                return Ok(false);
            }
            if let Some(e) = failed.lock().ok().and_then(|mut f| f.take()) {
                return Err(format!("sound output failed: {e}"));
            }
            if stop() {
                return Ok(true);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
