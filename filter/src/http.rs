//! The HTTP context: one request. Copies headers in, evaluates, acts.

use crate::apply::{self, Next};
use crate::host;
use crate::root::Shared;
use jwt_authn::decision::Decision;
use jwt_authn::engine::{self, EvalContext};
use jwt_authn::request::Request;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::Rc;

/// Per-request context.
pub struct Http {
    pub id: u32,
    pub shared: Rc<RefCell<Shared>>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(req) = host::request_header_pairs().and_then(Request::from_host_pairs) else {
            // The host would not show us the request: fail closed.
            let _ = proxy_wasm::hostcalls::send_http_response(
                500,
                vec![],
                Some(b"jwt_authn: internal error"),
            );
            return Action::Pause;
        };
        let Ok(mut shared) = self.shared.try_borrow_mut() else {
            // Cannot happen (the host never nests callbacks); fail closed if it does.
            let _ = proxy_wasm::hostcalls::send_http_response(
                500,
                vec![],
                Some(b"jwt_authn: internal error"),
            );
            return Action::Pause;
        };
        let now_ms = host::now_ms();
        let ctx = EvalContext {
            now: now_ms / 1000,
            already_fetched: Vec::new(),
        };
        let Some(config) = shared.config.clone() else {
            let _ = proxy_wasm::hostcalls::send_http_response(
                503,
                vec![],
                Some(b"jwt_authn: not configured"),
            );
            return Action::Pause;
        };
        {
            let Shared {
                keys, metrics, me, ..
            } = &mut *shared;
            keys.note_serving(*me, now_ms, metrics);
            keys.reload_missing(now_ms, metrics);
        }
        let decision = engine::evaluate(&config, &req, &shared.keys.at(now_ms), &ctx);
        match &decision {
            Decision::FetchKeys { provider, cause } => {
                shared.wait(self.id, req, *provider, *cause, Vec::new(), now_ms);
                Action::Pause
            }
            _ => match apply::apply(&config, &shared.metrics, &decision, req.path_only()) {
                Next::Continue => Action::Continue,
                Next::Replied => Action::Pause,
            },
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        // A client that went away while waiting for keys leaves no waiter behind.
        if let Ok(mut s) = self.shared.try_borrow_mut() {
            s.forget(self.id);
        }
    }
}
