//! The least a filter can do to check a new token's signature in Envoy:
//! the benchmark's `ffi_floor` target (`bench/bench.py`).
//!
//! Per request it reads `authorization`, base64url-decodes the signature and
//! asks the host's `verify_signature` foreign function, with the key's DER
//! prepared once at configure (through the same `host_crypto::prepare` the
//! module uses). No header or claim parsing, no `kid`, no caches, no header
//! injection, no counters: the key is chosen by the signature's length (256
//! bytes RS256, 64 bytes ES256). That is the experiment behind the
//! performance issue's "1.09x native" row, so the report can show how far
//! the module's full work is from it in the same run.
//!
//! Configuration (a `StringValue`): lines `RS256 <base64url SPKI DER>` and
//! `ES256 <base64url SPKI DER>`.

use jwt_authn::alg::Alg;
use jwt_authn::host_crypto::{self, HostCheck};
use jwt_authn::jwk::KeyMaterial;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot::default()) });
}}

/// The keys, by the algorithm they serve.
#[derive(Default)]
struct Keys {
    rs256: Option<KeyMaterial>,
    es256: Option<KeyMaterial>,
}

#[derive(Default)]
struct FloorRoot {
    keys: Rc<Keys>,
}

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let text = self.get_plugin_configuration().unwrap_or_default();
        let mut keys = Keys::default();
        for line in String::from_utf8_lossy(&text).lines() {
            let Some((alg, der)) = line.trim().split_once(' ') else {
                continue;
            };
            let key = jwt_authn::b64::decode_strict(der.trim())
                .ok()
                .and_then(|d| KeyMaterial::from_spki_der(&d).ok());
            match alg {
                "RS256" => keys.rs256 = key,
                "ES256" => keys.es256 = key,
                _ => {}
            }
        }
        self.keys = Rc::new(keys);
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Floor {
            keys: self.keys.clone(),
        }))
    }
}

struct Floor {
    keys: Rc<Keys>,
}

impl Floor {
    fn signature_ok(&self) -> Option<bool> {
        let header = self.get_http_request_header("authorization")?;
        let token = header.strip_prefix("Bearer ")?;
        let (signing_input, signature) = token.rsplit_once('.')?;
        let signature = jwt_authn::b64::decode_strict(signature).ok()?;
        let (alg, key) = match signature.len() {
            256 => (Alg::Rs256, self.keys.rs256.as_ref()?),
            64 => (Alg::Es256, self.keys.es256.as_ref()?),
            _ => return Some(false),
        };
        match host_crypto::prepare(alg, key, signing_input.as_bytes(), &signature) {
            HostCheck::Request(args) => {
                let answer = proxy_wasm::hostcalls::call_foreign_function(
                    host_crypto::FUNCTION,
                    Some(&args),
                )
                .ok()??;
                host_crypto::read_result(&answer)
            }
            HostCheck::Verdict(v) => Some(v),
            HostCheck::NotDelegable => None,
        }
    }
}

impl Context for Floor {}

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.signature_ok() == Some(true) {
            return Action::Continue;
        }
        self.send_http_response(401, vec![], None);
        Action::Pause
    }
}
