//! Workers KV as the core's `KvStore`.

use crate::ports::{KeyPage, KvStore, ListedKey, StoreError};
use std::cell::OnceCell;
use wasm_bindgen::JsValue;

/// Edge cache lifetime of KV reads, in seconds (the platform's default; its minimum is 30). The
/// isolate cache in the core decides how often KV is asked at all. Gateway-key records are read
/// through it too, so a revocation made in one location reaches the others within this plus the
/// isolate's `CACHE_TTL_SECONDS` (docs/operations.md).
const KV_CACHE_TTL_SECONDS: u64 = 60;

/// Opened on first use: most requests find rules and keys in the isolate's cache and never read
/// KV, and opening the binding looks up five of its methods across the JavaScript boundary.
pub struct Kv {
    env: worker::Env,
    binding: &'static str,
    store: OnceCell<worker::kv::KvStore>,
}

impl Kv {
    /// The store behind `binding`, or `None` when the Worker has no such binding.
    pub fn bound(env: &worker::Env, binding: &'static str) -> Option<Kv> {
        let present = js_sys::Reflect::has(env, &JsValue::from_str(binding)).unwrap_or(false);
        present.then(|| Kv {
            env: env.clone(),
            binding,
            store: OnceCell::new(),
        })
    }

    fn store(&self) -> Result<&worker::kv::KvStore, StoreError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let store = self
            .env
            .kv(self.binding)
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(self.store.get_or_init(|| store))
    }
}

impl KvStore for Kv {
    async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store()?
            .get(key)
            .cache_ttl(KV_CACHE_TTL_SECONDS)
            .text()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn put_text(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.store()?
            .put(key, value)
            .map_err(|e| StoreError(e.to_string()))?
            .execute()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn put_text_with_metadata(
        &self,
        key: &str,
        value: &str,
        metadata: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.store()?
            .put(key, value)
            .map_err(|e| StoreError(e.to_string()))?
            .metadata(metadata)
            .map_err(|e| StoreError(e.to_string()))?
            .execute()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    /// One page (up to 1000 keys, the platform's most) with each key's metadata.
    async fn list_page(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        let mut list = self.store()?.list().prefix(prefix.to_string());
        if let Some(c) = cursor {
            list = list.cursor(c.to_string());
        }
        let page = list
            .execute()
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        let cursor = page.cursor.filter(|c| !page.list_complete && !c.is_empty());
        Ok(KeyPage {
            keys: page
                .keys
                .into_iter()
                .map(|k| ListedKey {
                    name: k.name,
                    metadata: k.metadata.filter(|m| !m.is_null()),
                })
                .collect(),
            cursor,
        })
    }
}
