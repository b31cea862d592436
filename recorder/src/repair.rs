//! Crash repair: on startup, every `*.part` file under the recording directory is a
//! recording that was in progress when the process died. A WAV gets its RIFF, `fact` and
//! `data` sizes set from the file's length (a half-written sample frame at the end is
//! cut off); an MP3 is cut after its last whole MPEG frame. The file is then renamed to
//! its final name and listed as cut short, for the store to mark.
//!
//! A `.part` that is not a recording we can read (its header never reached the disk) is
//! left as it is and listed with the problem, so nothing is deleted behind anyone's back.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hotline_drivers::SAMPLE_RATE;

use crate::PART_SUFFIX;

/// One recording found cut short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repaired {
    /// The `.part` file that was found.
    pub part: PathBuf,
    /// Its final name: where the repaired recording now is (unless `problem`).
    pub path: PathBuf,
    /// Audio in the repaired file.
    pub duration: Duration,
    /// Bytes cut off the end (a half-written sample frame or MPEG frame).
    pub cut_bytes: u64,
    /// Why it could not be repaired; the `.part` is then left untouched.
    pub problem: Option<String>,
}

/// Repairs every `*.part` under `dir` (recursively) and lists them. A missing `dir` has
/// nothing to repair; a directory that cannot be read is an error.
pub fn repair_dir(dir: &Path) -> io::Result<Vec<Repaired>> {
    let mut found = Vec::new();
    match collect_parts(dir, &mut found) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r?,
    }
    found.sort();
    Ok(found.into_iter().map(|p| repair_file(&p)).collect())
}

fn collect_parts(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let path = entry.path();
        if ty.is_dir() {
            collect_parts(&path, out)?;
        } else if ty.is_file() && path.to_str().is_some_and(|s| s.ends_with(PART_SUFFIX)) {
            out.push(path);
        }
    }
    Ok(())
}

/// Repairs one `.part` file and renames it to its final name.
pub fn repair_file(part: &Path) -> Repaired {
    let s = part.to_string_lossy();
    let path = PathBuf::from(s.strip_suffix(PART_SUFFIX).unwrap_or(&s).to_string());
    let mut r = Repaired {
        part: part.to_path_buf(),
        path: path.clone(),
        duration: Duration::ZERO,
        cut_bytes: 0,
        problem: None,
    };
    let fixed = if path.exists() {
        Err(format!("{} exists already; the .part is left as it is", path.display()))
    } else {
        fix_in_place(part).and_then(|(duration, cut)| {
            fs::rename(part, &path).map_err(|e| format!("rename to {}: {e}", path.display()))?;
            Ok((duration, cut))
        })
    };
    match fixed {
        Ok((duration, cut)) => {
            r.duration = duration;
            r.cut_bytes = cut;
        }
        Err(problem) => r.problem = Some(format!("{}: {problem}", part.display())),
    }
    r
}

/// Fixes the file's headers and length; returns its duration and the bytes cut off.
fn fix_in_place(path: &Path) -> Result<(Duration, u64), String> {
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut head = vec![0u8; len.min(64 * 1024) as usize];
    (&file).read_exact(&mut head).map_err(|e| e.to_string())?;
    let fix = if head.starts_with(b"RIFF") {
        wav_fix(&head, len)?
    } else if head.starts_with(b"ID3") || mp3_header(&head).is_some() {
        mp3_fix(&file, &head, len)?
    } else if head.is_empty() {
        return Err("empty file: its header never reached the disk".into());
    } else {
        return Err("offset 0: expected 'RIFF' (WAV) or an MPEG frame (MP3)".into());
    };
    for (offset, bytes) in &fix.patches {
        file.write_all_at(bytes, *offset).map_err(|e| e.to_string())?;
    }
    file.set_len(fix.new_len).map_err(|e| e.to_string())?;
    file.sync_data().map_err(|e| e.to_string())?;
    Ok((fix.duration, len - fix.new_len))
}

struct Fix {
    patches: Vec<(u64, Vec<u8>)>,
    new_len: u64,
    duration: Duration,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Walks the chunks up to `data` (the last one in our files) and sets every size from
/// the file length.
fn wav_fix(head: &[u8], len: u64) -> Result<Fix, String> {
    if head.len() < 12 || &head[8..12] != b"WAVE" {
        return Err("offset 8: expected 'WAVE'".into());
    }
    let mut pos = 12usize;
    let mut block_align: Option<(u16, u32)> = None; // (block align, sample rate)
    let mut fact_at = None;
    loop {
        if pos + 8 > head.len() {
            return Err(format!("offset {pos}: file ends before the 'data' chunk"));
        }
        let id = &head[pos..pos + 4];
        let size = u32_at(head, pos + 4) as usize;
        match id {
            b"fmt " => {
                if size < 16 || pos + 8 + 16 > head.len() {
                    return Err(format!("offset {pos}: 'fmt ' chunk of {size} bytes, expected at least 16"));
                }
                let align = u16_at(head, pos + 8 + 12);
                if align == 0 {
                    return Err(format!("offset {}: block align 0", pos + 8 + 12));
                }
                block_align = Some((align, u32_at(head, pos + 8 + 4)));
            }
            b"fact" => fact_at = Some(pos + 8),
            b"data" => {
                let Some((align, rate)) = block_align else {
                    return Err(format!("offset {pos}: 'data' before 'fmt '"));
                };
                let body = (pos + 8) as u64;
                let have = len.saturating_sub(body);
                let data = (have - have % u64::from(align)).min(u64::from(u32::MAX - 64));
                let frames = data / u64::from(align);
                let mut patches = vec![
                    (4, ((body - 8 + data) as u32).to_le_bytes().to_vec()),
                    (pos as u64 + 4, (data as u32).to_le_bytes().to_vec()),
                ];
                if let Some(at) = fact_at {
                    patches.push((at as u64, (frames as u32).to_le_bytes().to_vec()));
                }
                let rate = if rate == 0 { SAMPLE_RATE } else { rate };
                let duration = Duration::from_micros(frames * 1_000_000 / u64::from(rate));
                return Ok(Fix { patches, new_len: body + data, duration });
            }
            _ => {}
        }
        pos += 8 + size + (size & 1);
    }
}

/// An MPEG audio layer III frame header: (frame length in bytes, samples, sample rate).
pub fn mp3_header(b: &[u8]) -> Option<(usize, u32, u32)> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b[1] >> 3) & 3; // 0: MPEG-2.5, 2: MPEG-2, 3: MPEG-1
    let layer = (b[1] >> 1) & 3; // 1: layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let br_index = usize::from(b[2] >> 4);
    let sr_index = usize::from((b[2] >> 2) & 3);
    let padding = usize::from((b[2] >> 1) & 1);
    if br_index == 0 || br_index == 15 || sr_index == 3 {
        return None;
    }
    const BR_V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const BR_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let (kbps, rate, samples, k) = match version {
        3 => (BR_V1[br_index], [44100, 48000, 32000][sr_index], 1152, 144),
        2 => (BR_V2[br_index], [22050, 24000, 16000][sr_index], 576, 72),
        _ => (BR_V2[br_index], [11025, 12000, 8000][sr_index], 576, 72),
    };
    let len = (k * kbps * 1000 / rate) as usize + padding;
    Some((len, samples, rate))
}

/// Walks the MPEG frames (after an ID3v2 tag, if any) and cuts after the last whole one.
fn mp3_fix(file: &fs::File, head: &[u8], len: u64) -> Result<Fix, String> {
    let mut pos: u64 = 0;
    if head.len() >= 10 && head.starts_with(b"ID3") {
        let size = head[6..10].iter().fold(0u64, |a, &b| (a << 7) | u64::from(b & 0x7F));
        pos = 10 + size;
        if pos > len {
            // Cutting "after the tag" would make the file longer: nothing to keep.
            return Err(format!(
                "offset 6: the ID3 tag claims {size} bytes, past the end of the file ({len} bytes)"
            ));
        }
    }
    let mut samples: u64 = 0;
    let mut rate = SAMPLE_RATE;
    let mut hdr = [0u8; 4];
    while pos + 4 <= len {
        file.read_exact_at(&mut hdr, pos).map_err(|e| e.to_string())?;
        let Some((flen, n, r)) = mp3_header(&hdr) else { break };
        if pos + flen as u64 > len {
            break;
        }
        pos += flen as u64;
        samples += u64::from(n);
        rate = r;
    }
    let duration = Duration::from_micros(samples * 1_000_000 / u64::from(rate));
    Ok(Fix { patches: Vec::new(), new_len: pos, duration })
}
