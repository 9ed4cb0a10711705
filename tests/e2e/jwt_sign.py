"""Test-side JWT signing with pyca/cryptography, independent of our Rust code.

Every algorithm jwt_authn supports has a session-cached key (generated once
per process; RSA-2048 for RS*/PS*, P-256/P-384/P-521 for ES*, Ed25519 for
EdDSA, random secrets of the hash length for HS*). Tests build JWKS with
`public_jwk`/`jwks`, sign with `sign`, and craft malformed tokens with the
low-level helpers (`b64url`, `compact`, `sign_raw`, `tamper_signature`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGS = {
    "ES256": (ec.SECP256R1, 32, "P-256"),
    "ES384": (ec.SECP384R1, 48, "P-384"),
    "ES512": (ec.SECP521R1, 66, "P-521"),
}
HMAC_ALGS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
ALL_ALGS = (*RSA_ALGS, *EC_ALGS, "EdDSA", *HMAC_ALGS)
_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


class HmacKey:
    """A symmetric key (cryptography has no key object for HMAC)."""

    def __init__(self, secret: bytes):
        self.secret = secret


_KEYS: dict[str, object] = {}


def key_for(alg: str, slot: str = "default"):
    """The cached private key for alg; a different slot gives a different key."""
    cache_key = f"{alg}/{slot}"
    if cache_key not in _KEYS:
        _KEYS[cache_key] = new_key(alg)
    return _KEYS[cache_key]


def new_key(alg: str, rsa_bits: int = 2048, hmac_len: int | None = None):
    """A fresh (uncached) private key suitable for alg."""
    if alg in RSA_ALGS:
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if alg in EC_ALGS:
        return ec.generate_private_key(EC_ALGS[alg][0]())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg in HMAC_ALGS:
        return HmacKey(os.urandom(hmac_len if hmac_len is not None else HMAC_ALGS[alg]().digest_size))
    raise ValueError(f"unsupported alg {alg}")


def b64url(data: bytes | str) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(n: int, length: int | None = None) -> str:
    length = length or max(1, (n.bit_length() + 7) // 8)
    return b64url(n.to_bytes(length, "big"))


def public_jwk(key, kid: str | None = None, alg: str | None = None) -> dict:
    """The public JWK for a private key (for HMAC: the "oct" key itself)."""
    if isinstance(key, rsa.RSAPrivateKey):
        nums = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": _uint(nums.n), "e": _uint(nums.e)}
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        nums = key.public_key().public_numbers()
        crv, size = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}[key.curve.name]
        jwk = {"kty": "EC", "crv": crv, "x": _uint(nums.x, size), "y": _uint(nums.y, size)}
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        from cryptography.hazmat.primitives import serialization

        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    elif isinstance(key, HmacKey):
        jwk = {"kty": "oct", "k": b64url(key.secret)}
    else:
        raise TypeError(f"unsupported key type {type(key).__name__}")
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def jwks(keys: list[dict]) -> dict:
    """A JWK Set from public JWKs."""
    return {"keys": list(keys)}


def jwks_text(keys: list[dict]) -> str:
    return json.dumps(jwks(keys))


def sign_raw(key, alg: str, signing_input: bytes) -> bytes:
    """The JWS signature bytes over signing_input (ECDSA as raw r||s)."""
    if alg in HMAC_ALGS:
        return hmac.new(key.secret, signing_input, HMAC_ALGS[alg]).digest()
    if alg.startswith("RS"):
        return key.sign(signing_input, padding.PKCS1v15(), _HASHES[alg[2:]]())
    if alg.startswith("PS"):
        h = _HASHES[alg[2:]]()
        return key.sign(signing_input, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    if alg in EC_ALGS:
        der = key.sign(signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
        r, s = decode_dss_signature(der)
        size = EC_ALGS[alg][1]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA":
        return key.sign(signing_input)
    raise ValueError(f"unsupported alg {alg}")


def compact(header_segment: str, payload_segment: str, signature_segment: str) -> str:
    """Joins three already-encoded segments (for malformed tokens)."""
    return f"{header_segment}.{payload_segment}.{signature_segment}"


def encode_segment(value: dict | bytes | str) -> str:
    """A dict becomes compact JSON, str/bytes are taken as the exact text."""
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"))
    return b64url(value)


def sign(
    key, alg: str, payload: dict | bytes | str, header: dict | bytes | str | None = None, kid: str | None = None
) -> str:
    """A compact JWS. header defaults to {"alg": alg, "typ": "JWT"} (+ kid).

    header/payload given as str/bytes are used verbatim (custom JSON text,
    duplicate keys, not-JSON); as dicts they are serialised compactly.
    """
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
    signing_input = f"{encode_segment(header)}.{encode_segment(payload)}"
    return f"{signing_input}.{b64url(sign_raw(key, alg, signing_input.encode()))}"


def tamper_signature(token: str) -> str:
    """Same token with one signature bit flipped (still valid base64url)."""
    head, payload, sig = token.split(".")
    raw = bytearray(b64url_decode(sig))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{b64url(bytes(raw))}"


def tamper_payload(token: str, **changes) -> str:
    """Same header and signature, payload claims changed (signature now wrong)."""
    head, payload, sig = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims.update(changes)
    return f"{head}.{encode_segment(claims)}.{sig}"


def claims(
    iss: str = "https://issuer.example", sub: str = "user-1", aud=None, lifetime: int | None = 3600, **extra
) -> dict:
    """A typical payload: iss, sub, iat=now, exp=now+lifetime (None: no exp)."""
    now = int(time.time())
    out = {"iss": iss, "sub": sub, "iat": now}
    if lifetime is not None:
        out["exp"] = now + lifetime
    if aud is not None:
        out["aud"] = aud
    out.update(extra)
    return out
