//! Envoy counters and gauges (visible at `/stats` and `/stats/prometheus`).
//!
//! Names: `jwt_authn_wasm.[<stat_prefix>.]requests.allowed`,
//! `...requests.denied.<reason>`, and per remote provider
//! `...jwks.<provider>.{fetch_success,fetch_failed,unknown_kid_refetch,requests_paused}`
//! (counters) and `...jwks.<provider>.{keys,skipped_keys,stale_keys_in_use}`
//! (gauges); `...token_cache.{local_hit,shared_hit,miss}` and
//! `...signature_verifications` (counters, published every 100 ms tick),
//! `...wasm_memory_bytes` (gauge: one VM's linear memory) and
//! `...token_cache.in_vm_memory` (gauge: 1 while the one VM serving this
//! configuration keeps the proxy-wide cache in its own memory, 0 while the
//! cache is in shared data) and `...token_cache.sampled` (gauge: 1 while the
//! proxy-wide cache does not hit and only 1 new token in 16 takes part). The request
//! counters are also gathered in the VM and published on the tick, so they
//! trail the traffic by up to 100 ms. Every VM defines the same names, so
//! Envoy sums the counters across workers.

use jwt_authn::reason::Reason;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::Cell;
use std::collections::HashMap;

/// Metric ids of one root context, and the request outcomes counted since
/// the last tick: those are published on the tick (as the cache counters),
/// so counting a request costs no host call.
#[derive(Debug, Default)]
pub struct Metrics {
    prefix: String,
    by_reason: [Option<u32>; Reason::ALL.len()],
    pending: [Cell<u64>; Reason::ALL.len()],
    providers: HashMap<usize, ProviderMetrics>,
    cache: CacheMetrics,
}

/// Metric ids of the verified-token caches and the VM.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheMetrics {
    pub local_hit: Option<u32>,
    pub shared_hit: Option<u32>,
    pub miss: Option<u32>,
    pub verifications: Option<u32>,
    pub vm_memory_bytes: Option<u32>,
    pub in_vm_memory: Option<u32>,
    pub sampled: Option<u32>,
}

/// Metric ids of one remote provider.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProviderMetrics {
    pub fetch_success: Option<u32>,
    pub fetch_failed: Option<u32>,
    pub unknown_kid_refetch: Option<u32>,
    pub requests_paused: Option<u32>,
    pub keys: Option<u32>,
    pub skipped_keys: Option<u32>,
    pub stale_keys_in_use: Option<u32>,
}

fn define(t: MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(t, name).ok()
}

/// Metric names may not carry dots or spaces from user input.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Metrics {
    /// Defines the request counters.
    pub fn new(stat_prefix: &str) -> Metrics {
        let prefix = if stat_prefix.is_empty() {
            "jwt_authn_wasm".to_string()
        } else {
            format!("jwt_authn_wasm.{}", sanitize(stat_prefix))
        };
        let by_reason = Reason::ALL.map(|r| {
            let name = match r {
                Reason::Allowed => format!("{prefix}.requests.allowed"),
                other => format!("{prefix}.requests.denied.{}", other.code()),
            };
            define(MetricType::Counter, &name)
        });
        let cache = CacheMetrics {
            local_hit: define(
                MetricType::Counter,
                &format!("{prefix}.token_cache.local_hit"),
            ),
            shared_hit: define(
                MetricType::Counter,
                &format!("{prefix}.token_cache.shared_hit"),
            ),
            miss: define(MetricType::Counter, &format!("{prefix}.token_cache.miss")),
            verifications: define(
                MetricType::Counter,
                &format!("{prefix}.signature_verifications"),
            ),
            vm_memory_bytes: define(MetricType::Gauge, &format!("{prefix}.wasm_memory_bytes")),
            in_vm_memory: define(
                MetricType::Gauge,
                &format!("{prefix}.token_cache.in_vm_memory"),
            ),
            sampled: define(MetricType::Gauge, &format!("{prefix}.token_cache.sampled")),
        };
        Metrics {
            prefix,
            by_reason,
            pending: Default::default(),
            providers: HashMap::new(),
            cache,
        }
    }

    /// Defines a remote provider's metrics.
    pub fn add_provider(&mut self, id: usize, name: &str) {
        let base = format!("{}.jwks.{}", self.prefix, sanitize(name));
        let m = ProviderMetrics {
            fetch_success: define(MetricType::Counter, &format!("{base}.fetch_success")),
            fetch_failed: define(MetricType::Counter, &format!("{base}.fetch_failed")),
            unknown_kid_refetch: define(
                MetricType::Counter,
                &format!("{base}.unknown_kid_refetch"),
            ),
            requests_paused: define(MetricType::Counter, &format!("{base}.requests_paused")),
            keys: define(MetricType::Gauge, &format!("{base}.keys")),
            skipped_keys: define(MetricType::Gauge, &format!("{base}.skipped_keys")),
            stale_keys_in_use: define(MetricType::Gauge, &format!("{base}.stale_keys_in_use")),
        };
        self.providers.insert(id, m);
    }

    /// Counts one request outcome (published on the next tick).
    pub fn count(&self, r: Reason) {
        if let Some(c) = self.pending.get(r.index()) {
            c.set(c.get().wrapping_add(1));
        }
    }

    /// Publishes the outcomes counted since the last call.
    pub fn flush(&self) {
        for (pending, id) in self.pending.iter().zip(self.by_reason) {
            let n = pending.replace(0);
            if n > 0 {
                add(id, n);
            }
        }
    }

    /// The token caches' ids.
    pub fn cache(&self) -> CacheMetrics {
        self.cache
    }

    /// A provider's ids.
    pub fn provider(&self, id: usize) -> ProviderMetrics {
        self.providers.get(&id).copied().unwrap_or_default()
    }
}

/// Adds one to a counter.
pub fn inc(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

/// Adds `n` to a counter.
pub fn add(id: Option<u32>, n: u64) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Sets a gauge.
pub fn set(id: Option<u32>, value: u64) {
    if let Some(id) = id {
        let _ = hostcalls::record_metric(id, value);
    }
}
