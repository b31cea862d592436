//! Audio mode: real 8 kHz frames every 20 ms (being written; needs dsp::dtmf and
//! dsp::tones).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::channel::ChannelId;
use crate::config::{CallerIdMode, CardConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::signal::{CallerId, Tone};
use crate::time::Instant;

use super::card::SimCard;

#[derive(Debug)]
pub(crate) struct AudioWorld {}

impl AudioWorld {
    pub(crate) fn new(_card: &CardConfig) -> Result<AudioWorld> {
        Err(Error::new(ErrorKind::Unsupported, "audio mode is not built yet; use media = \"signalling\""))
    }
    pub(crate) fn prompt(&mut self, _path: &Path) -> Result<Arc<Vec<i16>>> {
        Err(Error::new(ErrorKind::Unsupported, "audio mode is not built yet"))
    }
}

#[derive(Debug, Default)]
pub(crate) struct ChanAudio {
    pub ringing: bool,
    pub far_talk_from: Option<Instant>,
    pub far_talk_until: Option<Instant>,
    pub fxo_cid: Option<CallerId>,
}

impl ChanAudio {
    pub(crate) fn reset_call(&mut self) {}
    pub(crate) fn set_exchange_tone(&mut self, _tone: Option<Tone>) {}
    pub(crate) fn send_digits(&mut self, _digits: &str) {}
}

impl SimCard {
    pub(crate) fn tick(&mut self) {}
    pub(crate) fn audio_far_press(&mut self, _ch: ChannelId, _digits: &str, _cont: bool) {}
    pub(crate) fn audio_fxo_send_cid(
        &mut self,
        _ch: ChannelId,
        _cid: &CallerId,
        _mode: CallerIdMode,
        _start: Duration,
    ) -> Duration {
        Duration::ZERO
    }
    pub(crate) fn audio_station_send_cid(
        &mut self,
        _ch: ChannelId,
        _cid: &CallerId,
        _mode: CallerIdMode,
        _start: Duration,
    ) {
    }
}
