//! Workers KV through the Cloudflare REST API, as the core's `KvStore`, so the CLI manages rules
//! versions with exactly the code the Worker's admin API runs. Configured by
//! `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_TOKEN`, `KV_NAMESPACE_ID` (and `CLOUDFLARE_API_BASE`
//! to point elsewhere, as the tests do).

use std::time::Duration;
use taskrouter::ports::{KeyPage, KvStore, ListedKey, StoreError};

pub struct KvApi {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// Unreserved characters stay; everything else in a KV key is percent-encoded for the URL path.
const KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode a KV key for the URL path.
fn encode(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, KEY).to_string()
}

impl KvApi {
    pub fn from_env() -> Result<KvApi, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let account = var("CLOUDFLARE_ACCOUNT_ID").ok_or("CLOUDFLARE_ACCOUNT_ID is not set")?;
        let token = var("CLOUDFLARE_API_TOKEN").ok_or("CLOUDFLARE_API_TOKEN is not set")?;
        let namespace = var("KV_NAMESPACE_ID")
            .ok_or("KV_NAMESPACE_ID is not set (the RULES namespace's id)")?;
        let api = var("CLOUDFLARE_API_BASE")
            .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into());
        for (name, v) in [
            ("CLOUDFLARE_ACCOUNT_ID", &account),
            ("KV_NAMESPACE_ID", &namespace),
        ] {
            if !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("{name} is not an id"));
            }
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Ok(KvApi {
            base: format!(
                "{}/accounts/{account}/storage/kv/namespaces/{namespace}",
                api.trim_end_matches('/')
            ),
            token,
            agent: ureq::Agent::new_with_config(config),
        })
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

impl KvApi {
    /// A write's answer: `Ok` on 2xx, else the API's status and the start of its body.
    fn written(mut res: ureq::http::Response<ureq::Body>, key: &str) -> Result<(), StoreError> {
        let status = res.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = res.body_mut().read_to_string().unwrap_or_default();
        Err(StoreError(format!(
            "the KV API answered HTTP {status} writing {key}: {}",
            text.chars().take(200).collect::<String>()
        )))
    }

    /// A GET to the API: its status and body.
    fn get(&self, url: &str) -> Result<(u16, String), StoreError> {
        let mut res = self
            .agent
            .get(url)
            .header("Authorization", &self.auth())
            .call()
            .map_err(|e| StoreError(format!("the KV API could not be reached: {e}")))?;
        let status = res.status().as_u16();
        let text = res
            .body_mut()
            .read_to_string()
            .map_err(|e| StoreError(e.to_string()))?;
        Ok((status, text))
    }
}

/// A `multipart/form-data` body with the fields `value` and `metadata` (JSON), as the KV API's
/// write with metadata takes it, and its boundary (one that neither field contains).
fn multipart(value: &str, metadata: &str) -> (String, String) {
    let mut boundary = String::from("taskrouter-kv-boundary");
    while value.contains(&boundary) || metadata.contains(&boundary) {
        boundary.push('x');
    }
    let part = |name: &str, text: &str| {
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{text}\r\n")
    };
    let body = format!(
        "{}{}--{boundary}--\r\n",
        part("value", value),
        part("metadata", metadata)
    );
    (boundary, body)
}

impl KvStore for KvApi {
    async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        let url = format!("{}/values/{}", self.base, encode(key));
        let (status, text) = self.get(&url)?;
        match status {
            200 => Ok(Some(text)),
            404 => Ok(None),
            s => Err(StoreError(format!(
                "the KV API answered HTTP {s} for {key}: {}",
                text.chars().take(200).collect::<String>()
            ))),
        }
    }

    async fn put_text(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let url = format!("{}/values/{}", self.base, encode(key));
        let res = self
            .agent
            .put(&url)
            .header("Authorization", &self.auth())
            .header("Content-Type", "text/plain")
            .send(value)
            .map_err(|e| StoreError(format!("the KV API could not be reached: {e}")))?;
        Self::written(res, key)
    }

    async fn put_text_with_metadata(
        &self,
        key: &str,
        value: &str,
        metadata: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let url = format!("{}/values/{}", self.base, encode(key));
        let (boundary, body) = multipart(value, &metadata.to_string());
        let res = self
            .agent
            .put(&url)
            .header("Authorization", &self.auth())
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body)
            .map_err(|e| StoreError(format!("the KV API could not be reached: {e}")))?;
        Self::written(res, key)
    }

    /// One page of names under `prefix`, with their metadata.
    async fn list_page(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        let mut url = format!("{}/keys?prefix={}", self.base, encode(prefix));
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={}", encode(c)));
        }
        let (status, text) = self.get(&url)?;
        if status != 200 {
            return Err(StoreError(format!(
                "the KV API answered HTTP {status} listing keys"
            )));
        }
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| StoreError(e.to_string()))?;
        let keys = (v["result"].as_array().into_iter().flatten())
            .filter_map(|k| {
                Some(ListedKey {
                    name: k["name"].as_str()?.to_string(),
                    metadata: k.get("metadata").filter(|m| !m.is_null()).cloned(),
                })
            })
            .collect();
        let cursor = v
            .pointer("/result_info/cursor")
            .and_then(serde_json::Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        Ok(KeyPage { keys, cursor })
    }
}
