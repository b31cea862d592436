//! G.711 A-law and mu-law companding (ITU-T G.711), the codings every E1 and analog
//! channel carries.
//!
//! Bit-exact with the ITU-T G.191 Software Tool Library: linear samples are 16-bit and
//! left-justified, and the encoder keeps the top 13 bits (A-law) or 14 bits (mu-law) by
//! truncation, not rounding. Decoding is a 256-entry table lookup; encoding is a few
//! shifts around one leading-zero count, with no per-bit loop.
//!
//! Codes are the bytes on the line: A-law with its even bits inverted (XOR 0x55), mu-law
//! with all bits inverted, sign bit set for positive samples.

/// A-law's even-bit inversion, applied on the line so that idle channels carry transitions.
const ALAW_XOR: u8 = 0x55;
/// mu-law's bias, in units of the 14-bit magnitude: it makes the segments line up.
const ULAW_BIAS: i32 = 33;
/// The largest biased 14-bit mu-law magnitude; louder samples clip to the top code.
const ULAW_CLIP: i32 = 0x1FFF;

/// Decode table for A-law, indexed by the line code.
static ALAW_TO_LINEAR: [i16; 256] = alaw_table();
/// Decode table for mu-law, indexed by the line code.
static ULAW_TO_LINEAR: [i16; 256] = ulaw_table();

/// Encodes one left-justified 16-bit sample to an A-law code.
#[inline]
pub fn linear_to_alaw(s: i16) -> u8 {
    // One's complement of negatives makes the magnitude steps symmetric around zero,
    // as in G.191; the shift keeps the 12-bit magnitude of the 13-bit sample.
    let negative = s < 0;
    let m = ((if negative { !s } else { s }) >> 4) as u32; // 0..=2047
    let code = if m < 32 {
        // Segments 0 and 1 share a step size: the code is the magnitude itself.
        m
    } else {
        // The segment is the position of the top bit; four mantissa bits follow it.
        let top = 31 - m.leading_zeros(); // 5..=10
        let exp = top - 3; // 2..=7
        (exp << 4) | ((m >> (exp - 1)) & 0x0F)
    };
    let sign = if negative { 0 } else { 0x80 };
    (code as u8 | sign) ^ ALAW_XOR
}

/// Decodes one A-law code to a left-justified 16-bit sample.
#[inline]
pub fn alaw_to_linear(c: u8) -> i16 {
    ALAW_TO_LINEAR[c as usize]
}

/// Encodes one left-justified 16-bit sample to a mu-law code.
#[inline]
pub fn linear_to_ulaw(s: i16) -> u8 {
    let negative = s < 0;
    let magnitude = ((if negative { !s } else { s }) >> 2) as i32 + ULAW_BIAS;
    let biased = magnitude.min(ULAW_CLIP) as u32; // 33..=0x1FFF
                                                  // With the bias, the top bit sits at position 5..=12: segments 0..=7.
    let segment = 31 - biased.leading_zeros() - 5;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    let code = (segment << 4) | mantissa;
    let sign = if negative { 0 } else { 0x80 };
    // mu-law inverts every bit except the sign, which is set for positive samples.
    (sign | (0x7F ^ code)) as u8
}

/// Decodes one mu-law code to a left-justified 16-bit sample.
#[inline]
pub fn ulaw_to_linear(c: u8) -> i16 {
    ULAW_TO_LINEAR[c as usize]
}

/// Appends the A-law codes of `pcm` to `out`.
pub fn encode_alaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| linear_to_alaw(s)));
}

/// Appends the linear samples of the A-law `codes` to `out`.
pub fn decode_alaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| ALAW_TO_LINEAR[c as usize]));
}

/// Appends the mu-law codes of `pcm` to `out`.
pub fn encode_ulaw(pcm: &[i16], out: &mut Vec<u8>) {
    out.extend(pcm.iter().map(|&s| linear_to_ulaw(s)));
}

/// Appends the linear samples of the mu-law `codes` to `out`.
pub fn decode_ulaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| ULAW_TO_LINEAR[c as usize]));
}

/// Passes audio through an A-law trunk in place: encode, then decode.
pub fn alaw_round_trip(pcm: &mut [i16]) {
    for s in pcm {
        *s = ALAW_TO_LINEAR[linear_to_alaw(*s) as usize];
    }
}

/// Passes audio through a mu-law trunk in place: encode, then decode.
pub fn ulaw_round_trip(pcm: &mut [i16]) {
    for s in pcm {
        *s = ULAW_TO_LINEAR[linear_to_ulaw(*s) as usize];
    }
}

/// The A-law decoder, evaluated once at compile time: each code decodes to the middle
/// of its quantisation interval.
const fn alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        let ix = (c as u8 ^ ALAW_XOR) & 0x7F;
        let exp = (ix >> 4) as i32;
        let mut mag = (ix & 0x0F) as i32;
        if exp > 0 {
            // The implicit leading one of segments 1..=7.
            mag += 16;
        }
        // Back to 16-bit left-justified, plus half a step (the interval's middle).
        mag = (mag << 4) + 8;
        if exp > 1 {
            mag <<= exp - 1;
        }
        table[c] = if c >= 0x80 { mag as i16 } else { -mag as i16 };
        c += 1;
    }
    table
}

/// The mu-law decoder, evaluated once at compile time.
const fn ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut c = 0;
    while c < 256 {
        let inv = !(c as u8);
        let segment = ((inv >> 4) & 0x07) as i32;
        let mantissa = (inv & 0x0F) as i32;
        // In 16-bit left-justified units a segment-s step is 8 << s; segment starts
        // follow from the bias (33 in 14-bit units, 132 here).
        let step = 8 << segment;
        let mag = (0x80 << segment) + step * mantissa + step / 2 - 4 * ULAW_BIAS;
        table[c] = if c >= 0x80 { mag as i16 } else { -mag as i16 };
        c += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_encodes_to_the_idle_codes() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ulaw_to_linear(0xFF), 0);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law code {c:#04x}");
            // mu-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes as 0xFF.
            let expect = if c == 0x7F { 0xFF } else { c };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), expect, "mu-law code {c:#04x}");
        }
    }
}
