//! Real DAHDI channels: `/dev/dahdi/channel` opened non-blocking and bound to a channel
//! number with `DAHDI_SPECIFY`, then driven with the ioctls of `hotline_sys::dahdi`.
//! The only file of the backend with `unsafe`: each block is one ioctl on a descriptor
//! this file owns, with a pointer to a local value of the type the request expects.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use hotline_sys::dahdi as sys;

use super::{ChannelDevice, ChannelOpener, ChannelParams, Conf, DahdiEvent, Hook, Law, SpanStatus};

/// Opens channels under a DAHDI device folder (`/dev/dahdi`).
#[derive(Debug, Clone)]
pub struct DahdiDevices {
    dir: PathBuf,
}

impl DahdiDevices {
    /// The system's `/dev/dahdi`.
    pub fn system() -> Self {
        DahdiDevices { dir: PathBuf::from("/dev/dahdi") }
    }
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        DahdiDevices { dir: dir.into() }
    }
}

impl ChannelOpener for DahdiDevices {
    type Channel = DahdiChannel;
    fn open(&mut self, channo: i32) -> io::Result<DahdiChannel> {
        let path = self.channel_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc_o_nonblock())
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let ch = DahdiChannel { file, channo };
        let n: i32 = channo;
        // SAFETY: DAHDI_SPECIFY reads one int from the pointer.
        unsafe { sys::specify(ch.fd(), &n) }.map_err(|e| ioctl_err("DAHDI_SPECIFY", channo, e))?;
        Ok(ch)
    }
}

impl DahdiDevices {
    /// Open DAHDI channel `channo` as an HDLC D-channel: non-blocking, bound with
    /// `DAHDI_SPECIFY`, then `DAHDI_SET_BUFINFO` with `numbufs` buffers of `bufsize`
    /// bytes each way and the immediate policy, so each read returns one whole received
    /// frame (with its two FCS bytes) and each write queues one frame.
    pub fn open_hdlc(&mut self, channo: i32, numbufs: i32, bufsize: i32) -> io::Result<DahdiChannel> {
        let ch = self.open(channo)?;
        let b = sys::dahdi_bufferinfo {
            txbufpolicy: sys::DAHDI_POLICY_IMMEDIATE,
            rxbufpolicy: sys::DAHDI_POLICY_IMMEDIATE,
            numbufs,
            bufsize,
            ..Default::default()
        };
        // SAFETY: DAHDI_SET_BUFINFO reads one struct dahdi_bufferinfo.
        unsafe { sys::set_bufinfo(ch.fd(), &b) }.map_err(|e| ioctl_err("DAHDI_SET_BUFINFO", channo, e))?;
        Ok(ch)
    }

    /// The channel device file this opener uses (`<dir>/channel`).
    pub fn channel_path(&self) -> PathBuf {
        self.dir.join("channel")
    }
}

fn libc_o_nonblock() -> i32 {
    nix::fcntl::OFlag::O_NONBLOCK.bits()
}

fn ioctl_err(what: &str, channo: i32, e: nix::errno::Errno) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what} on DAHDI channel {channo}: {}", e.desc()))
}

/// One open DAHDI channel.
#[derive(Debug)]
pub struct DahdiChannel {
    file: File,
    channo: i32,
}

impl DahdiChannel {
    fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

fn c_text(bytes: &[core::ffi::c_char]) -> String {
    let bytes: Vec<u8> = bytes.iter().map(|&c| c as u8).chain([0]).collect();
    CStr::from_bytes_until_nul(&bytes).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

impl ChannelDevice for DahdiChannel {
    fn params(&mut self) -> io::Result<ChannelParams> {
        let mut p = sys::dahdi_params::default();
        // SAFETY: DAHDI_GET_PARAMS reads and writes one struct dahdi_params.
        unsafe { sys::get_params(self.fd(), &mut p) }
            .map_err(|e| ioctl_err("DAHDI_GET_PARAMS", self.channo, e))?;
        Ok(ChannelParams {
            channo: p.channo,
            spanno: p.spanno,
            chanpos: p.chanpos,
            sigtype: p.sigtype,
            rx_off_hook: p.rxisoffhook != 0,
            law: p.curlaw,
            name: c_text(&p.name),
            alarms: p.chan_alarms,
        })
    }

    fn set_block_size(&mut self, samples: usize) -> io::Result<()> {
        let n = samples as i32;
        // SAFETY: one int.
        unsafe { sys::set_blocksize(self.fd(), &n) }
            .map_err(|e| ioctl_err("DAHDI_SET_BLOCKSIZE", self.channo, e))?;
        Ok(())
    }

    fn set_law(&mut self, law: Law) -> io::Result<()> {
        let n = law.raw();
        // SAFETY: one int.
        unsafe { sys::set_law(self.fd(), &n) }.map_err(|e| ioctl_err("DAHDI_SETLAW", self.channo, e))?;
        Ok(())
    }

    fn set_ring_cadence(&mut self, on: Duration, off: Duration) -> io::Result<()> {
        let mut c = sys::dahdi_ring_cadence::default();
        c.ringcadence[0] = on.as_millis() as i32;
        c.ringcadence[1] = off.as_millis() as i32;
        // SAFETY: one struct dahdi_ring_cadence.
        unsafe { sys::set_cadence(self.fd(), &c) }
            .map_err(|e| ioctl_err("DAHDI_SETCADENCE", self.channo, e))?;
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn get_event(&mut self) -> io::Result<Option<DahdiEvent>> {
        let mut code: i32 = 0;
        // SAFETY: DAHDI_GETEVENT writes one int.
        unsafe { sys::get_event(self.fd(), &mut code) }
            .map_err(|e| ioctl_err("DAHDI_GETEVENT", self.channo, e))?;
        Ok(DahdiEvent::from_raw(code))
    }

    fn hook(&mut self, hook: Hook) -> io::Result<()> {
        let n = hook.raw();
        // SAFETY: one int.
        unsafe { sys::hook(self.fd(), &n) }.map_err(|e| ioctl_err("DAHDI_HOOK", self.channo, e))?;
        Ok(())
    }

    fn set_conf(&mut self, conf: Conf) -> io::Result<Conf> {
        let mut c = sys::dahdi_confinfo { chan: 0, confno: conf.confno, confmode: conf.mode };
        // SAFETY: DAHDI_SETCONF reads and writes one struct dahdi_confinfo.
        unsafe { sys::set_conf(self.fd(), &mut c) }
            .map_err(|e| ioctl_err("DAHDI_SETCONF", self.channo, e))?;
        Ok(Conf { confno: c.confno, mode: c.confmode })
    }

    fn span_status(&mut self, spanno: i32) -> io::Result<SpanStatus> {
        let mut s = sys::dahdi_spaninfo { spanno, ..Default::default() };
        // SAFETY: DAHDI_SPANSTAT reads and writes one struct dahdi_spaninfo.
        unsafe { sys::span_stat(self.fd(), &mut s) }
            .map_err(|e| ioctl_err("DAHDI_SPANSTAT", self.channo, e))?;
        let (name, desc, alarms) = (s.name, s.desc, s.alarms);
        Ok(SpanStatus { spanno, name: c_text(&name), desc: c_text(&desc), alarms })
    }
}
