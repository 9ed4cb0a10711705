//! jwt-authn-wasm: the proxy-wasm shell.
//!
//! The only code that talks to Envoy. It reads the plugin configuration once
//! (`root`), copies each request's headers into the core's `Request` and
//! carries out the core's `Decision` (`http`), runs the JWKS fetches with
//! callouts and keeps the per-VM view of the shared key cache (`keys`), and
//! exposes counters (`metrics`). All deciding happens in the `jwt_authn` core.

// Natively only its tests use it.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod alloc;
mod apply;
mod host;
mod http;
mod keys;
mod metrics;
mod root;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

/// Small blocks recycled per size class (see `alloc`); only where the VM is
/// single-threaded, which the lists rely on.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: alloc::SmallBlocks<std::alloc::System> =
    alloc::SmallBlocks::new(std::alloc::System);

proxy_wasm::main! {{
    // Also installs the SDK's panic hook, so a panic (which must not happen)
    // is at least logged before the VM aborts.
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::Root::new(context_id))
    });
}}
