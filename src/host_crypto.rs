//! Signature checks delegated to the host (Envoy's BoringSSL), for speed.
//!
//! Inside V8, pure-Rust RSA and ECDSA cost 0.6-1 ms per verification;
//! Envoy's `verify_signature` foreign function does the same with BoringSSL
//! in a few tens of microseconds. This module prepares its request (a
//! `VerifySignatureArguments` protobuf: hash name, DER SubjectPublicKeyInfo,
//! signature, signed text) and reads its answer; the shell makes the call.
//!
//! Only what the host verifies exactly as JOSE means it is delegated: RS256/
//! 384/512 (PKCS#1 v1.5) and ES256/384/512 (the raw r||s signature is
//! re-encoded as DER, which BoringSSL expects). PS* (the host has no PSS),
//! EdDSA and HS* always use the built-in verifier, and so does anything the
//! host cannot judge (its answer is then "not handled", never "valid").
//! The cheap JOSE-specific checks (exact signature length, non-zero r and s)
//! run here first, so the host never sees a shape JOSE forbids.

use crate::alg::Alg;
use crate::jwk::KeyMaterial;

/// What to do with one signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCheck {
    /// Send these bytes to the host's `verify_signature`.
    Request(Vec<u8>),
    /// Decided without the host (a shape JOSE forbids).
    Verdict(bool),
    /// Not for the host; use the built-in verifier.
    NotDelegable,
}

/// The host function's name in Envoy.
pub const FUNCTION: &str = "verify_signature";

fn hash_name(alg: Alg) -> Option<&'static str> {
    match alg {
        Alg::Rs256 | Alg::Es256 => Some("sha256"),
        Alg::Rs384 | Alg::Es384 => Some("sha384"),
        Alg::Rs512 | Alg::Es512 => Some("sha512"),
        _ => None,
    }
}

/// Field size in bytes of the curve an ES* algorithm uses.
fn ec_field_bytes(alg: Alg) -> Option<usize> {
    match alg {
        Alg::Es256 => Some(32),
        Alg::Es384 => Some(48),
        Alg::Es512 => Some(66),
        _ => None,
    }
}

/// Prepares the host request for one check (the key must already fit `alg`).
pub fn prepare(alg: Alg, key: &KeyMaterial, signing_input: &[u8], signature: &[u8]) -> HostCheck {
    let (Some(hash), Some(spki)) = (hash_name(alg), key.spki_der()) else {
        return HostCheck::NotDelegable;
    };
    if !key.fits(alg) {
        return HostCheck::Verdict(false);
    }
    // RSA signatures go as they are (no copy); ECDSA ones are re-encoded.
    let der;
    let sig: &[u8] = match ec_field_bytes(alg) {
        Some(n) => match raw_ecdsa_to_der(signature, n) {
            Some(d) => {
                der = d;
                &der
            }
            None => return HostCheck::Verdict(false),
        },
        None => {
            // RFC 7518 3.3: exactly k octets (the modulus size).
            if signature.len() != key.bits().div_ceil(8) {
                return HostCheck::Verdict(false);
            }
            signature
        }
    };
    let mut out = Vec::with_capacity(spki.len() + sig.len() + signing_input.len() + 32);
    put_field(&mut out, 1, hash.as_bytes());
    put_field(&mut out, 2, spki);
    put_field(&mut out, 3, sig);
    put_field(&mut out, 4, signing_input);
    HostCheck::Request(out)
}

/// Reads the host's `VerifySignatureResult`: `Some(true)` valid,
/// `Some(false)` a definite "does not verify", `None` when the host could not
/// judge (unsupported hash, key it could not load, garbage): fall back.
pub fn read_result(bytes: &[u8]) -> Option<bool> {
    let mut result = false;
    let mut error = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (tag, r) = varint(rest)?;
        rest = r;
        match (tag >> 3, tag & 7) {
            (1, 0) => {
                let (v, r) = varint(rest)?;
                result = v != 0;
                rest = r;
            }
            (field, 2) => {
                let (len, r) = varint(rest)?;
                let len = usize::try_from(len).ok()?;
                let body = r.get(..len)?;
                if field == 2 {
                    error = String::from_utf8_lossy(body).into_owned();
                }
                rest = r.get(len..)?;
            }
            (_, 0) => rest = varint(rest)?.1,
            _ => return None,
        }
    }
    if result {
        Some(true)
    } else if error.starts_with("Failed to verify digest") {
        Some(false)
    } else {
        None
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

/// JOSE raw `r || s` (each exactly `n` bytes) to a DER `ECDSA-Sig-Value`.
/// `None` for a wrong length or a zero `r` or `s` (never valid).
pub fn raw_ecdsa_to_der(raw: &[u8], n: usize) -> Option<Vec<u8>> {
    if raw.len() != 2 * n {
        return None;
    }
    let (r, s) = raw.split_at(n);
    let int = |x: &[u8]| -> Option<Vec<u8>> {
        let start = x.iter().position(|b| *b != 0)?;
        let x = &x[start..];
        let mut v = Vec::with_capacity(x.len() + 3);
        v.push(0x02);
        let pad = x[0] & 0x80 != 0;
        der_len(&mut v, x.len() + usize::from(pad));
        if pad {
            v.push(0);
        }
        v.extend_from_slice(x);
        Some(v)
    };
    let (r, s) = (int(r)?, int(s)?);
    let mut out = Vec::with_capacity(r.len() + s.len() + 4);
    out.push(0x30);
    der_len(&mut out, r.len() + s.len());
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Some(out)
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// Known-good vectors the shell sends once at start to learn whether the host
/// really verifies (Envoy builds without the function, or a host that answers
/// `true` to anything, must not be trusted): one RS256 and one ES256 token.
const PROBE_KEYS: &str = r#"{"keys":[
{"kty":"RSA","kid":"rs","alg":"RS256","e":"AQAB","n":"xWCZPBIHJ0dSEeU0JDqz6g8xYu553-StHOfUVGk-03k1_JvkLIeXAuzovlpy9umdxjebna3odFlPhYowC_y-J5-tH79hsCA9pprUwGxROfWVcdeLEwDioB3dFR0d5CS7dOPFopJtu_MXHzjhaf2raaSzadgtOrPHMPjBJcGHBj8pZXMdNHWAD3NW5ZVxLa2AGytAdFU38QiamhZ4PVAhimrXtrVTgsSbDPGVy3BCS8TMka1Mz85MOpOMKNh_aSvcfQRkuGLtKx2mCB_TCGeuv9H6X5_OjlacacSYJUtohC1cBRMOZpRVWgzMxUfXnTdqZyzO6v8vgL5dc4aiTrnbrQ"},
{"kty":"EC","kid":"es","alg":"ES256","crv":"P-256","x":"o1HJkLE3nM7fEjHe_uIvQEeW1BC_AsWO4sK4OyefSg4","y":"onDEgtxfVdysJ178TpE4TG4zqO2H7d3vQ1NqINfPo3k"}]}"#;
const PROBE_TOKENS: [(&str, Alg, &str); 2] = [
    ("rs", Alg::Rs256, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InByb2JlIn0.eyJwcm9iZSI6Imp3dC1hdXRobi13YXNtIGhvc3QgdmVyaWZ5X3NpZ25hdHVyZSJ9.v1lAHU5pD1-ax_kkbQqSpwGaoEzs9v9039i7dzxRdd2OMlzPm2QYeHi1O0kS8Zzro68FvXNnS7HFgB9La5keDhf7lPCH3fHLweITTxI0kBcKHwMO-frquugjic8W_uQbG7ddkS66QYyNmBSLFkjeAqVadiPznoQWHszftvpBXLcuE7E3jyGZtUAkQ20wI2hhr11Q019hHLNyAguiE4cpjBo19zwSYx-mB7kN3ctmxdzYwg-ipx1BtseH4xD_k-hOzze9T24BT90sK6QKDRo3saBtmOt7YFGdRJ-iJzvjYKD5QHAAKVQEgUaZ6Zl79hV2uNKOfawE6HZdgb-E4uX0Pw"),
    ("es", Alg::Es256, "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InByb2JlIn0.eyJwcm9iZSI6Imp3dC1hdXRobi13YXNtIGhvc3QgdmVyaWZ5X3NpZ25hdHVyZSJ9.Ez_ogT8wNpIu97YcM-R207W_gWLSwLek5Mvur19qmVu_pQB8Q5rGzqu9aRu_uYsIxQX7tGOHzegxE-vdFgj2HA"),
];

/// The start-up probe's host requests and the answer each must get: every
/// vector as signed (true) and with its signed text altered (false).
pub fn probe_requests() -> Vec<(Vec<u8>, bool)> {
    let Ok(set) = crate::jwk::parse_key_set(PROBE_KEYS, &crate::jwk::JwksOptions::default()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (kid, alg, token) in PROBE_TOKENS {
        let Some(key) = set.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) else {
            return Vec::new();
        };
        let Some((input, sig_b64)) = token.rsplit_once('.') else {
            return Vec::new();
        };
        let Ok(sig) = crate::b64::decode_strict(sig_b64) else {
            return Vec::new();
        };
        let mut altered = input.as_bytes().to_vec();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        for (text, expect) in [(input.as_bytes(), true), (&altered[..], false)] {
            match prepare(alg, &key.material, text, &sig) {
                HostCheck::Request(args) => out.push((args, expect)),
                _ => return Vec::new(),
            }
        }
    }
    out
}

/// Runs the probe through `call` (the host function): true only when every
/// answer is exactly right. Runs once per configuration, never per request.
pub fn probe(call: impl Fn(&[u8]) -> Option<bool>) -> bool {
    let requests = probe_requests();
    !requests.is_empty()
        && requests
            .iter()
            .all(|(args, expect)| call(args) == Some(*expect))
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_trusts_only_a_host_that_really_verifies() {
        let reqs = probe_requests();
        assert_eq!(reqs.len(), 4);
        // A host that judges right (answers by the vectors themselves).
        let right = |args: &[u8]| reqs.iter().find(|(a, _)| a == args).map(|(_, e)| *e);
        assert!(probe(right));
        assert!(!probe(|_| Some(true)), "a host that says yes to all");
        assert!(!probe(|_| None), "no such function");
        assert!(!probe(|args| right(args).map(|e| !e)));
        // The vectors are real: the built-in verifier agrees with them.
        let set = crate::jwk::parse_key_set(PROBE_KEYS, &Default::default()).unwrap();
        for (kid, alg, token) in PROBE_TOKENS {
            let key = set
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .unwrap();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let sig = crate::b64::decode_strict(sig).unwrap();
            assert!(crate::jws::verify_signature(
                alg,
                &key.material,
                input.as_bytes(),
                &sig
            ));
            assert!(!crate::jws::verify_signature(
                alg,
                &key.material,
                b"x",
                &sig
            ));
        }
    }

    use super::*;
    use crate::jwk::{parse_key_set, JwksOptions};
    use p256::ecdsa::signature::Signer;

    const EC_JWK: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

    fn ec_key() -> KeyMaterial {
        parse_key_set(EC_JWK, &JwksOptions::default()).unwrap().keys[0]
            .material
            .clone()
    }

    #[test]
    fn spki_round_trips_for_ec_keys() {
        let k = ec_key();
        let again = KeyMaterial::from_spki_der(k.spki_der().unwrap()).unwrap();
        assert_eq!(again.spki_der(), k.spki_der());
        assert!(again.fits(Alg::Es256));
    }

    #[test]
    fn raw_signatures_become_strict_der() {
        let sk = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let sig: p256::ecdsa::Signature = sk.sign(b"hello");
        let der = raw_ecdsa_to_der(&sig.to_bytes(), 32).unwrap();
        assert_eq!(der, sig.to_der().as_bytes(), "same DER as the p256 crate");
        // High bit set → a 0x00 pad byte; leading zeros stripped.
        let mut raw = [0u8; 64];
        raw[0] = 0x80;
        raw[63] = 1;
        assert_eq!(
            raw_ecdsa_to_der(&raw, 32).unwrap()[..4],
            [0x30, 0x26, 0x02, 0x21]
        );
        assert_eq!(
            raw_ecdsa_to_der(&[0u8; 64], 32),
            None,
            "r = s = 0 is never valid"
        );
        assert_eq!(raw_ecdsa_to_der(&[1u8; 63], 32), None);
        let p521 = raw_ecdsa_to_der(&[0xff; 132], 66).unwrap();
        // Two 67-byte INTEGERs (high bit set → padded): 2 * (2 + 67) = 138.
        assert_eq!(&p521[..3], &[0x30, 0x81, 0x8a]);
    }

    #[test]
    fn requests_encode_the_four_fields() {
        let k = ec_key();
        let sig = [1u8; 64];
        let HostCheck::Request(req) = prepare(Alg::Es256, &k, b"a.b", &sig) else {
            panic!("request")
        };
        assert_eq!(&req[..8], b"\x0a\x06sha256");
        assert_eq!(req[8], 0x12);
        assert_eq!(usize::from(req[9]), k.spki_der().unwrap().len());
        assert!(req.ends_with(b"\x22\x03a.b"));
        assert_eq!(
            prepare(Alg::Es256, &k, b"a.b", &[0u8; 64]),
            HostCheck::Verdict(false)
        );
        assert_eq!(
            prepare(Alg::Es256, &k, b"a.b", &[1u8; 65]),
            HostCheck::Verdict(false)
        );
        assert_eq!(
            prepare(Alg::Es384, &k, b"a.b", &[1u8; 96]),
            HostCheck::Verdict(false),
            "wrong curve"
        );
        assert_eq!(
            prepare(Alg::Ps256, &k, b"a.b", &sig),
            HostCheck::NotDelegable
        );
        assert_eq!(
            prepare(Alg::EdDsa, &k, b"a.b", &sig),
            HostCheck::NotDelegable
        );
    }

    #[test]
    fn results_are_read_conservatively() {
        let error = |text: &str| [&[0x12, text.len() as u8][..], text.as_bytes()].concat();
        assert_eq!(read_result(b"\x08\x01"), Some(true));
        assert_eq!(
            read_result(&error("Failed to verify digest. Error code: 0")),
            Some(false)
        );
        assert_eq!(
            read_result(&error("Failed to initialize digest verify.")),
            None
        );
        assert_eq!(read_result(&error("sha999 is not supported.")), None);
        assert_eq!(read_result(b""), None);
        assert_eq!(read_result(b"\x12\xff"), None, "truncated");
        assert_eq!(read_result(&[0xff; 20]), None);
    }
}
