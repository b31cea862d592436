//! What DAHDI has on this machine, for `hotline cards probe`: spans, channels, their
//! signalling and alarms, read from `/proc/dahdi/<span>`, `/sys/bus/dahdi_devices` and
//! `/dev/dahdi`. When something is missing the report says what to install or run.
//!
//! `/proc/dahdi/N` looks like this (dahdi-linux writes it):
//!
//! ```text
//! Span 1: TE2/0/1 "T2XXP (PCI) Card 0 Span 1" HDB3/CCS/CRC4 RED
//!
//!            1 TE2/0/1/1 Clear (In use)
//!           16 TE2/0/1/16 HardHDLC (In use)
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::channel::ChannelKind;

/// One span as `/proc/dahdi` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedSpan {
    pub number: u32,
    pub name: String,
    pub description: String,
    /// Framing/coding/signalling of a digital span ("HDB3/CCS/CRC4"); none on analog.
    pub line_config: Option<String>,
    /// Alarm words ("RED", "YELLOW", "BLUE", "UNCONFIGURED"...); empty when all is well.
    pub alarms: Vec<String>,
    pub channels: Vec<ProbedChannel>,
}

/// One channel of a span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedChannel {
    /// DAHDI's channel number, counted over the whole system (what system.conf uses).
    pub channo: u32,
    pub name: String,
    /// Signalling as DAHDI names it ("FXSKS", "FXOKS", "Clear", "HardHDLC"), empty when
    /// the channel is not configured.
    pub signalling: String,
    /// What Hotline makes of it: an FXS-signalled channel is an FXO port, an FXO-signalled
    /// one an FXS port, a clear channel on a digital span an E1 bearer; D-channels and
    /// unconfigured channels are none.
    pub kind: Option<ChannelKind>,
    pub in_use: bool,
}

/// What [`probe`] found, and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    /// `/proc/dahdi` exists: the dahdi kernel module is loaded.
    pub module_loaded: bool,
    /// `/dev/dahdi/channel` exists.
    pub device_present: bool,
    /// Devices (cards) under `/sys/bus/dahdi_devices/devices`.
    pub devices: Vec<String>,
    pub spans: Vec<ProbedSpan>,
    /// Spans or files that could not be read, with the reason.
    pub problems: Vec<String>,
    /// What to install, load or configure, in order; empty when all is ready.
    pub advice: Vec<String>,
}

impl ProbeReport {
    /// Channels Hotline can drive, by kind.
    pub fn channels_of(&self, kind: ChannelKind) -> impl Iterator<Item = &ProbedChannel> {
        self.spans.iter().flat_map(|s| &s.channels).filter(move |c| c.kind == Some(kind))
    }
}

/// Look at DAHDI under `root` (`/` on a real machine; a temporary folder in tests).
pub fn probe(root: &Path) -> ProbeReport {
    let proc_dir = root.join("proc/dahdi");
    let module_loaded = proc_dir.is_dir();
    let device_present = root.join("dev/dahdi/channel").exists();
    let mut devices: Vec<String> = std::fs::read_dir(root.join("sys/bus/dahdi_devices/devices"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    devices.sort();
    let mut spans = Vec::new();
    let mut problems = Vec::new();
    if module_loaded {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&proc_dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        for (n, path) in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse_span(&text) {
                    Ok(span) => spans.push(span),
                    Err(e) => problems.push(format!("{}: {e}", path.display())),
                },
                Err(e) => problems.push(format!("{}: cannot read span {n}: {e}", path.display())),
            }
        }
    }
    let advice = advise(module_loaded, device_present, &devices, &spans);
    ProbeReport { module_loaded, device_present, devices, spans, problems, advice }
}

fn advise(module: bool, device: bool, devices: &[String], spans: &[ProbedSpan]) -> Vec<String> {
    let mut a = Vec::new();
    if !module {
        a.push(
            "DAHDI is not loaded (no /proc/dahdi). Install the kernel drivers and tools \
             (Debian: apt-get install dahdi-dkms dahdi, or build dahdi-linux and dahdi-tools from \
             source), then load them: modprobe dahdi, and your card's driver (wctdm24xxp, \
             wcte13xp, wct4xxp, opvxa1200, xpp...)."
                .to_string(),
        );
        return a;
    }
    if spans.is_empty() {
        a.push(format!(
            "DAHDI is loaded but no card registered a span ({} device(s) on the dahdi bus). \
             Load the card's driver (modprobe wctdm24xxp, wct4xxp, ...); `dahdi_hardware` lists \
             the cards it recognises, `lspci` shows what is plugged in.",
            devices.len()
        ));
    }
    if !device {
        a.push(
            "There is no /dev/dahdi/channel: udev has not made DAHDI's device files (check that \
             the dahdi module is loaded and its udev rules are installed)."
                .to_string(),
        );
    }
    let unconfigured = spans.iter().any(|s| {
        s.channels.iter().any(|c| c.signalling.is_empty()) || s.alarms.iter().any(|w| w == "UNCONFIGURED")
    });
    if unconfigured {
        a.push(
            "Some channels have no signalling: run `dahdi_genconf` to write /etc/dahdi/system.conf \
             (or write it by hand, see docs/hardware.md), then `dahdi_cfg -vv` to apply it."
                .to_string(),
        );
    }
    for s in spans {
        let alarms: Vec<&str> =
            s.alarms.iter().map(String::as_str).filter(|w| *w != "UNCONFIGURED").collect();
        if !alarms.is_empty() {
            a.push(format!(
                "Span {} ({}) is in alarm {}: RED is no signal or framing from the line (cable, \
                 framing/coding in system.conf), YELLOW the far end does not see ours, BLUE the \
                 far end sends all ones (AIS).",
                s.number,
                s.name,
                alarms.join(" ")
            ));
        }
    }
    a
}

const ALARM_WORDS: [&str; 8] =
    ["RED", "YELLOW", "BLUE", "RECOVERING", "LOOPBACK", "NOTOPEN", "UNCONFIGURED", "RAI"];

/// Parse one `/proc/dahdi/N` file.
pub(crate) fn parse_span(text: &str) -> Result<ProbedSpan, String> {
    let mut lines = text.lines().enumerate();
    let (_, head) = lines.find(|(_, l)| !l.trim().is_empty()).ok_or("empty file")?;
    let rest =
        head.trim().strip_prefix("Span ").ok_or("line 1: expected \"Span N: NAME \\\"DESCRIPTION\\\"\"")?;
    let (num, rest) = rest.split_once(':').ok_or("line 1: expected \"Span N:\"")?;
    let number: u32 = num.trim().parse().map_err(|_| format!("line 1: bad span number {num:?}"))?;
    let rest = rest.trim();
    let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (description, tail) = match rest.trim().strip_prefix('"').and_then(|r| r.split_once('"')) {
        Some((d, t)) => (d.to_string(), t),
        None => (String::new(), rest),
    };
    let mut line_config = None;
    let mut alarms = Vec::new();
    for word in tail.split_whitespace() {
        if word.contains('/') {
            line_config = Some(word.to_string());
        } else if ALARM_WORDS.contains(&word) {
            alarms.push(word.to_string());
        }
    }
    let digital = line_config.is_some();
    let mut channels = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() || !line.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let mut words = line.split_whitespace();
        let channo: u32 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("line {}: expected a channel number", i + 1))?;
        let name =
            words.next().ok_or_else(|| format!("line {}: expected a channel name", i + 1))?.to_string();
        let rest: Vec<&str> = words.collect();
        let in_use = line.contains("(In use)");
        let signalling =
            rest.first().filter(|w| !w.starts_with('(')).map_or(String::new(), |w| w.to_string());
        let kind = match signalling.to_ascii_uppercase().as_str() {
            "FXSKS" | "FXSLS" | "FXSGS" => Some(ChannelKind::Fxo),
            "FXOKS" | "FXOLS" | "FXOGS" => Some(ChannelKind::Fxs),
            "CLEAR" | "CAS" | "E&M" | "E&M-E1" if digital => Some(ChannelKind::E1Bearer),
            _ => None,
        };
        channels.push(ProbedChannel { channo, name, signalling, kind, in_use });
    }
    Ok(ProbedSpan { number, name: name.to_string(), description, line_config, alarms, channels })
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "DAHDI: module {}, /dev/dahdi/channel {}, {} device(s), {} span(s)",
            if self.module_loaded { "loaded" } else { "not loaded" },
            if self.device_present { "present" } else { "missing" },
            self.devices.len(),
            self.spans.len()
        )?;
        for s in &self.spans {
            let alarms = if s.alarms.is_empty() { "OK".to_string() } else { s.alarms.join(" ") };
            writeln!(
                f,
                "  span {} {} \"{}\" {} alarms: {}",
                s.number,
                s.name,
                s.description,
                s.line_config.as_deref().unwrap_or("analog"),
                alarms
            )?;
            for c in &s.channels {
                let what = match c.kind {
                    Some(ChannelKind::Fxo) => "FXO port",
                    Some(ChannelKind::Fxs) => "FXS port",
                    Some(ChannelKind::E1Bearer) => "bearer",
                    None if c.signalling.is_empty() => "unconfigured",
                    None => "not driven by Hotline",
                };
                writeln!(f, "    {:>4} {:<14} {:<9} {}", c.channo, c.name, c.signalling, what)?;
            }
        }
        for p in &self.problems {
            writeln!(f, "  problem: {p}")?;
        }
        for a in &self.advice {
            writeln!(f, "  to do: {a}")?;
        }
        Ok(())
    }
}
