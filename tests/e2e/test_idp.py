"""End-to-end tests of the demo identity provider binary (dist/jwt-idp).

The IdP runs as a real process on a free 127.0.0.1 port with the committed
demo users (demo/users.json). Tokens are verified here with pyca/cryptography
against the JWKS the IdP publishes, independently of the Rust code: what
Envoy will do with them. Every wait is bounded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from harness import DIST_DIR, free_port, http_request

REPO = Path(__file__).resolve().parents[2]
USERS = REPO / "demo" / "users.json"
AUDIENCE = "demo-api"
# The demo users (README): username -> (password, role, scope)
DEMO_USERS = {
    "alice": ("alice-demo-pass", "admin", "payments:write orders:read"),
    "bob": ("bob-demo-pass", "merchant", "payments:write"),
    "carol": ("carol-demo-pass", "viewer", "orders:read"),
}
START_TIMEOUT_S = 10.0


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


def thumbprint(jwk: dict) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    members = {k: jwk[k] for k in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def verify(token: str, jwks: dict) -> tuple[dict, dict]:
    """Verifies a compact JWS against the JWKS by kid; returns (header, claims).

    Raises AssertionError (unknown kid / alg mismatch) or InvalidSignature.
    """
    header_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]] or [None]
    assert jwk is not None, f"kid {header['kid']} not in the JWKS"
    assert header["alg"] == jwk["alg"]
    signing_input = f"{header_b64}.{payload_b64}".encode()
    signature = b64url_decode(sig_b64)
    if jwk["kty"] == "RSA":
        key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif jwk["kty"] == "EC":
        assert jwk["crv"] == "P-256" and len(signature) == 64
        key = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), ec.SECP256R1()).public_key()
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        assert jwk["crv"] == "Ed25519"
        ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"])).verify(signature, signing_input)
    return header, json.loads(b64url_decode(payload_b64))


@pytest.fixture(scope="session")
def idp_bin() -> Path:
    path = Path(DIST_DIR) / "jwt-idp"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run `make idp` first", pytrace=False)
    return path


def run_cli(idp_bin: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(idp_bin), *args], input=stdin, capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, f"jwt-idp {args[0]} failed: {proc.stderr}"
    return proc


class Idp:
    """One `jwt-idp serve` process on a free loopback port."""

    def __init__(self, idp_bin: Path, workdir: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key_dir = workdir / "keys"
        self.log_path = workdir / "idp.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                str(idp_bin), "serve",
                "--key-dir", str(self.key_dir),
                "--users", str(USERS),
                "--listen", f"127.0.0.1:{self.port}",
                "--issuer", self.url,
                "--audience", AUDIENCE,
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jwt-idp exited: {self.log()}")
            try:
                if self.get("/healthz").status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"jwt-idp not ready after {START_TIMEOUT_S}s: {self.log()}")

    def get(self, path: str):
        return http_request(self.url, "GET", path)

    def post(self, path: str, body: bytes = b"", content_type: str | None = "application/json"):
        headers = {"content-type": content_type} if content_type else {}
        return http_request(self.url, "POST", path, headers=headers, body=body)

    def login(self, username: str, password: str):
        return self.post("/login", json.dumps({"username": username, "password": password}).encode())

    def jwks(self) -> dict:
        return self.get("/.well-known/jwks.json").json()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="module")
def idp(idp_bin, tmp_path_factory):
    server = Idp(idp_bin, tmp_path_factory.mktemp("idp"))
    yield server
    server.stop()


def _pem_bodies(key_dir: Path) -> list[str]:
    """The base64 lines of every private key file (to look for leaks)."""
    lines = []
    for pem in key_dir.glob("*.pem"):
        lines += [l for l in pem.read_text().splitlines() if l and not l.startswith("-----")]
    return lines


# ----------------------------------------------------------------- serve


def test_healthz_and_discovery(idp):
    assert idp.get("/healthz").json() == {"status": "ok"}
    resp = idp.get("/.well-known/openid-configuration")
    assert resp.status == 200
    doc = resp.json()
    assert doc["issuer"] == idp.url
    assert doc["jwks_uri"] == f"{idp.url}/.well-known/jwks.json"
    assert doc["token_endpoint"] == f"{idp.url}/login"
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]


def test_jwks_is_public_only_and_cacheable(idp):
    resp = idp.get("/.well-known/jwks.json")
    assert resp.status == 200
    assert "max-age=" in resp.headers["cache-control"]
    keys = resp.json()["keys"]
    assert len(keys) == 1
    for jwk in keys:
        assert jwk["use"] == "sig" and jwk["alg"] == "ES256" and jwk["kty"] == "EC"
        assert jwk["kid"] == thumbprint(jwk)
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    # The key files are private.
    pems = list(idp.key_dir.glob("*.pem"))
    assert pems
    for pem in pems:
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600


@pytest.mark.parametrize("username", sorted(DEMO_USERS))
def test_login_issues_verifiable_tokens_with_the_user_claims(idp, username):
    password, role, scope = DEMO_USERS[username]
    before = int(time.time())
    resp = idp.login(username, password)
    assert resp.status == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    header, claims = verify(body["access_token"], idp.jwks())
    assert header["typ"] == "JWT" and header["alg"] == "ES256"
    assert claims["sub"] == username
    assert claims["role"] == role
    assert claims["scope"] == scope
    assert claims["iss"] == idp.url
    assert claims["aud"] == AUDIENCE
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) >= 16


def test_tampered_or_foreign_tokens_do_not_verify(idp, idp_bin, tmp_path):
    """Guards the checks above: verify() really rejects what it should."""
    token = idp.login("carol", "carol-demo-pass").json()["access_token"]
    header_b64, payload_b64, sig_b64 = token.split(".")
    claims = json.loads(b64url_decode(payload_b64))
    claims["role"] = "admin"
    forged = ".".join([header_b64, b64url(json.dumps(claims).encode()), sig_b64])
    with pytest.raises(InvalidSignature):
        verify(forged, idp.jwks())
    # Same kid, but signed by another key: a copy of the JWKS entry does not help.
    run_cli(idp_bin, "keygen", "--key-dir", str(tmp_path))
    other = run_cli(
        idp_bin, "mint", "--key-dir", str(tmp_path), "--iss", idp.url, "--aud", AUDIENCE, "--sub", "carol"
    ).stdout.strip()
    other_header = json.loads(b64url_decode(other.split(".")[0]))
    jwks = idp.jwks()
    jwks["keys"][0]["kid"] = other_header["kid"]
    with pytest.raises(InvalidSignature):
        verify(other, jwks)


def test_login_accepts_a_form_body(idp):
    resp = idp.post(
        "/login",
        b"grant_type=password&username=bob&password=bob-demo-pass",
        "application/x-www-form-urlencoded",
    )
    assert resp.status == 200, resp.text
    _, claims = verify(resp.json()["access_token"], idp.jwks())
    assert claims["role"] == "merchant"


def test_tokens_are_unique(idp):
    tokens = {idp.login("carol", "carol-demo-pass").json()["access_token"] for _ in range(3)}
    assert len(tokens) == 3


@pytest.mark.parametrize(
    "username,password",
    [("alice", "bob-demo-pass"), ("alice", ""), ("alice", "ALICE-DEMO-PASS"), ("mallory", "alice-demo-pass"), ("", "")],
)
def test_bad_credentials_are_401(idp, username, password):
    resp = idp.login(username, password)
    assert resp.status == 401
    assert resp.json()["error"] == "invalid_grant"
    assert "access_token" not in resp.text


def test_unknown_user_costs_a_password_verification_too(idp):
    """Constant-ish time: an unknown name still runs argon2 (on a dummy hash)."""

    def median_seconds(username: str) -> float:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            assert idp.login(username, "wrong-password").status == 401
            samples.append(time.perf_counter() - start)
        return sorted(samples)[2]

    known, unknown = median_seconds("alice"), median_seconds("nobody-by-that-name")
    # argon2id with the demo parameters (19 MiB, t=2) takes milliseconds;
    # skipping it would make the unknown-user answer several times faster.
    assert unknown >= 0.5 * known, (known, unknown)


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"{", "application/json"),
        (b'{"username":"alice"}', "application/json"),
        (b'{"username":1,"password":"x"}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"username=alice&password=%zz", "application/x-www-form-urlencoded"),
        (b"<login/>", "application/xml"),
    ],
)
def test_malformed_login_bodies_are_400(idp, body, content_type):
    resp = idp.post("/login", body, content_type)
    assert resp.status == 400, resp.text
    assert resp.json()["error"] == "invalid_request"


def test_oversize_bodies_are_refused_and_the_server_survives(idp):
    resp = idp.post("/login", b"x" * (100 * 1024))
    assert resp.status == 413
    # A lying Content-Length must not make the server allocate or wait for it.
    with socket.create_connection(("127.0.0.1", idp.port), timeout=10) as sock:
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n{}")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    # A head that never ends is cut off too.
    with socket.create_connection(("127.0.0.1", idp.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n" + b"x-filler: " + b"a" * 20000 + b"\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert idp.get("/healthz").status == 200


def test_wrong_methods_and_paths(idp):
    assert idp.get("/login").status == 405
    assert idp.post("/.well-known/jwks.json").status == 405
    assert idp.get("/admin").status == 404


def test_log_has_one_line_per_request_and_no_secrets(idp):
    resp = idp.login("alice", "alice-demo-pass")
    token = resp.json()["access_token"]
    idp.login("alice", "a-wrong-password-for-the-log-test")
    log = idp.log()
    assert "POST /login 200" in log
    assert "POST /login 401" in log
    for secret in ("alice-demo-pass", "a-wrong-password-for-the-log-test", token, token.split(".")[2]):
        assert secret not in log
    for line in _pem_bodies(idp.key_dir):
        assert line not in log


def test_rotate_endpoint_keeps_old_tokens_verifiable(idp):
    old_token = idp.login("alice", "alice-demo-pass").json()["access_token"]
    old_kids = [k["kid"] for k in idp.jwks()["keys"]]
    resp = idp.post("/rotate")
    assert resp.status == 200
    new_kid = resp.json()["kid"]
    assert new_kid not in old_kids
    jwks = idp.jwks()
    assert [k["kid"] for k in jwks["keys"]] == old_kids + [new_kid]
    verify(old_token, jwks)  # still verifiable during the grace period
    header, _ = verify(idp.login("alice", "alice-demo-pass").json()["access_token"], jwks)
    assert header["kid"] == new_kid


def test_cli_rotation_reaches_a_running_server(idp, idp_bin):
    """`jwt-idp rotate` on the server's key directory is picked up (within ~1 s)."""
    before = [k["kid"] for k in idp.jwks()["keys"]]
    new_kid = run_cli(idp_bin, "rotate", "--key-dir", str(idp.key_dir), "--grace", "600").stdout.strip()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and new_kid not in [k["kid"] for k in idp.jwks()["keys"]]:
        time.sleep(0.1)
    kids = [k["kid"] for k in idp.jwks()["keys"]]
    assert kids == before + [new_kid]
    header, _ = verify(idp.login("bob", "bob-demo-pass").json()["access_token"], idp.jwks())
    assert header["kid"] == new_kid


def test_grace_period_ends_and_scheduled_rotation(idp_bin, tmp_path):
    """--rotate-every 1 --grace 1: keys rotate by themselves and old ones drop."""
    server = Idp(idp_bin, tmp_path, "--rotate-every", "1", "--grace", "1", "--alg", "EdDSA")
    try:
        first = server.jwks()["keys"][0]["kid"]
        assert server.jwks()["keys"][0]["alg"] == "EdDSA"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and first in [k["kid"] for k in server.jwks()["keys"]]:
            time.sleep(0.2)
        kids = [k["kid"] for k in server.jwks()["keys"]]
        assert first not in kids and kids, kids
        token = server.login("alice", "alice-demo-pass").json()["access_token"]
        header, claims = verify(token, server.jwks())
        assert header["alg"] == "EdDSA" and claims["sub"] == "alice"
        assert "rotated" in server.log()
    finally:
        server.stop()
    # Dropped keys are deleted from disk too (at most the active key and one
    # still in its grace period remain).
    assert len(list((tmp_path / "keys").glob("*.pem"))) <= 2


def test_serve_creates_keys_once_and_reuses_them(idp_bin, tmp_path):
    first = Idp(idp_bin, tmp_path)
    kid = first.jwks()["keys"][0]["kid"]
    first.stop()
    second = Idp(idp_bin, tmp_path)
    try:
        assert [k["kid"] for k in second.jwks()["keys"]] == [kid]
    finally:
        second.stop()


def test_serve_refuses_a_bad_users_file(idp_bin, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": [{"username": "x", "password_hash": "plaintext"}]}))
    proc = run_cli(
        idp_bin, "serve", "--key-dir", str(tmp_path / "k"), "--users", str(users),
        "--listen", f"127.0.0.1:{free_port()}", "--issuer", "http://i", "--audience", "a",
        check=False,
    )
    assert proc.returncode == 1
    assert "password_hash" in proc.stderr and "plaintext" not in proc.stderr


# ----------------------------------------------------------------- CLI


@pytest.mark.parametrize("alg,kty", [("ES256", "EC"), ("RS256", "RSA"), ("EdDSA", "OKP")])
def test_cli_keygen_mint_verify(idp_bin, tmp_path, alg, kty):
    kid = run_cli(idp_bin, "keygen", "--key-dir", str(tmp_path), "--alg", alg).stdout.strip()
    jwks = json.loads(run_cli(idp_bin, "jwks", "--key-dir", str(tmp_path)).stdout)
    assert [k["kid"] for k in jwks["keys"]] == [kid]
    assert jwks["keys"][0]["kty"] == kty and thumbprint(jwks["keys"][0]) == kid
    out = run_cli(
        idp_bin, "mint", "--key-dir", str(tmp_path), "--iss", "http://issuer", "--aud", "api",
        "--sub", "svc", "--role", "robot", "--scope", "a b", "--ttl", "60", "--now", "1700000000",
        "--claim", 'tenant={"id":"acme"}', "--claim", 'aud=["api","other"]',
    ).stdout
    token = out.strip()
    assert out.count("\n") == 1 and token.count(".") == 2  # prints only the token
    header, claims = verify(token, jwks)
    assert header["kid"] == kid and header["alg"] == alg
    assert claims["iat"] == 1700000000 and claims["exp"] == 1700000060
    assert claims["sub"] == "svc" and claims["role"] == "robot" and claims["scope"] == "a b"
    assert claims["tenant"] == {"id": "acme"}
    assert claims["aud"] == ["api", "other"]
    for line in _pem_bodies(tmp_path):
        assert line not in out


def test_minted_tokens_pass_envoys_native_jwt_authn(idp_bin, tmp_path, envoy_factory):
    """Interoperability with the reference: Envoy's own jwt_authn accepts
    tokens of every algorithm the IdP signs with, given its published JWKS."""
    tokens, keys = {}, []
    for alg in ("ES256", "RS256", "EdDSA"):
        key_dir = str(tmp_path / alg)
        run_cli(idp_bin, "keygen", "--key-dir", key_dir, "--alg", alg)
        keys += json.loads(run_cli(idp_bin, "jwks", "--key-dir", key_dir).stdout)["keys"]
        tokens[alg] = run_cli(
            idp_bin, "mint", "--key-dir", key_dir, "--iss", "http://idp.test", "--aud", AUDIENCE,
            "--sub", f"user-{alg}", "--role", "admin",
        ).stdout.strip()
    config = {
        "providers": {
            "idp": {
                "issuer": "http://idp.test",
                "audiences": [AUDIENCE],
                "local_jwks": {"inline_string": json.dumps({"keys": keys})},
                "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}],
            }
        },
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}}],
    }
    envoy = envoy_factory(config, native=True, wasm=False)
    for alg, token in tokens.items():
        resp = envoy.request("native", path="/api", headers={"authorization": f"Bearer {token}"})
        assert resp.status == 200, (alg, resp.text)
        assert resp.echoed_headers()["x-user-id"] == f"user-{alg}"
        header, payload, signature = token.split(".")
        forged = ".".join([header, payload, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")])
        resp = envoy.request("native", path="/api", headers={"authorization": f"Bearer {forged}"})
        assert resp.status == 401, alg


def test_cli_rotation_grace_with_fixed_clock(idp_bin, tmp_path):
    kd = str(tmp_path)
    old = run_cli(idp_bin, "keygen", "--key-dir", kd, "--now", "1000").stdout.strip()
    new = run_cli(idp_bin, "rotate", "--key-dir", kd, "--grace", "100", "--now", "2000").stdout.strip()

    def kids(now: int) -> list[str]:
        out = run_cli(idp_bin, "jwks", "--key-dir", kd, "--now", str(now)).stdout
        return [k["kid"] for k in json.loads(out)["keys"]]

    assert kids(2099) == [old, new]
    assert kids(2100) == [new]
    token = run_cli(idp_bin, "mint", "--key-dir", kd, "--iss", "i", "--aud", "a", "--sub", "s").stdout.strip()
    header, _ = verify(token, json.loads(run_cli(idp_bin, "jwks", "--key-dir", kd).stdout))
    assert header["kid"] == new


def test_cli_refuses_weak_rsa_and_bad_input(idp_bin, tmp_path):
    proc = run_cli(idp_bin, "keygen", "--key-dir", str(tmp_path), "--alg", "RS256", "--bits", "1024", check=False)
    assert proc.returncode == 1 and "2048" in proc.stderr
    assert not list(tmp_path.glob("*.pem"))
    for args in (
        ["keygen", "--key-dir", str(tmp_path), "--alg", "HS256"],
        ["mint", "--key-dir", str(tmp_path), "--iss", "i", "--aud", "a"],
        ["mint", "--key-dir", str(tmp_path), "--iss", "i", "--aud", "a", "--sub", "s", "--claim", "x=notjson"],
        ["bogus"],
    ):
        proc = run_cli(idp_bin, *args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "usage:" in proc.stderr
    # Minting from an empty key directory is an error, not a panic.
    proc = run_cli(idp_bin, "mint", "--key-dir", str(tmp_path / "none"), "--iss", "i", "--aud", "a", "--sub", "s", check=False)
    assert proc.returncode == 1 and "keygen" in proc.stderr


def test_cli_hash_password(idp_bin):
    phc = run_cli(idp_bin, "hash-password", stdin="s3cret\n").stdout.strip()
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert phc != run_cli(idp_bin, "hash-password", stdin="s3cret\n").stdout.strip()  # salted
    assert run_cli(idp_bin, "hash-password", stdin="\n", check=False).returncode == 1


def test_committed_demo_users_have_argon2id_hashes():
    users = json.loads(USERS.read_text())["users"]
    assert {u["username"] for u in users} == set(DEMO_USERS)
    for user in users:
        assert user["password_hash"].startswith("$argon2id$")
        assert DEMO_USERS[user["username"]][0] not in user["password_hash"]
