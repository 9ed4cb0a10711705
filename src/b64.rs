//! Strict base64url (RFC 7515 section 2, RFC 4648 section 5).
//!
//! JWS compact segments must be canonical: the same bytes always have exactly
//! one accepted spelling. Accepting several spellings (padding, the `+/`
//! alphabet, stray whitespace, non-zero trailing bits) would let an attacker
//! change a token's text without changing its meaning, which breaks caching
//! by token text and equality checks done on the raw string.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::fmt;

/// Why a base64url string was refused; the messages never echo the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum B64Error {
    /// A byte outside the base64url alphabet (`+`, `/`, whitespace, ...).
    InvalidChar,
    /// `=` padding where none is allowed, or malformed padding.
    Padding,
    /// A length that no byte string encodes to (`len % 4 == 1`).
    InvalidLength,
    /// The last character carries non-zero unused bits (non-canonical).
    TrailingBits,
}

impl fmt::Display for B64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidChar => "invalid base64url character",
            Self::Padding => "unexpected base64 padding",
            Self::InvalidLength => "invalid base64url length",
            Self::TrailingBits => "non-canonical base64url trailing bits",
        })
    }
}

impl std::error::Error for B64Error {}

/// Marks a byte outside the base64url alphabet in the [`quad_table`]s: above
/// any 24-bit value, so one test of a whole input's OR finds it.
const INVALID: u32 = 0xff00_0000;

/// base64url alphabet → 6-bit value already shifted to its place in a quad's
/// 24 bits (so decoding a quad is four table reads ORed together);
/// [`INVALID`] for every other byte.
const fn quad_table(shift: u32) -> [u32; 256] {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = (i as u32) << shift;
        i += 1;
    }
    t
}

static D18: [u32; 256] = quad_table(18);
static D12: [u32; 256] = quad_table(12);
static D6: [u32; 256] = quad_table(6);
static D0: [u32; 256] = quad_table(0);

fn sextet(b: u8) -> Result<u32, B64Error> {
    // A 256-entry table indexed by a byte: always in bounds.
    match D0[usize::from(b)] {
        INVALID if b == b'=' => Err(B64Error::Padding),
        INVALID => Err(B64Error::InvalidChar),
        v => Ok(v),
    }
}

/// A quad's 24 bits, with [`INVALID`] bits set if a byte is outside the
/// alphabet (256-entry tables indexed by a byte: always in bounds).
#[inline(always)]
fn quad(a: u8, b: u8, c: u8, d: u8) -> u32 {
    D18[usize::from(a)] | D12[usize::from(b)] | D6[usize::from(c)] | D0[usize::from(d)]
}

/// The three bytes a quad's 24 bits stand for.
#[inline(always)]
fn bytes_of(n: u32) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

/// Decodes unpadded, canonical base64url, because JWS segments have exactly
/// one valid spelling. Rejects `=`, `+`, `/`, whitespace, `len % 4 == 1` and
/// non-zero trailing bits. One table-driven pass (it runs on every new token).
pub fn decode_strict(s: &str) -> Result<Vec<u8>, B64Error> {
    let bytes = s.as_bytes();
    let rest = bytes.chunks_exact(4).remainder();
    let full = bytes.len() / 4 * 3;
    // Room for the remainder's one or two bytes too: no reallocation.
    let mut out = vec![0u8; full + 2];
    // Four table reads per quad, one test for the whole input: an invalid
    // byte sets bits no valid quad has. Its exact error comes from `sextet`.
    // Two quads per step (eight bytes in, six out): half the loop overhead
    // on a signature's 86 quads.
    let mut bad = 0u32;
    let pairs = bytes.len() / 8;
    // pairs * 8 <= bytes.len() and pairs * 6 <= full: neither split can panic.
    let (pair_in, quad_in) = bytes.split_at(pairs * 8);
    let (pair_out, quad_out) = out.split_at_mut(pairs * 6);
    for (q, o) in pair_in.chunks_exact(8).zip(pair_out.chunks_exact_mut(6)) {
        // chunks_exact: always eight bytes in, six out, so these match.
        let (&[a, b, c, d, e, f, g, h], [u, v, w, x, y, z]) = (q, o) else {
            continue;
        };
        let (n, m) = (quad(a, b, c, d), quad(e, f, g, h));
        bad |= n | m;
        [*u, *v, *w] = bytes_of(n);
        [*x, *y, *z] = bytes_of(m);
    }
    // At most one whole quad left before the remainder.
    for (q, o) in quad_in.chunks_exact(4).zip(quad_out.chunks_exact_mut(3)) {
        let (&[a, b, c, d], [x, y, z]) = (q, o) else {
            continue;
        };
        let n = quad(a, b, c, d);
        bad |= n;
        [*x, *y, *z] = bytes_of(n);
    }
    if bad & INVALID != 0 {
        for &b in bytes.get(..bytes.len() - rest.len()).unwrap_or_default() {
            sextet(b)?;
        }
    }
    let mut n = 0u32;
    for (i, &b) in rest.iter().enumerate() {
        n |= sextet(b)? << (18 - 6 * i);
    }
    let len = match rest.len() {
        0 => full,
        1 => return Err(B64Error::InvalidLength),
        2 if n & 0xffff == 0 => full + 1,
        3 if n & 0xff == 0 => full + 2,
        _ => return Err(B64Error::TrailingBits),
    };
    if let Some([x, y]) = out.get_mut(full..full + 2) {
        *x = (n >> 16) as u8;
        *y = (n >> 8) as u8;
    }
    out.truncate(len);
    Ok(out)
}

/// Like [`decode_strict`] but tolerates correct trailing `=` padding, because
/// some identity providers pad JWK members (`n`, `x`, `k`...). Only for keys:
/// tokens must use [`decode_strict`].
pub fn decode_lenient_padding(s: &str) -> Result<Vec<u8>, B64Error> {
    let unpadded = s.trim_end_matches('=');
    let pad = s.len() - unpadded.len();
    if pad > 0 && (pad > 2 || s.len() % 4 != 0) {
        return Err(B64Error::Padding);
    }
    decode_strict(unpadded)
}

/// Encodes as unpadded base64url, the only form JWS uses.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The decoder this module used before (the base64 crate after a
    /// character pre-scan): the table-driven one must agree on every input.
    fn reference(s: &str) -> Result<Vec<u8>, B64Error> {
        use base64::DecodeError;
        let bytes = s.as_bytes();
        for &b in bytes {
            if b == b'=' {
                return Err(B64Error::Padding);
            }
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(B64Error::InvalidChar);
            }
        }
        if bytes.len() % 4 == 1 {
            return Err(B64Error::InvalidLength);
        }
        URL_SAFE_NO_PAD.decode(bytes).map_err(|e| match e {
            DecodeError::InvalidByte(_, b'=') | DecodeError::InvalidPadding => B64Error::Padding,
            DecodeError::InvalidByte(..) => B64Error::InvalidChar,
            DecodeError::InvalidLength(_) => B64Error::InvalidLength,
            DecodeError::InvalidLastSymbol(..) => B64Error::TrailingBits,
        })
    }

    #[test]
    fn agrees_with_the_reference_decoder() {
        // A small deterministic generator over the alphabet and its neighbours.
        let chars = "AQgw_-09azZ=+/ .\u{e9}".as_bytes();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let len = (next() % 12) as usize;
            let mut v: Vec<u8> = (0..len)
                .map(|_| chars[(next() % chars.len() as u64) as usize])
                .collect();
            if next() % 3 == 0 {
                // Mostly-valid strings too, so the decoding itself is compared.
                v.retain(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
            }
            let s = String::from_utf8_lossy(&v).into_owned();
            assert_eq!(decode_strict(&s), reference(&s), "{s:?}");
        }
        for n in 0..200usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            assert_eq!(decode_strict(&encode(&data)).unwrap(), data);
        }
    }

    #[test]
    fn round_trips_all_lengths() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..64 {
            let enc = encode(&data[..len]);
            assert!(!enc.contains('='));
            assert_eq!(decode_strict(&enc).unwrap(), &data[..len]);
        }
    }

    #[test]
    fn rejects_padding() {
        assert_eq!(decode_strict("QQ=="), Err(B64Error::Padding));
        assert_eq!(decode_strict("QUI="), Err(B64Error::Padding));
        assert_eq!(decode_strict("Q=Q"), Err(B64Error::Padding));
    }

    #[test]
    fn rejects_standard_alphabet_and_whitespace() {
        assert_eq!(decode_strict("a+b/"), Err(B64Error::InvalidChar));
        assert_eq!(decode_strict("ab/c"), Err(B64Error::InvalidChar));
        assert_eq!(decode_strict("ab c"), Err(B64Error::InvalidChar));
        assert_eq!(decode_strict("abcd\n"), Err(B64Error::InvalidChar));
        assert_eq!(decode_strict(" abc"), Err(B64Error::InvalidChar));
        assert_eq!(decode_strict("ab\tc"), Err(B64Error::InvalidChar));
        assert_eq!(decode_strict("abé"), Err(B64Error::InvalidChar));
    }

    #[test]
    fn rejects_impossible_length() {
        assert_eq!(decode_strict("a"), Err(B64Error::InvalidLength));
        assert_eq!(decode_strict("abcde"), Err(B64Error::InvalidLength));
    }

    #[test]
    fn rejects_non_zero_trailing_bits() {
        // "QQ" is canonical for "A"; "QR" differs only in unused low bits.
        assert_eq!(decode_strict("QQ").unwrap(), b"A");
        assert_eq!(decode_strict("QR"), Err(B64Error::TrailingBits));
        assert_eq!(decode_strict("QUI").unwrap(), b"AB");
        assert_eq!(decode_strict("QUJ"), Err(B64Error::TrailingBits));
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(decode_strict("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn lenient_accepts_only_correct_padding() {
        assert_eq!(decode_lenient_padding("QQ==").unwrap(), b"A");
        assert_eq!(decode_lenient_padding("QUI=").unwrap(), b"AB");
        assert_eq!(decode_lenient_padding("QUJD").unwrap(), b"ABC");
        assert_eq!(decode_lenient_padding("QQ").unwrap(), b"A");
        assert_eq!(decode_lenient_padding("QQ="), Err(B64Error::Padding));
        assert_eq!(decode_lenient_padding("QQ==="), Err(B64Error::Padding));
        assert_eq!(decode_lenient_padding("QUJD===="), Err(B64Error::Padding));
        assert_eq!(decode_lenient_padding("Q=Q="), Err(B64Error::Padding));
        assert_eq!(decode_lenient_padding("a+b="), Err(B64Error::InvalidChar));
        assert_eq!(decode_lenient_padding("QR=="), Err(B64Error::TrailingBits));
    }

    #[test]
    fn errors_do_not_echo_input() {
        let msg = decode_strict("secret+stuff").unwrap_err().to_string();
        assert!(!msg.contains("secret"));
    }
}
