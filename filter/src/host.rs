//! Small, non-panicking wrappers over host calls the SDK would unwrap.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};
use std::time::{SystemTime, UNIX_EPOCH};

/// Host clock in milliseconds since the epoch (0 if the host cannot say).
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Request headers as UTF-8 strings; invalid bytes become U+FFFD instead of a
/// panic (the SDK's `get_http_request_headers` unwraps UTF-8).
pub fn request_headers() -> Vec<(String, String)> {
    hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

/// One callout response header, lossy UTF-8.
pub fn call_response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Shared data read: (value, cas).
pub fn shared_get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    hostcalls::get_shared_data(key).unwrap_or((None, None))
}

/// Shared data write; `Err(CasMismatch)` when someone else wrote first.
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
    hostcalls::set_shared_data(key, Some(value), cas)
}

/// A random u64 from the host's WASI `random_get` (falls back to the clock).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::getrandom(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Uniform sample in [0, 1) for back-off jitter.
pub fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}
