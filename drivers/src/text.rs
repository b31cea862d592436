//! Reading the text files an operator writes (the installation file, flow files, prompt
//! sets): a bounded read, UTF-8 checked with the place of the first bad byte, and the
//! "did you mean" hint every parser gives for a misspelt table or key.

use std::io::Read;
use std::path::Path;

/// The largest text file (installation file, flow file, prompt set) Hotline reads:
/// far above any real one, and a bound on what a wrong path (`/dev/zero`) can cost.
pub const MAX_TEXT_FILE: u64 = 16 * 1024 * 1024;

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The bytes of a text file as UTF-8, or a message that names `origin`, the line and
/// column and the byte offset of the first byte that is not UTF-8.
pub fn decode(bytes: Vec<u8>, origin: &str) -> Result<String, String> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // The valid prefix locates the bad byte.
            let good = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let (line, col) = line_col(good, good.len());
            Err(format!(
                "{origin}:{line}:{col}: invalid UTF-8 at byte offset {at} (byte 0x{:02X}): the file must be \
                 UTF-8 text",
                bytes[at]
            ))
        }
    }
}

/// Reads a text file of at most `limit` bytes as UTF-8 (see [`decode`]). Errors name the
/// file.
pub fn read_text_file(path: &Path, limit: u64) -> Result<String, String> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| format!("{origin}: cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("{origin}: cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{origin}: larger than {limit} bytes: expected a text file"));
    }
    decode(bytes, &origin)
}

/// The closest of `known` to `name`, when it is close enough to be a typo: a plural or
/// singular, `-` for `_`, or at most two edits (one for short names).
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let n = norm(name);
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        let kn = norm(k);
        let d = if n == kn || format!("{n}s") == kn || n == format!("{kn}s") {
            0
        } else {
            edit_distance(&n, &kn)
        };
        let allowed = if kn.chars().count() <= 3 { 1 } else { 2 };
        if d <= allowed && best.map_or(true, |(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Levenshtein distance, in characters (inputs are short names).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().take(256).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().take(256).enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// serde's "unknown field `x`, expected one of `a`, `b`" with a "did you mean `a`?"
/// appended when one of the expected names is close; other messages unchanged.
pub fn hint_unknown_field(message: &str) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else { return message.to_string() };
    let Some((name, tail)) = rest.split_once('`') else { return message.to_string() };
    let known: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    match did_you_mean(name, known.iter().copied()) {
        Some(k) => format!("{message}; did you mean `{k}`?"),
        None => message.to_string(),
    }
}

/// Where a TOML error is and what it says (with the "did you mean" hint). The parser
/// gives no place for its recursion limit, met by a dotted key of 80 or more parts
/// (`a.b.c...`, in a key or a `[table]` header); the place of the most deeply dotted key
/// is found here, so that error too names a line and column.
pub fn toml_error(text: &str, e: &toml::de::Error) -> (std::ops::Range<usize>, String) {
    let message = hint_unknown_field(e.message());
    if let Some(span) = e.span() {
        return (span, message);
    }
    if message == "recursion limit" {
        let at = deepest_dotted_key(text);
        return (
            at..at,
            "recursion limit: a dotted key has 80 or more parts (tables nested too deeply); \
             expected fewer"
                .into(),
        );
    }
    (0..0, message)
}

/// Byte offset of the start of the dotted key with the most dots (0 when none).
fn deepest_dotted_key(text: &str) -> usize {
    let key_byte =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'"' | b'\'' | b' ' | b'\t' | b'.');
    let (mut best, mut best_dots) = (0, 0);
    let (mut start, mut dots) = (0, 0);
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if !key_byte(b) {
            (start, dots) = (i + 1, 0);
        } else if b == b'.' {
            dots += 1;
            if dots > best_dots {
                (best, best_dots) = (start, dots);
            }
        }
    }
    // Skip the blanks before the key.
    best + text[best..].len() - text[best..].trim_start().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p13_1_invalid_utf8_is_located() {
        let e = decode(b"a = 1\nb = \"x\xFFy\"\n".to_vec(), "f.toml").unwrap_err();
        assert!(e.starts_with("f.toml:2:7: invalid UTF-8 at byte offset 12 (byte 0xFF)"), "{e}");
    }

    #[test]
    fn p14_10_typos_get_a_suggestion() {
        assert_eq!(did_you_mean("stor", ["store", "card", "ivr"]), Some("store"));
        assert_eq!(did_you_mean("cards", ["store", "card"]), Some("card"));
        assert_eq!(did_you_mean("zebra", ["store", "card"]), None);
        assert_eq!(
            hint_unknown_field("unknown field `nmae`, expected one of `name`, `id`"),
            "unknown field `nmae`, expected one of `name`, `id`; did you mean `name`?"
        );
        assert_eq!(hint_unknown_field("missing field `id`"), "missing field `id`");
    }

    #[test]
    fn a_too_deeply_dotted_key_is_located() {
        let text = format!("[engine]\nx = 1\n  {} = 2\n", vec!["a"; 100].join("."));
        let e = toml::from_str::<toml::Table>(&text).unwrap_err();
        let (span, message) = toml_error(&text, &e);
        assert_eq!(line_col(&text, span.start), (3, 3), "{message}");
        assert!(message.starts_with("recursion limit: a dotted key has 80 or more parts"), "{message}");
    }
}
