//! `ES384` and `ES512` as jwt-compact [`Algorithm`]s.
//!
//! jwt-compact 0.8 ships ES256 only. Implementing its trait for P-384/P-521
//! (with the RustCrypto `p384`/`p521` crates) keeps every algorithm behind
//! one verification interface. Signatures are the JWS form: raw `r || s`,
//! each scalar left-padded to the field size (RFC 7518 section 3.4); DER is
//! not accepted, and zero or out-of-range scalars are refused when the
//! signature is decoded.

use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::signature::{Signer as _, Verifier as _};
// (`p384` and `p521` share the `signature` crate, so one import serves both.)
use std::borrow::Cow;
use std::num::NonZeroUsize;

/// `ES384`: ECDSA on P-384 with SHA-384.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Es384;

/// `ES512`: ECDSA on P-521 with SHA-512.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Es512;

/// An `ES384` signature (96 bytes `r || s`); a newtype because the trait and
/// `p384`'s type are both foreign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Es384Signature(p384::ecdsa::Signature);

/// An `ES512` signature (132 bytes `r || s`); see [`Es384Signature`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Es512Signature(p521::ecdsa::Signature);

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(96);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        p384::ecdsa::Signature::from_slice(slice)
            .map(Self)
            .map_err(|_| anyhow::Error::msg("invalid es384 signature"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl AlgorithmSignature for Es512Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(132);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        p521::ecdsa::Signature::from_slice(slice)
            .map(Self)
            .map_err(|_| anyhow::Error::msg("invalid es512 signature"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl Algorithm for Es384 {
    type SigningKey = p384::ecdsa::SigningKey;
    type VerifyingKey = p384::ecdsa::VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    /// Deterministic (RFC 6979) signing; used by tests and the demo IdP.
    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        Es384Signature(signing_key.sign(message))
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        // The P-384 `Verifier` hashes with SHA-384.
        verifying_key.verify(message, &signature.0).is_ok()
    }
}

impl Algorithm for Es512 {
    type SigningKey = p521::ecdsa::SigningKey;
    type VerifyingKey = p521::ecdsa::VerifyingKey;
    type Signature = Es512Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES512")
    }

    /// Deterministic (RFC 6979) signing; used by tests and the demo IdP.
    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        Es512Signature(signing_key.sign(message))
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        // The P-521 `Verifier` hashes with SHA-512.
        verifying_key.verify(message, &signature.0).is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p384_key() -> p384::ecdsa::SigningKey {
        p384::ecdsa::SigningKey::from_slice(&[7u8; 48]).unwrap()
    }

    fn p521_key() -> p521::ecdsa::SigningKey {
        let mut d = [0u8; 66];
        d[1..].fill(9);
        p521::ecdsa::SigningKey::from_slice(&d).unwrap()
    }

    #[test]
    fn es384_sign_verify_and_tamper() {
        let sk = p384_key();
        let vk = p384::ecdsa::VerifyingKey::from(&sk);
        let sig = Es384.sign(&sk, b"hello");
        assert_eq!(sig.as_bytes().len(), 96);
        assert!(Es384.verify_signature(&sig, &vk, b"hello"));
        assert!(!Es384.verify_signature(&sig, &vk, b"hellp"));
        let mut bytes = sig.as_bytes().into_owned();
        bytes[10] ^= 1;
        let bad = Es384Signature::try_from_slice(&bytes).unwrap();
        assert!(!Es384.verify_signature(&bad, &vk, b"hello"));
        assert_eq!(Es384.name(), "ES384");
    }

    #[test]
    fn es512_sign_verify_and_tamper() {
        let sk = p521_key();
        let vk = p521::ecdsa::VerifyingKey::from(&sk);
        let sig = Es512.sign(&sk, b"hello");
        assert_eq!(sig.as_bytes().len(), 132);
        assert!(Es512.verify_signature(&sig, &vk, b"hello"));
        assert!(!Es512.verify_signature(&sig, &vk, b"hellO"));
        let mut bytes = sig.as_bytes().into_owned();
        bytes[131] ^= 0x80;
        let bad = Es512Signature::try_from_slice(&bytes).unwrap();
        assert!(!Es512.verify_signature(&bad, &vk, b"hello"));
        assert_eq!(Es512.name(), "ES512");
    }

    #[test]
    fn zero_scalars_are_not_signatures() {
        assert!(Es384Signature::try_from_slice(&[0u8; 96]).is_err());
        assert!(Es512Signature::try_from_slice(&[0u8; 132]).is_err());
        // r = s = n (the group order) is out of range.
        let n384 = p384_order();
        let mut rs = n384.clone();
        rs.extend_from_slice(&n384);
        assert!(Es384Signature::try_from_slice(&rs).is_err());
        assert!(Es384Signature::try_from_slice(&[1u8; 95]).is_err());
    }

    fn p384_order() -> Vec<u8> {
        // n of P-384 (SEC 2).
        let hex = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }
}
