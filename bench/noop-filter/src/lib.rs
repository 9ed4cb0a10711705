//! No-op proxy-wasm filter for the benchmark (`bench/bench.py`, target
//! `noop_wasm`).
//!
//! Per request it does the least a JWT filter must do to see a request and
//! change it: read one header (`authorization`) and set one (`x-noop`), then
//! let the request continue. Its cost is what any wasm filter pays in V8
//! (the calls into and out of the VM), so the module's own cost per request
//! is measured against it.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop))
    }
}

struct Noop;

impl Context for Noop {}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // The value is looked at (its presence), as a real filter would.
        let seen = self.get_http_request_header("authorization").is_some();
        self.set_http_request_header("x-noop", Some(if seen { "1" } else { "0" }));
        Action::Continue
    }
}
