//! JWS algorithm identifiers (RFC 7518 section 3, RFC 8037, RFC 9864).
//!
//! The set is closed on purpose: `none` and every unknown name have no
//! variant, so "which algorithm?" can only ever be answered with one we can
//! verify. The algorithm used to verify a token is checked against the key
//! (see `jwk::Jwk::usable_for`), never taken on the token's word alone.

/// A JWS signature algorithm we can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 (MGF1-SHA-256, 32-byte salt).
    Ps256,
    /// RSASSA-PSS with SHA-384 (MGF1-SHA-384, 48-byte salt).
    Ps384,
    /// RSASSA-PSS with SHA-512 (MGF1-SHA-512, 64-byte salt).
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// ECDSA on P-521 with SHA-512.
    Es512,
    /// Ed25519 (`EdDSA`, or `Ed25519` per RFC 9864).
    EdDsa,
    /// HMAC with SHA-256.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
}

impl Alg {
    /// Every supported algorithm, for config validation and test loops.
    pub const ALL: [Alg; 13] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
    ];

    /// Maps a header/JWK `alg` name, case-sensitively as RFC 7515 requires;
    /// `none` in any spelling and unknown names have no `Alg`.
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "ES512" => Alg::Es512,
            "EdDSA" | "Ed25519" => Alg::EdDsa,
            "HS256" => Alg::Hs256,
            "HS384" => Alg::Hs384,
            "HS512" => Alg::Hs512,
            _ => return None,
        })
    }

    /// The registered JOSE name, for logs, metrics and headers we emit.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    /// Symmetric algorithms need a shared secret, which only a local JWKS
    /// may hold; callers use this to keep them away from remote key sets.
    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::Hs256 | Alg::Hs384 | Alg::Hs512)
    }

    /// Hash output size in bytes: the minimum HMAC key length (RFC 7518
    /// section 3.2) and the exact HMAC tag length.
    pub fn hash_len(self) -> usize {
        match self {
            Alg::Rs256 | Alg::Ps256 | Alg::Es256 | Alg::Hs256 => 32,
            Alg::Rs384 | Alg::Ps384 | Alg::Es384 | Alg::Hs384 => 48,
            Alg::Rs512 | Alg::Ps512 | Alg::Es512 | Alg::Hs512 | Alg::EdDsa => 64,
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Alg::ALL {
            assert_eq!(Alg::from_name(alg.name()), Some(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
    }

    #[test]
    fn ed25519_alias() {
        assert_eq!(Alg::from_name("Ed25519"), Some(Alg::EdDsa));
        assert_eq!(Alg::EdDsa.name(), "EdDSA");
    }

    #[test]
    fn none_and_unknown_are_refused() {
        for bad in [
            "none", "None", "NONE", "nOnE", "", "rs256", "Rs256", "RS256 ", " RS256", "ES256K",
            "HS1", "RS1", "eddsa", "ED25519", "Ed448", "A128KW", "dir",
        ] {
            assert_eq!(Alg::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hmac_classification() {
        let hmacs: Vec<Alg> = Alg::ALL.into_iter().filter(|a| a.is_hmac()).collect();
        assert_eq!(hmacs, vec![Alg::Hs256, Alg::Hs384, Alg::Hs512]);
        assert_eq!(Alg::Hs256.hash_len(), 32);
        assert_eq!(Alg::Hs384.hash_len(), 48);
        assert_eq!(Alg::Hs512.hash_len(), 64);
    }
}
