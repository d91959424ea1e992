//! Workers KV as the core's `KvStore`.

use crate::ports::{KvStore, StoreError};
use std::cell::OnceCell;
use wasm_bindgen::JsValue;

/// Edge cache lifetime of KV reads, in seconds (60 is the platform's minimum). The isolate cache in
/// the core decides how often KV is asked at all.
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

    /// Every page of the list, following the cursor until the platform says it is complete.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let store = self.store()?;
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut list = store.list().prefix(prefix.to_string());
            if let Some(c) = cursor.take() {
                list = list.cursor(c);
            }
            let page = list
                .execute()
                .await
                .map_err(|e| StoreError(e.to_string()))?;
            names.extend(page.keys.into_iter().map(|k| k.name));
            match page.cursor.filter(|c| !page.list_complete && !c.is_empty()) {
                Some(c) => cursor = Some(c),
                None => return Ok(names),
            }
        }
    }
}
