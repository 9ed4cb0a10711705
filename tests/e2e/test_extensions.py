"""Extensions beyond jwt_authn, in a real Envoy: a PEM public key in
local_jwks.inline_string (Envoy 1.40's native filter refuses that config) and
the RFC 9864 algorithm name "Ed25519" beside "EdDSA".
"""

import time

from cryptography.hazmat.primitives import serialization

import jwt_sign as js
from harness import Envoy, http_request

ISS = "https://idp.example.com"


def _claims() -> dict:
    now = int(time.time())
    return {"iss": ISS, "sub": "alice", "exp": now + 300}


def _config(inline: str) -> dict:
    return {
        "providers": {
            "p": {
                "issuer": ISS,
                "local_jwks": {"inline_string": inline},
                "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}],
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}],
    }


def _pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_pem_key_serves_every_alg_of_its_type(echo, wasm_path):
    rsa = js.new_key("RS256")
    e = Envoy(_config(_pem(rsa)), backend_port=echo.port, native=False).start()
    try:
        for alg in ("RS256", "RS384", "PS256", "PS512"):
            tok = js.sign(rsa, alg, _claims())
            r = http_request(e.wasm_url, headers={"authorization": f"Bearer {tok}"})
            assert r.status == 200, (alg, r.text)
            assert r.json()["headers"]["x-user-id"] == "alice"
        # Algorithm confusion: HS256 "signed" with the PEM text as the secret.
        import hashlib
        import hmac

        head = js.encode_segment({"alg": "HS256", "typ": "JWT"})
        body = js.encode_segment(_claims())
        mac = hmac.new(_pem(rsa).encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        r = http_request(e.wasm_url, headers={"authorization": f"Bearer {head}.{body}.{js.b64url(mac)}"})
        assert r.status == 401
        # An EC token cannot use an RSA PEM key.
        ec_tok = js.sign(js.new_key("ES256"), "ES256", _claims())
        assert http_request(e.wasm_url, headers={"authorization": f"Bearer {ec_tok}"}).status == 401
    finally:
        e.stop()


def test_ed25519_algorithm_name(echo, wasm_path):
    key = js.new_key("EdDSA")
    jwk = js.public_jwk(key, kid="ed", alg="EdDSA")
    e = Envoy(_config(js.jwks_text([jwk])), backend_port=echo.port, native=False).start()
    try:
        for name in ("EdDSA", "Ed25519"):
            signing_input = f"{js.encode_segment({'alg': name, 'kid': 'ed'})}.{js.encode_segment(_claims())}"
            tok = f"{signing_input}.{js.b64url(key.sign(signing_input.encode()))}"
            r = http_request(e.wasm_url, headers={"authorization": f"Bearer {tok}"})
            assert r.status == 200, (name, r.text)
    finally:
        e.stop()
