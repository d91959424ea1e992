//! Workers KV as the core's `KvStore`.

use crate::ports::{KvStore, StoreError};

/// Edge cache lifetime of KV reads, in seconds (60 is the platform's minimum). The isolate cache in
/// the core decides how often KV is asked at all.
const KV_CACHE_TTL_SECONDS: u64 = 60;

pub struct Kv {
    store: worker::kv::KvStore,
}

impl Kv {
    pub fn new(store: worker::kv::KvStore) -> Self {
        Kv { store }
    }
}

impl KvStore for Kv {
    async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store
            .get(key)
            .cache_ttl(KV_CACHE_TTL_SECONDS)
            .text()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn put_text(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.store
            .put(key, value)
            .map_err(|e| StoreError(e.to_string()))?
            .execute()
            .await
            .map_err(|e| StoreError(e.to_string()))
    }
}
