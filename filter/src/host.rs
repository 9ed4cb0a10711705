//! Small, non-panicking wrappers over host calls the SDK would unwrap.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};
use std::time::{SystemTime, UNIX_EPOCH};

/// Host clock in milliseconds since the epoch (0 if the host cannot say).
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The request's headers in the host's serialized map format (one host call,
/// parsed by `Request::from_host_pairs` without the SDK's per-header copies).
/// `None` when the host refuses.
pub fn request_header_pairs() -> Option<Vec<u8>> {
    // SAFETY: the ABI's out-pointer contract, as `host_bytes` requires.
    unsafe {
        host_bytes(|data, size| {
            proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, data, size)
        })
    }
}

// The SDK's wrappers panic on any host status they do not expect (52 sites),
// and a failed callout (reset, truncated body, timeout) answers reads of its
// response with exactly such statuses. These reads go to the ABI directly
// and turn every non-Ok status into "absent". The status is read as a plain
// u32 so an unknown value can never be an invalid enum.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// Calls a host foreign function; `None` when the host has no such function
/// or it failed (any non-Ok status).
pub fn foreign_call(name: &str, args: &[u8]) -> Option<Vec<u8>> {
    // SAFETY: live slices for the call; the ABI's out-pointer contract.
    unsafe {
        host_bytes(|data, size| {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                args.as_ptr(),
                args.len(),
                data,
                size,
            )
        })
    }
}

/// Runs a host call that returns a buffer through out-pointers, and takes
/// ownership of that buffer (the host allocates it through the SDK's exported
/// `proxy_on_memory_allocate`, so the global allocator owns it). `None` on
/// any non-Ok status, whatever the status is.
///
/// # Safety
/// `call` must pass the two pointers to a host function that, on status 0,
/// stores a host-allocated buffer and its size there.
unsafe fn host_bytes(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    if call(&mut data, &mut size) != 0 {
        return None;
    }
    Some(if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    })
}

/// One callout response header, lossy UTF-8; `None` also when the callout
/// failed and there is no response at all.
pub fn call_response_header(name: &str) -> Option<String> {
    // SAFETY: a live slice for the call; the ABI's out-pointer contract.
    let bytes = unsafe {
        host_bytes(|data, size| {
            proxy_get_header_map_value(
                MapType::HttpCallResponseHeaders as u32,
                name.as_ptr(),
                name.len(),
                data,
                size,
            )
        })
    }?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The callout response body (up to `max` bytes); empty when there is none.
pub fn call_response_body(max: usize) -> Vec<u8> {
    // SAFETY: the ABI's out-pointer contract, as `host_bytes` requires.
    unsafe {
        host_bytes(|data, size| {
            proxy_get_buffer_bytes(BufferType::HttpCallResponseBody as u32, 0, max, data, size)
        })
    }
    .unwrap_or_default()
}

/// Shared data read: (value, cas); `(None, None)` when the key is absent or
/// the host answers anything but Ok (the SDK's wrapper panics on an
/// unexpected status).
pub fn shared_get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    let mut cas: u32 = 0;
    // SAFETY: a live slice and a live u32 for the call; the ABI's
    // out-pointer contract, as `host_bytes` requires.
    let value = unsafe {
        host_bytes(|data, size| {
            proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas)
        })
    };
    match value {
        Some(v) => (Some(v), Some(cas)),
        None => (None, None),
    }
}

/// Shared data write (`cas` None: unconditional); `Err(CasMismatch)` when
/// someone else wrote first, `Err(InternalFailure)` for any other refusal.
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
    // SAFETY: live slices for the call.
    let status = unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        )
    };
    match status {
        0 => Ok(()),
        s if s == Status::CasMismatch as u32 => Err(Status::CasMismatch),
        _ => Err(Status::InternalFailure),
    }
}

/// A random u64 from the host's WASI `random_get` (falls back to the clock).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::getrandom(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Sixteen random bytes (the shared token cache's secret); `None` when the
/// host has no randomness (a guessable secret would be worse than no cache).
pub fn random_16() -> Option<[u8; 16]> {
    let mut buf = [0u8; 16];
    getrandom::getrandom(&mut buf).ok()?;
    Some(buf)
}

/// Bytes of this VM's linear memory (what one VM costs the proxy).
pub fn vm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as u64).saturating_mul(65_536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Uniform sample in [0, 1) for back-off jitter.
pub fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}
