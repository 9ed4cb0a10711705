//! The root context: configuration, the key cache, waiting requests, ticks.

use crate::apply::{self, Next};
use crate::host;
use crate::http::Http;
use crate::keys::{self, Keys};
use crate::metrics::{self, Metrics};
use jwt_authn::config::{Config, ProviderId, SignatureBackendChoice};
use jwt_authn::decision::{Decision, FetchCause};
use jwt_authn::engine::{self, EvalContext};
use jwt_authn::host_crypto;
use jwt_authn::request::Request;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// How often the root context looks at the shared cache and fetch schedule.
const TICK: Duration = Duration::from_millis(100);

/// A request paused until a provider's keys change.
pub struct Waiter {
    ctx: u32,
    req: Request,
    provider: ProviderId,
    cause: FetchCause,
    already: Vec<(ProviderId, FetchCause)>,
    generation: u64,
    deadline: u64,
}

/// State shared by the root context and its HTTP contexts (same VM thread).
pub struct Shared {
    pub config: Option<Arc<Config>>,
    pub metrics: Metrics,
    pub keys: Keys,
    waiters: Vec<Waiter>,
    /// This root context's id among the VMs (fetch leases, the cache roster).
    pub me: u64,
}

impl Shared {
    /// Parks a request until `provider`'s keys change (or its wait budget ends).
    pub fn wait(
        &mut self,
        ctx: u32,
        req: Request,
        provider: ProviderId,
        cause: FetchCause,
        already: Vec<(ProviderId, FetchCause)>,
        now: u64,
    ) {
        if cause == FetchCause::UnknownKid {
            let m = &self.metrics;
            if !self.keys.request_unknown_kid(provider, now, m) {
                // Rate-limited between the check and here: evaluate again without waiting.
                log::debug!("unknown kid refetch rate-limited");
            }
        }
        // A request that waits for a fetch: the callout is on its path.
        metrics::inc(self.metrics.provider(provider).requests_paused);
        let (generation, budget) = match self.keys.provider(provider) {
            Some(p) => (p.view.generation, keys::wait_budget(&p.cfg)),
            None => (0, 0),
        };
        self.waiters.push(Waiter {
            ctx,
            req,
            provider,
            cause,
            already,
            generation,
            deadline: now.saturating_add(budget),
        });
    }

    /// Drops a finished request's waiter.
    pub fn forget(&mut self, ctx: u32) {
        self.waiters.retain(|w| w.ctx != ctx);
    }

    /// Resumes (or answers) every waiter whose provider has news.
    fn wake(&mut self, now: u64) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let mut ready = Vec::new();
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            let news = match self.keys.provider(w.provider) {
                Some(p) => {
                    p.view.generation != w.generation
                        || p.view.cold_start_failed(&p.cfg)
                        || p.view.failures > p.cfg.num_retries
                        || (w.cause == FetchCause::UnknownKid && !p.view.unknown_kid_in_flight())
                }
                None => true,
            };
            if news || now >= w.deadline {
                ready.push(self.waiters.swap_remove(i));
            } else {
                i += 1;
            }
        }
        for w in ready {
            let mut already = w.already.clone();
            already.push((w.provider, w.cause));
            let ctx = EvalContext {
                now: now / 1000,
                already_fetched: already.clone(),
            };
            let decision = engine::evaluate(&config, &w.req, &self.keys.at(now), &ctx);
            if hostcalls::set_effective_context(w.ctx).is_err() {
                continue; // the request is gone
            }
            match &decision {
                Decision::FetchKeys { provider, cause } => {
                    self.wait(w.ctx, w.req, *provider, *cause, already, now);
                }
                _ => {
                    if apply::apply(&config, &self.metrics, &decision, w.req.path_only())
                        == Next::Continue
                    {
                        let _ = hostcalls::resume_http_request();
                    }
                }
            }
        }
    }
}

/// One root context per plugin configuration per VM.
pub struct Root {
    id: u32,
    shared: Rc<RefCell<Shared>>,
}

impl Root {
    /// A root context with no configuration yet.
    pub fn new(id: u32) -> Root {
        let shared = Shared {
            config: None,
            metrics: Metrics::default(),
            keys: Keys::default(),
            waiters: Vec::new(),
            me: host::random_u64(),
        };
        Root {
            id,
            shared: Rc::new(RefCell::new(shared)),
        }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let now = host::now_ms();
        if let Ok(mut s) = self.shared.try_borrow_mut() {
            let Shared { keys, metrics, .. } = &mut *s;
            keys.on_response(token, num_headers, body_size, now, metrics);
            s.wake(now);
        }
        let _ = hostcalls::set_effective_context(self.id);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(
            proxy_wasm::types::BufferType::PluginConfiguration,
            0,
            usize::MAX,
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        match Config::parse(&bytes) {
            Ok(config) => {
                let mut metrics = Metrics::new(&config.stat_prefix);
                let config_hash = keys::fnv(&[&String::from_utf8_lossy(&bytes)]);
                let mut keys = Keys::new(&config, &mut metrics, config_hash);
                keys.host_crypto = config.signature_backend == SignatureBackendChoice::Auto
                    && host_crypto::probe(|args| {
                        host::foreign_call(host_crypto::FUNCTION, args)
                            .and_then(|answer| host_crypto::read_result(&answer))
                    });
                keys.sync_shared_secret();
                let remote = config
                    .providers
                    .iter()
                    .filter(|p| matches!(p.keys, jwt_authn::config::KeySource::Remote(_)))
                    .count();
                log::info!(
                    "jwt_authn_wasm: configuration loaded: {} providers ({} remote), {} rules; signatures: {}",
                    config.providers.len(),
                    remote,
                    config.rules.len(),
                    if keys.host_crypto {
                        "host verify_signature for RS*/ES*, built-in for the rest"
                    } else if config.signature_backend == SignatureBackendChoice::Portable {
                        "built-in (signature_backend: portable)"
                    } else {
                        "built-in (the host's verify_signature is missing or failed the probe)"
                    }
                );
                if let Ok(mut s) = self.shared.try_borrow_mut() {
                    s.config = Some(Arc::new(config));
                    s.metrics = metrics;
                    s.keys = keys;
                }
                // Fetching starts on the first tick (no callouts from VM start);
                // ticks also publish the cache counters, so they always run.
                let _ = hostcalls::set_tick_period(TICK);
                true
            }
            Err(e) => {
                log::error!("jwt_authn_wasm: invalid configuration: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let now = host::now_ms();
        if let Ok(mut s) = self.shared.try_borrow_mut() {
            let me = s.me;
            let Shared { keys, metrics, .. } = &mut *s;
            keys.tick(now, me, metrics);
            keys.sync_shared_secret();
            keys.place_shared_cache(me, now, metrics);
            keys.flush_counts(metrics);
            metrics.flush();
            s.wake(now);
        }
        let _ = hostcalls::set_effective_context(self.id);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            id: context_id,
            shared: self.shared.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
