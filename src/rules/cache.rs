//! The rules as this isolate sees them: read from KV at most once per TTL, parsed and validated only
//! when the text changed, and the last good document kept when KV holds a bad one (or cannot be
//! read), with the reason reported so the caller can say so in a log line and a header.
//!
//! Interior mutability on purpose: Workers run one request at a time per isolate thread, and no
//! borrow is held across an `.await`.

use crate::error::{ApiError, ErrorCode};
use crate::ports::{KvStore, ModelFiles};
use crate::rules::{parse_rules, summarize, Rules, RulesError};
use crate::task_model::TaskModel;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// The rules a request runs with.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub rules: Rc<Rules>,
    /// Set when KV holds something unusable and the last good document is served instead.
    pub stale_because: Option<String>,
}

struct Entry {
    text: String,
    rules: Rc<Rules>,
    checked_at_ms: f64,
    stale_because: Option<String>,
}

#[derive(Default)]
pub struct RulesCache {
    entry: RefCell<Option<Entry>>,
}

impl RulesCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The rules to use now, refreshing from `kv` when the cached copy is older than `ttl_ms`.
    pub async fn get(
        &self,
        kv: &impl KvStore,
        files: &impl ModelFiles,
        key: &str,
        now_ms: f64,
        ttl_ms: f64,
    ) -> Result<Loaded, ApiError> {
        if let Some(fresh) = self.fresh(now_ms, ttl_ms) {
            return Ok(fresh);
        }
        let read = read_live(kv, key).await;
        if let Ok(Some(text)) = &read {
            if let Some(same) = self.same_text(text, now_ms) {
                return Ok(same);
            }
        }
        // Parse (and fetch a KV task model) with no borrow of the cache held across `.await`.
        let parsed = match read {
            Ok(Some(text)) => match parse_with_model(&text, files).await {
                Ok(mut rules) => match attach_task_model(kv, &mut rules).await {
                    Ok(()) => Ok((text, rules)),
                    Err(why) => Err(ApiError::new(
                        ErrorCode::RulesInvalid,
                        format!("the rules in KV key \"{key}\" are unusable: {why}"),
                    )),
                },
                Err(errors) => Err(ApiError::new(
                    ErrorCode::RulesInvalid,
                    format!("the rules in KV key \"{key}\" are invalid: {}", summarize(&errors)),
                )),
            },
            Ok(None) => Err(ApiError::new(
                ErrorCode::RulesMissing,
                format!("no rules in KV key \"{key}\"; seed them with the rules CLI or `wrangler kv key put`"),
            )),
            Err(e) => Err(ApiError::new(ErrorCode::RulesUnavailable, format!("reading the rules from KV failed: {}", e.0))),
        };
        let mut slot = self.entry.borrow_mut();
        let problem = match parsed {
            Ok((text, rules)) => {
                let e = slot.insert(Entry {
                    text,
                    rules: Rc::new(rules),
                    checked_at_ms: now_ms,
                    stale_because: None,
                });
                return Ok(loaded(e));
            }
            Err(problem) => problem,
        };
        match slot.as_mut() {
            Some(e) => {
                // Keep serving the last good document; look again after another TTL, not per request.
                e.checked_at_ms = now_ms;
                e.stale_because = Some(problem.message);
                Ok(loaded(e))
            }
            None => Err(problem),
        }
    }

    /// The cached rules, refreshed, when KV still holds the same text.
    fn same_text(&self, text: &str, now_ms: f64) -> Option<Loaded> {
        let mut slot = self.entry.borrow_mut();
        let e = slot.as_mut().filter(|e| e.text == text)?;
        e.checked_at_ms = now_ms;
        e.stale_because = None;
        Some(loaded(e))
    }

    fn fresh(&self, now_ms: f64, ttl_ms: f64) -> Option<Loaded> {
        let slot = self.entry.borrow();
        let e = slot.as_ref()?;
        (now_ms - e.checked_at_ms < ttl_ms && now_ms >= e.checked_at_ms).then(|| loaded(e))
    }
}

/// Parse and validate a rules document, first asking for the built-in task model's files when
/// the document turns the model on and the core has not got them yet: a Worker whose rules do
/// not use the model never reads them.
pub async fn parse_with_model(
    text: &str,
    files: &impl ModelFiles,
) -> Result<Rules, Vec<RulesError>> {
    if crate::task_model::builtin_wanted() && turns_the_model_on(text) {
        files.load_builtin().await;
    }
    parse_rules(text)
}

/// Whether a document has a top-level `classifier` (which validation checks against the built-in
/// model), read without building the document. One that cannot be read this way (not JSON, or a
/// key twice) is taken to have one if the word may be there (written plainly or with an escape):
/// validation then reports what is wrong with it, and nothing about a model not read.
fn turns_the_model_on(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        classifier: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_str::<Probe>(text) {
        Ok(probe) => probe.classifier.is_some(),
        Err(_) => text.contains("lassifier") || text.contains("\\u"),
    }
}

/// Replace the bundled task model by the one the rules name in KV (`classifier.model: "kv:<key>"`):
/// base64 text of a `taskrouter train` file. Read once per rules version. Publish a new model under
/// a new key and point the rules at it: a changed model under the same key is not looked for.
async fn attach_task_model(kv: &impl KvStore, rules: &mut Rules) -> Result<(), String> {
    let Some(config) = rules.task_model.as_mut() else {
        return Ok(());
    };
    let Some(model_key) = config.kv_key.clone() else {
        return Ok(());
    };
    let text = kv
        .get_text(&model_key)
        .await
        .map_err(|e| format!("reading the task model \"{model_key}\" failed: {}", e.0))?
        .ok_or_else(|| format!("no task model in KV key \"{model_key}\""))?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the task model in \"{model_key}\" is not base64: {e}"))?;
    let model = TaskModel::from_bytes(&bytes)
        .map_err(|e| format!("the task model in \"{model_key}\": {e}"))?;
    config.model = Arc::new(model);
    Ok(())
}

/// KV keys of the versioned rules layout (docs/operations.md), from the base key (`rules`).
pub fn live_key(base: &str) -> String {
    format!("{base}:live")
}
pub fn version_key(base: &str, version: u64) -> String {
    format!("{base}:v:{version}")
}
pub fn history_key(base: &str) -> String {
    format!("{base}:history")
}

/// The live rules document: the version `<base>:live` names, stored at `<base>:v:<n>`; without a
/// pointer, the single document at `<base>` (the simple layout).
pub async fn read_live(
    kv: &impl KvStore,
    base: &str,
) -> Result<Option<String>, crate::ports::StoreError> {
    match kv.get_text(&live_key(base)).await? {
        Some(pointer) => match pointer.trim().parse::<u64>() {
            Ok(v) => match kv.get_text(&version_key(base, v)).await? {
                Some(text) => Ok(Some(text)),
                None => Err(crate::ports::StoreError(format!(
                    "{} names version {v}, which is not stored",
                    live_key(base)
                ))),
            },
            Err(_) => Err(crate::ports::StoreError(format!(
                "{} does not hold a version number",
                live_key(base)
            ))),
        },
        None => kv.get_text(base).await,
    }
}

impl RulesCache {
    /// Forget the cached copy, so the next request reads KV (after this isolate changed the rules).
    pub fn invalidate(&self) {
        if let Some(e) = self.entry.borrow_mut().as_mut() {
            e.checked_at_ms = f64::NEG_INFINITY;
        }
    }
}

fn loaded(e: &Entry) -> Loaded {
    Loaded {
        rules: Rc::clone(&e.rules),
        stale_because: e.stale_because.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{CompiledIn, StoreError};
    use futures::executor::block_on;
    use std::cell::Cell;

    #[derive(Default)]
    struct FakeKv {
        value: RefCell<Option<String>>,
        fail: Cell<bool>,
        reads: Cell<u32>,
    }

    impl KvStore for FakeKv {
        async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
            // The simple layout: one document at `rules`, no version pointer.
            if key != "rules" {
                return Ok(None);
            }
            self.reads.set(self.reads.get() + 1);
            if self.fail.get() {
                return Err(StoreError("boom".into()));
            }
            Ok(self.value.borrow().clone())
        }
    }

    fn doc(version: u64) -> String {
        format!(
            r#"{{"version": {version}, "providers": {{"p": {{"kind": "openai", "base_url": "https://p.example/v1"}}}},
                "models": {{"m": {{"provider": "p", "model": "x"}}}}, "default": "m"}}"#
        )
    }

    #[test]
    fn reads_once_per_ttl_and_picks_up_changes() {
        let kv = FakeKv::default();
        *kv.value.borrow_mut() = Some(doc(1));
        let cache = RulesCache::new();
        let v = |now| {
            block_on(cache.get(&kv, &CompiledIn, "rules", now, 1000.0))
                .unwrap()
                .rules
                .version
        };
        assert_eq!(v(0.0), 1);
        assert_eq!(v(500.0), 1);
        assert_eq!(kv.reads.get(), 1);
        *kv.value.borrow_mut() = Some(doc(2));
        assert_eq!(v(900.0), 1, "still within the TTL");
        assert_eq!(v(1000.0), 2);
        assert_eq!(kv.reads.get(), 2);
    }

    #[test]
    fn keeps_the_last_good_document() {
        let kv = FakeKv::default();
        let cache = RulesCache::new();
        let get = |now| block_on(cache.get(&kv, &CompiledIn, "rules", now, 10.0));
        assert_eq!(get(0.0).unwrap_err().code, ErrorCode::RulesMissing);
        *kv.value.borrow_mut() = Some("{\"version\": 2}".into());
        let err = get(20.0).unwrap_err();
        assert_eq!(err.code, ErrorCode::RulesInvalid);
        assert!(
            err.message.contains("providers: missing field"),
            "{}",
            err.message
        );
        *kv.value.borrow_mut() = Some(doc(3));
        assert_eq!(get(40.0).unwrap().rules.version, 3);
        *kv.value.borrow_mut() = Some("garbage".into());
        let l = get(60.0).unwrap();
        assert_eq!(l.rules.version, 3);
        assert!(l.stale_because.unwrap().contains("invalid"));
        kv.fail.set(true);
        let l = get(80.0).unwrap();
        assert!(l
            .stale_because
            .unwrap()
            .contains("reading the rules from KV failed"));
        kv.fail.set(false);
        *kv.value.borrow_mut() = None;
        assert!(get(100.0)
            .unwrap()
            .stale_because
            .unwrap()
            .contains("no rules"));
        *kv.value.borrow_mut() = Some(doc(3));
        assert_eq!(get(120.0).unwrap().stale_because, None);
    }

    #[test]
    fn the_versioned_layout_follows_its_pointer() {
        let kv = crate::ports::MemoryKv::default();
        let put = |k: &str, v: &str| kv.insert(k, v);
        put("rules", &doc(1));
        put("rules:v:2", &doc(2));
        put("rules:v:3", &doc(3));
        let cache = RulesCache::new();
        let v = |now| {
            block_on(cache.get(&kv, &CompiledIn, "rules", now, 10.0))
                .map(|l| (l.rules.version, l.stale_because.is_some()))
        };
        assert_eq!(v(0.0).unwrap(), (1, false), "no pointer: the simple layout");
        put("rules:live", "3");
        assert_eq!(v(20.0).unwrap(), (3, false));
        put("rules:live", "2");
        assert_eq!(v(40.0).unwrap(), (2, false), "a rollback is one write");
        put("rules:live", "9");
        assert_eq!(
            v(60.0).unwrap(),
            (2, true),
            "a pointer to nothing keeps the last good version"
        );
        cache.invalidate();
        put("rules:live", "3");
        assert_eq!(
            v(61.0).unwrap(),
            (3, false),
            "invalidate forces a read within the TTL"
        );
    }

    #[test]
    fn a_clock_going_backwards_forces_a_read() {
        let kv = FakeKv::default();
        *kv.value.borrow_mut() = Some(doc(1));
        let cache = RulesCache::new();
        block_on(cache.get(&kv, &CompiledIn, "rules", 1000.0, 100.0)).unwrap();
        block_on(cache.get(&kv, &CompiledIn, "rules", 10.0, 100.0)).unwrap();
        assert_eq!(kv.reads.get(), 2);
    }

    #[test]
    fn the_model_is_asked_for_only_by_documents_that_turn_it_on() {
        // In the Worker, `parse_with_model` reads the model's files only for these.
        assert!(turns_the_model_on(r#"{"version": 1, "classifier": {}}"#));
        assert!(turns_the_model_on(
            r#"{"classifier": {"model": "kv:m"}, "routes": []}"#
        ));
        // A key written with an escape is the same key.
        assert!(turns_the_model_on(r#"{"\u0063lassifier": {}}"#));
        // Not JSON, or a key twice: validation reports it, and nothing about a model not read.
        assert!(turns_the_model_on(
            r#"{"classifier": {}, "classifier": {}}"#
        ));
        assert!(turns_the_model_on(r#"{"classifier": {"#));
        assert!(turns_the_model_on(
            r#"{"\u0063lassifier": {}, "\u0063lassifier": {}}"#
        ));
        assert!(turns_the_model_on(
            r#"{"c\u006cassifier": {}, "x": 1, "x": 2}"#
        ));
        assert!(!turns_the_model_on(
            r#"{"version": 1, "tasks": {"classifier": {}}}"#
        ));
        assert!(!turns_the_model_on(r#"{"version": 1, "classifier": null}"#));
        assert!(!turns_the_model_on(
            r#"{"version": 1, "description": "no model"}"#
        ));
        assert!(!turns_the_model_on("not json"));
    }

    #[test]
    fn a_task_model_named_in_kv_replaces_the_bundled_one() {
        use crate::task_model::train::{fit, Example, Settings};
        let labels = vec!["english".to_string(), "spanish".to_string()];
        let examples: Vec<Example> = [("hola amigo", 1), ("hello friend", 0)]
            .iter()
            .map(|(t, label)| Example {
                features: crate::task_model::features(t, "", 256),
                label: *label,
            })
            .collect();
        let settings = Settings {
            buckets: 256,
            ..Settings::default()
        };
        let model = fit(&examples, labels, &settings);
        let rules = r#"{"version": 1, "providers": {"p": {"kind": "openai", "base_url": "https://p.example/v1"}},
            "models": {"m": {"provider": "p", "model": "x"}}, "default": "m",
            "classifier": {"model": "kv:models/lang"}}"#;
        let kv = crate::ports::MemoryKv::default();
        kv.insert("rules", rules);
        kv.insert("models/lang", &STANDARD.encode(model.to_bytes()));
        let loaded =
            block_on(RulesCache::new().get(&kv, &CompiledIn, "rules", 0.0, 1000.0)).unwrap();
        let config = loaded.rules.task_model.as_ref().unwrap();
        assert_eq!(config.model.labels, ["english", "spanish"]);
        // Missing or damaged: the document is unusable, saying which key and why.
        kv.insert("models/lang", "not base64!");
        let err =
            block_on(RulesCache::new().get(&kv, &CompiledIn, "rules", 0.0, 1000.0)).unwrap_err();
        assert_eq!(err.code, ErrorCode::RulesInvalid);
        assert!(err.message.contains("models/lang"), "{}", err.message);
        let mut damaged = model.to_bytes();
        damaged[10] ^= 1;
        kv.insert("models/lang", &STANDARD.encode(damaged));
        let err =
            block_on(RulesCache::new().get(&kv, &CompiledIn, "rules", 0.0, 1000.0)).unwrap_err();
        assert!(err.message.contains("checksum"), "{}", err.message);
        kv.remove("models/lang");
        let err =
            block_on(RulesCache::new().get(&kv, &CompiledIn, "rules", 0.0, 1000.0)).unwrap_err();
        assert!(err.message.contains("no task model"), "{}", err.message);
    }
}
