//! The Workers Cache API as the core's `SharedCache`: small text values under synthetic URLs,
//! kept for their `cache-control` lifetime in this location. Best effort: any failure is a miss.

use crate::ports::SharedCache;
use wasm_bindgen::JsValue;
use worker::{Cache, Headers, Response};

/// The synthetic origin of cached entries; never fetched.
const ORIGIN: &str = "https://taskrouter.cache.internal/";

/// Opened only when used (the cascade's unsure requests), not on every request.
pub struct EdgeCache;

/// The location's default cache, when the runtime has the Cache API.
fn default_cache() -> Option<Cache> {
    let present =
        js_sys::Reflect::has(&js_sys::global(), &JsValue::from_str("caches")).unwrap_or(false);
    present.then(Cache::default)
}

impl SharedCache for EdgeCache {
    async fn get_text(&self, key: &str) -> Option<String> {
        let cache = default_cache()?;
        let mut found = cache.get(format!("{ORIGIN}{key}"), false).await.ok()??;
        found.text().await.ok()
    }

    async fn put_text(&self, key: &str, value: &str, ttl_s: u64) {
        let Some(cache) = default_cache() else {
            return;
        };
        let headers = Headers::new();
        if headers
            .set("cache-control", &format!("public, max-age={ttl_s}"))
            .is_err()
        {
            return;
        }
        if let Ok(response) = Response::ok(value) {
            let _ = cache
                .put(format!("{ORIGIN}{key}"), response.with_headers(headers))
                .await;
        }
    }
}
