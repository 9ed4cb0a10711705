//! Micro-benchmark of RSA signature verification, old path vs new path, for
//! running inside V8 (node's WASI, the engine Envoy embeds) and natively.
//! See bench/v8/README.md; `bench/v8/run.sh` builds and runs both.
//!
//! - old: jwt-compact `Rsa::rs256()` / `ps256()` over the `rsa` crate (what
//!   `jws::verify_signature` used before `rsa_verify`), including the
//!   per-call `RsaSignature` parse, as `jws` did it.
//! - new: `rsa_verify::RsaVerifier` (key prepared once).
//! - jws: `jws::verify_signature` end to end (the new path plus dispatch).
//! - raw: the exponentiation alone, `rsa_verify` against textbook CIOS on
//!   u32 and u64 limbs (the limb-size choice).
//!
//! Each verify case: SHA-256 of a ~350-byte signing input + one RSA verify.
//! The cases of one key size run interleaved, round after round (so load
//! from other processes hits them alike), timed on the process CPU-time
//! clock; one line per case: median and minimum microseconds per call.
//! `crypto_bench quick` for a smoke run; other arguments select cases by
//! substring (`crypto_bench raw old`).

// A benchmark program: setup failures may abort it.
#![allow(clippy::expect_used, clippy::panic)]

use jwt_authn::alg::Alg;
use jwt_authn::jwk::KeyMaterial;
use jwt_authn::jws::verify_signature;
use jwt_authn::rsa_verify::{HashAlg, RsaVerifier};
use jwt_compact::alg::Rsa;
use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
use rand::SeedableRng as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest as _, Sha256};
use std::hint::black_box;

/// Throwaway benchmark keys as (p, q), e = 65537 (generating keys at start
/// would dominate a short run).
const KEY_2048: (&str, &str) = (
    "ebb2e0769f2a8f70d977a9e144d993e62d1943da9e9caa5c52fe0135aa4e5b7da0af1b9439fcdd49cc48e4681517b438861add94f8b3f013c2918ee349dd60f9dcc597f7a4ae0028b5dfe4c160f9af9c019f4957e08bed08c3bddb504196857fcb96a05fc1bdb84bbd502d8ad9c1b50ae799f679d058a2414acbc996185f87c1",
    "cba3e54d7662f07b4eecc5171dd82f101610fd57eb93e618f657493e3847d6a190de794bcde12a40919c7861a4e7313b393081864e3a294fca5ab088cd1cba13a3bc91b4b7d65b63628f549b7458af2837c81fdbdc4777627d3807ac5de8b6578b82ff635dc02661be18316944fe34cf59eea7d5ce1310b585624575d25b0449",
);
const KEY_4096: (&str, &str) = (
    "d771cbfb174a1a13593761d8a81f2434122146ec0438e8caa35b8d7b9bdd7ab5788c56869a0026e1f653b972ba71cf8c08a6c827097a853ccf77888a3c03aa4deb06f146b43c5d9949e5f6d4af22d0ce74ee21a53c1f1ab1a156191f284ce79efedb1fbcbedbdcb5995c50f3d4f72cd7c929cab622f9c9fb57ef0de552d01c3a9d843d57c78540eba0347e469350ab3339862965e6a11ce299cd1a7a05d130297fcc8b4fa7cb862188283ff98eee3bad92914571f601716f8c41aa9692c3440a602694b97e529ed1215a8058bf961d6b3bf78c701bcf27b39c2effb42144bb09bdba56360e26046975999b55f69810674355336dca47ac2d3ba620acad3f051b",
    "ded31f6b1023cb4db5fb193a0a364e7e727744941fe65017cc0df1c312e2ab3cec374e57518812211036f2a94edd586897ea3f898d8f9746147cc009d3f6ec149ed22a99d3b1ba234db8d5d92025b4ef3433154f55da596055d2553cb0097dcbbd91122af760ea51f16dc44e0bfd7f87060d655e10d4fa315b343a3c4fa3faf7f9b8f71d34dcc75f9a9a32d1e3b0559a1012909097a11775b5f002e0159a7fe5338337c97ea911f77ae984092639c80ad16ee99484a9c97194057cbd1cd647b3f62eca332f1dd8971632196521b9a0db36a2f21c01a90bf5446d52b8c0956eb3f5493a1a6f37a9f6ffbc56ac4553ac959e67263f1a36eb3580b8a01f7f2909bd",
);

/// A typical signing input: base64url header "." payload.
const SIGNING_INPUT: &[u8] = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlbmNoLWtleS0xIiwidHlwIjoiSldUIn0.\
eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsInN1YiI6InVzZXItMTIzNDU2Nzg5MCIsImF1ZCI6WyJhcGkuZXhhbXBsZS5jb20iXSwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3MDAwMDAwMDAsInNjb3BlIjoicmVhZCB3cml0ZSIsImVtYWlsIjoidXNlckBleGFtcGxlLmNvbSJ9";

/// Process CPU time in nanoseconds (time spent descheduled while other
/// processes run does not count).
#[cfg(target_os = "wasi")]
fn cpu_ns() -> u64 {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
    }
    const PROCESS_CPUTIME_ID: u32 = 2;
    let mut t = 0u64;
    // SAFETY: a WASI preview1 import writing one u64 through a valid pointer.
    let errno = unsafe { clock_time_get(PROCESS_CPUTIME_ID, 1, &mut t) };
    assert_eq!(errno, 0, "clock_time_get");
    t
}

/// Process CPU time in nanoseconds.
#[cfg(all(unix, not(target_os = "wasi")))]
fn cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: libc's clock_gettime writing one timespec through a valid pointer.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    (t.sec as u64) * 1_000_000_000 + t.nsec as u64
}

/// Textbook CIOS Montgomery exponentiation (s^65537 mod n) on full-width
/// limbs, the alternatives `rsa_verify` was measured against when choosing
/// its limb size: u32 limbs with u64 products, and u64 limbs with u128
/// products (which wasm32 lacks natively: a libcall per product).
macro_rules! cios_kernel {
    ($name:ident, $T:ty, $D:ty) => {
        mod $name {
            const BITS: u32 = <$T>::BITS;

            pub struct Mont {
                n: Vec<$T>,
                n0_inv: $T,
                r2: Vec<$T>,
            }

            impl Mont {
                /// From big-endian modulus bytes.
                pub fn new(n_be: &[u8]) -> Mont {
                    let n = super::limbs::<$T>(n_be);
                    let mut inv: $T = 1;
                    for _ in 0..7 {
                        inv = inv.wrapping_mul((2 as $T).wrapping_sub(n[0].wrapping_mul(inv)));
                    }
                    let mut m = Mont {
                        n0_inv: inv.wrapping_neg(),
                        r2: vec![0; n.len()],
                        n,
                    };
                    // R^2 mod n by doubling 1, 2 * BITS * limbs times.
                    let mut x = vec![0 as $T; m.n.len()];
                    x[0] = 1;
                    for _ in 0..2 * BITS as usize * m.n.len() {
                        let mut carry = 0;
                        for v in x.iter_mut() {
                            let top = *v >> (BITS - 1);
                            *v = (*v << 1) | carry;
                            carry = top;
                        }
                        if carry == 1 || !m.less(&x) {
                            m.sub(&mut x);
                        }
                    }
                    m.r2 = x;
                    m
                }

                fn less(&self, x: &[$T]) -> bool {
                    for (a, b) in x.iter().rev().zip(self.n.iter().rev()) {
                        if a != b {
                            return a < b;
                        }
                    }
                    false
                }

                fn sub(&self, x: &mut [$T]) {
                    let mut borrow = false;
                    for (a, b) in x.iter_mut().zip(&self.n) {
                        let (d, b1) = a.overflowing_sub(*b);
                        let (d, b2) = d.overflowing_sub(borrow as $T);
                        *a = d;
                        borrow = b1 || b2;
                    }
                }

                /// t[..l] = a * b / R mod n (t has l + 2 limbs).
                fn mul(&self, a: &[$T], b: &[$T], t: &mut [$T]) {
                    let l = self.n.len();
                    t.fill(0);
                    for &ai in a {
                        let ai = ai as $D;
                        let mut c: $D = 0;
                        for (tj, &bj) in t.iter_mut().zip(b) {
                            let s = *tj as $D + ai * bj as $D + c;
                            *tj = s as $T;
                            c = s >> BITS;
                        }
                        let s = t[l] as $D + c;
                        t[l] = s as $T;
                        t[l + 1] = (s >> BITS) as $T;
                        let m = t[0].wrapping_mul(self.n0_inv) as $D;
                        let mut c = (t[0] as $D + m * self.n[0] as $D) >> BITS;
                        for j in 1..l {
                            let s = t[j] as $D + m * self.n[j] as $D + c;
                            t[j - 1] = s as $T;
                            c = s >> BITS;
                        }
                        let s = t[l] as $D + c;
                        t[l - 1] = s as $T;
                        t[l] = t[l + 1] + (s >> BITS) as $T;
                    }
                    if t[l] != 0 || !self.less(&t[..l]) {
                        self.sub(&mut t[..l]);
                    }
                }

                /// s^65537 mod n, `s` big-endian.
                pub fn pow65537(&self, s_be: &[u8]) -> Vec<$T> {
                    let l = self.n.len();
                    let s = super::limbs::<$T>(s_be);
                    let mut t = vec![0 as $T; l + 2];
                    self.mul(&s, &self.r2, &mut t);
                    let s_m = t[..l].to_vec();
                    let mut x = s_m.clone();
                    for _ in 0..16 {
                        let y = x.clone();
                        self.mul(&y, &y, &mut t);
                        x.copy_from_slice(&t[..l]);
                    }
                    self.mul(&x.clone(), &s_m, &mut t);
                    x.copy_from_slice(&t[..l]);
                    let mut one = vec![0 as $T; l];
                    one[0] = 1;
                    self.mul(&x, &one, &mut t);
                    t[..l].to_vec()
                }
            }
        }
    };
}
cios_kernel!(cios32, u32, u64);
cios_kernel!(cios64, u64, u128);

/// Big-endian bytes to little-endian full-width limbs.
fn limbs<T: Copy + From<u8> + std::ops::Shl<u32, Output = T> + std::ops::BitOr<Output = T>>(
    be: &[u8],
) -> Vec<T> {
    let width = std::mem::size_of::<T>();
    be.rchunks(width)
        .map(|c| c.iter().fold(T::from(0), |acc, &b| (acc << 8) | T::from(b)))
        .collect()
}

fn private_key((p, q): (&str, &str)) -> RsaPrivateKey {
    let int = |h: &str| BigUint::parse_bytes(h.as_bytes(), 16).expect("hex prime");
    RsaPrivateKey::from_p_q(int(p), int(q), BigUint::from(65537u32)).expect("valid primes")
}

type Case<'a> = (String, Box<dyn FnMut() -> bool + 'a>);

/// Runs the cases interleaved: a warm-up (lets V8 tier up to TurboFan),
/// then `rounds` rounds of ~`slice_ms` per case. Prints median and minimum
/// microseconds per call.
fn run(cases: &mut [Case<'_>], rounds: usize, slice_ms: u64) {
    let slice_ns = slice_ms * 1_000_000;
    // Warm-up, and calibration of the calls per slice.
    let mut per_slice = Vec::new();
    for (name, f) in cases.iter_mut() {
        let start = cpu_ns();
        let mut n = 0u64;
        while cpu_ns() - start < 2 * slice_ns || n < 3 {
            assert!(black_box(f()), "{name}: verification failed");
            n += 1;
        }
        per_slice.push((n / 2).max(1));
    }
    let mut samples = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in cases.iter_mut().enumerate() {
            let start = cpu_ns();
            for _ in 0..per_slice[i] {
                assert!(black_box(f()));
            }
            samples[i].push((cpu_ns() - start) as f64 / 1000.0 / per_slice[i] as f64);
        }
    }
    for ((name, _), s) in cases.iter().zip(&mut samples) {
        s.sort_by(f64::total_cmp);
        println!(
            "{name:<40} median {:>9.1} us   min {:>9.1} us",
            s[s.len() / 2],
            s[0]
        );
    }
}

fn bench_key(label: &str, sk: &RsaPrivateKey, rounds: usize, slice_ms: u64) {
    let pk: RsaPublicKey = sk.to_public_key();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let digest = Sha256::digest(SIGNING_INPUT);
    let rs_sig = sk
        .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
        .expect("sign");
    let ps_sig = sk
        .sign_with_rng(&mut rng, Pss::new_with_salt::<Sha256>(32), &digest)
        .expect("sign");
    let spki = pk.to_public_key_der().expect("spki");
    let material = KeyMaterial::from_spki_der(spki.as_bytes()).expect("key");
    let v = RsaVerifier::new(&pk.n().to_bytes_be(), &pk.e().to_bytes_be()).expect("key");
    let (n_be, e_be) = (pk.n().to_bytes_be(), pk.e().to_bytes_be());
    // The limb-size alternatives must compute the same s^e mod n.
    let (c32, c64) = (cios32::Mont::new(&n_be), cios64::Mont::new(&n_be));
    let expected = v.public_op(&rs_sig).expect("public op");
    assert_eq!(c32.pow65537(&rs_sig), limbs::<u32>(&expected));
    assert_eq!(c64.pow65537(&rs_sig), limbs::<u64>(&expected));

    let old = |alg: &Rsa, sig: &[u8]| {
        let sig = <Rsa as jwt_compact::Algorithm>::Signature::try_from_slice(sig);
        match sig {
            Ok(sig) => alg.verify_signature(&sig, &pk, black_box(SIGNING_INPUT)),
            Err(_) => false,
        }
    };
    let (rs256, ps256) = (Rsa::rs256(), Rsa::ps256());
    let name = |what: &str| format!("{label} {what}");
    let mut cases: Vec<Case<'_>> = vec![
        (
            name("RS256 old (jwt-compact/rsa)"),
            Box::new(|| old(&rs256, &rs_sig)),
        ),
        (
            name("RS256 new (rsa_verify)"),
            Box::new(|| v.verify_pkcs1v15(HashAlg::Sha256, black_box(SIGNING_INPUT), &rs_sig)),
        ),
        (
            name("RS256 new via jws::verify_signature"),
            Box::new(|| verify_signature(Alg::Rs256, &material, black_box(SIGNING_INPUT), &rs_sig)),
        ),
        (
            name("PS256 old (jwt-compact/rsa)"),
            Box::new(|| old(&ps256, &ps_sig)),
        ),
        (
            name("PS256 new (rsa_verify)"),
            Box::new(|| v.verify_pss(HashAlg::Sha256, black_box(SIGNING_INPUT), &ps_sig)),
        ),
        (
            name("raw s^e mod n (new, 28-bit limbs)"),
            Box::new(|| v.public_op(black_box(&rs_sig)).is_some()),
        ),
        (
            name("raw, textbook CIOS u32 limbs"),
            Box::new(|| !c32.pow65537(black_box(&rs_sig)).is_empty()),
        ),
        (
            name("raw, textbook CIOS u64 limbs"),
            Box::new(|| !c64.pow65537(black_box(&rs_sig)).is_empty()),
        ),
        (
            name("SHA-256 of the input"),
            Box::new(|| black_box(Sha256::digest(black_box(SIGNING_INPUT)))[0] != 1),
        ),
        (
            name("key prepare (new, once per key)"),
            Box::new(|| RsaVerifier::new(black_box(&n_be), &e_be).is_ok()),
        ),
    ];
    // Other arguments than `quick` select cases by substring.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| a != "quick").collect();
    cases.retain(|(name, _)| {
        filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
    });
    run(&mut cases, rounds, slice_ms);
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let (rounds, slice_ms) = if quick { (5, 10) } else { (25, 20) };
    println!(
        "target: {} ({}), {rounds} rounds",
        std::env::consts::ARCH,
        if cfg!(target_family = "wasm") {
            "wasm"
        } else {
            "native"
        }
    );
    bench_key("2048", &private_key(KEY_2048), rounds, slice_ms);
    bench_key("4096", &private_key(KEY_4096), rounds, slice_ms);
}
