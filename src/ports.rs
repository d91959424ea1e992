//! What the core needs from the outside world, as small traits the Workers shell implements (and
//! tests implement with in-memory doubles). `async fn` without `Send`: Workers bindings are JS
//! handles, single-threaded by nature.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::Cell;
use std::fmt;

/// Read access to Workers KV (or any key-value store).
#[expect(
    async_fn_in_trait,
    reason = "single-threaded runtime: no Send bound wanted"
)]
pub trait KvStore {
    /// `Ok(None)` when the key does not exist.
    async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Write a value (the admin API). Stores that cannot write say so.
    async fn put_text(&self, key: &str, _value: &str) -> Result<(), StoreError> {
        Err(StoreError(format!("this store cannot write {key}")))
    }
    /// Write a value with metadata: a small JSON value a listing carries with the key's name, so
    /// a list needs no read per key (Workers KV keeps up to 1024 bytes of it, serialised). A
    /// write without metadata drops any the key had. Stores without metadata write the value
    /// alone, and their listings carry none.
    async fn put_text_with_metadata(
        &self,
        key: &str,
        value: &str,
        _metadata: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.put_text(key, value).await
    }
    /// One page of the key names starting with `prefix`, in the store's order, with their
    /// metadata: the first page, or the one after `cursor` (the last page's `cursor` is `None`).
    /// One store operation per page, so callers decide how many pages they can afford. Stores
    /// that cannot list say so.
    async fn list_page(&self, prefix: &str, _cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        Err(StoreError(format!(
            "this store cannot list keys under {prefix}"
        )))
    }
}

/// A key in a listing, with its metadata when it was written with some.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedKey {
    pub name: String,
    pub metadata: Option<serde_json::Value>,
}

/// One page of a listing, and where the next one starts (`None`: this is the last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyPage {
    pub keys: Vec<ListedKey>,
    pub cursor: Option<String>,
}

/// An in-memory store (tests, benchmarks, anything that runs the core off the platform); it
/// writes, keeps metadata, lists in pages as Workers KV does, and counts its reads. Tests can
/// hide a key from listings, as KV's listing lags behind its writes.
#[derive(Debug)]
pub struct MemoryKv {
    entries:
        std::cell::RefCell<std::collections::BTreeMap<String, (String, Option<serde_json::Value>)>>,
    hidden: std::cell::RefCell<std::collections::BTreeSet<String>>,
    reads: Cell<u64>,
    page_size: Cell<usize>,
}

impl Default for MemoryKv {
    fn default() -> Self {
        MemoryKv {
            entries: Default::default(),
            hidden: Default::default(),
            reads: Cell::new(0),
            // Workers KV's page.
            page_size: Cell::new(1000),
        }
    }
}

impl MemoryKv {
    /// Store a value without metadata (as a write by hand, or by an older version, leaves it).
    pub fn insert(&self, key: &str, value: &str) {
        self.entries
            .borrow_mut()
            .insert(key.to_string(), (value.to_string(), None));
    }

    pub fn remove(&self, key: &str) {
        self.entries.borrow_mut().remove(key);
    }

    /// The metadata stored with a key.
    pub fn metadata(&self, key: &str) -> Option<serde_json::Value> {
        self.entries.borrow().get(key).and_then(|(_, m)| m.clone())
    }

    /// How many `get_text` calls were made.
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    /// Leave `key` out of listings (it can still be read), as a listing made just after a write
    /// may.
    pub fn hide_from_list(&self, key: &str) {
        self.hidden.borrow_mut().insert(key.to_string());
    }

    /// Keys per listed page (at least 1).
    pub fn set_page_size(&self, n: usize) {
        self.page_size.set(n.max(1));
    }
}

impl KvStore for MemoryKv {
    async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.entries.borrow().get(key).map(|(v, _)| v.clone()))
    }

    async fn put_text(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.insert(key, value);
        Ok(())
    }

    async fn put_text_with_metadata(
        &self,
        key: &str,
        value: &str,
        metadata: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.entries
            .borrow_mut()
            .insert(key.to_string(), (value.to_string(), Some(metadata.clone())));
        Ok(())
    }

    /// Lexicographic, as Workers KV lists; the cursor is the last name of the page before.
    async fn list_page(&self, prefix: &str, cursor: Option<&str>) -> Result<KeyPage, StoreError> {
        let (entries, hidden) = (self.entries.borrow(), self.hidden.borrow());
        let mut keys: Vec<ListedKey> = entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && !hidden.contains(*k))
            .filter(|(k, _)| cursor.is_none_or(|c| k.as_str() > c))
            .take(self.page_size.get() + 1)
            .map(|(k, (_, m))| ListedKey {
                name: k.clone(),
                metadata: m.clone(),
            })
            .collect();
        let more = keys.len() > self.page_size.get();
        keys.truncate(self.page_size.get());
        let cursor = more.then(|| keys.last().map(|k| k.name.clone())).flatten();
        Ok(KeyPage { keys, cursor })
    }
}

/// A best-effort cache shared by the isolates of a location (the Workers Cache API). Misses and
/// failures are the same thing to the core.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded runtime: no Send bound wanted"
)]
pub trait SharedCache {
    async fn get_text(&self, key: &str) -> Option<String>;
    async fn put_text(&self, key: &str, value: &str, ttl_s: u64);
}

/// No shared cache: native runs, and Workers without the Cache API.
pub struct NoSharedCache;

impl SharedCache for NoSharedCache {
    async fn get_text(&self, _key: &str) -> Option<String> {
        None
    }
    async fn put_text(&self, _key: &str, _value: &str, _ttl_s: u64) {}
}

/// Provider keys and other secrets, by name.
pub trait Secrets {
    fn get(&self, name: &str) -> Option<Secret>;
}

/// Time. On wasm there is no std time: the shell supplies `Date.now()` and timers.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded runtime: no Send bound wanted"
)]
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> f64;
    /// Wait (retry backoff).
    async fn sleep(&self, ms: u64);
}

/// Outgoing HTTP to providers. `Body` stays opaque so a streamed answer passes through untouched.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded runtime: no Send bound wanted"
)]
pub trait Upstream {
    type Body;
    /// Send, giving up (and aborting the fetch) after `timeout_ms` without response headers.
    async fn send(
        &self,
        request: UpstreamRequest,
        timeout_ms: u64,
    ) -> Result<UpstreamResponse<Self::Body>, FetchError>;
    /// Read a whole body, giving up (and aborting) after `timeout_ms`.
    async fn read_all(&self, body: Self::Body, timeout_ms: u64) -> Result<Vec<u8>, FetchError>;
    /// The next piece of a streamed body (`None` at its end), waiting at most `timeout_ms`.
    async fn next_chunk(
        &self,
        body: &mut Self::Body,
        timeout_ms: u64,
    ) -> Result<Option<Vec<u8>>, FetchError>;
    /// Run a Workers AI model through the Worker's `AI` binding with `input` (a JSON object), its
    /// answer handed back as a provider's would be: a status (an error the binding raised becomes
    /// the status it means), a content type, and a body read whole or streamed like any other.
    /// Ports without the binding say so.
    async fn run_ai(
        &self,
        model: &str,
        _input: Vec<u8>,
        _timeout_ms: u64,
    ) -> Result<UpstreamResponse<Self::Body>, FetchError> {
        Err(FetchError::NotBound(format!(
            "the Worker has no AI binding to run {model} (wrangler.toml: [ai] binding = \"AI\")"
        )))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct UpstreamResponse<B> {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: B,
}

/// The provider response headers the core reads: adapters copy these and no others (each header
/// copied across the JavaScript boundary costs time on every request).
pub const UPSTREAM_HEADERS: [&str; 3] = ["content-type", "retry-after", "retry-after-ms"];

impl<B> UpstreamResponse<B> {
    /// One of `UPSTREAM_HEADERS` (checked in debug builds, so the tests catch a new one).
    pub fn header(&self, name: &str) -> Option<&str> {
        debug_assert!(
            UPSTREAM_HEADERS.contains(&name),
            "{name} is not in UPSTREAM_HEADERS"
        );
        header(&self.headers, name)
    }
}

/// First value of a header whose name is stored in lower case.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The connection failed or broke; the text is for logs, never for clients.
    Network(String),
    /// No answer within the time allowed; the fetch was aborted.
    Timeout,
    /// The binding the provider is reached through is not there (a configuration problem).
    NotBound(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// A secret value that never shows itself in logs, debug output or serialised data.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The only way to read the value: call sites are easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("*****")
    }
}

/// Numbers in [0, 1). The shell uses `Math.random()`; tests use a seeded generator.
pub trait Random {
    fn next_f64(&self) -> f64;
    /// Fill `out` from a cryptographic source, for secrets (gateway keys): the shell uses
    /// `crypto.getRandomValues`. Ports without such a source say so rather than fill it weakly.
    fn fill_secret(&self, _out: &mut [u8]) -> Result<(), String> {
        Err("no cryptographic random source".into())
    }
}

/// A small, seedable generator (xorshift64*) for tests and benchmarks.
pub struct SeededRandom(Cell<u64>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        SeededRandom(Cell::new(seed.max(1)))
    }
}

impl Random for SeededRandom {
    fn next_f64(&self) -> f64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Predictable bytes from the seed: tests and benchmarks only, never a deployment's keys.
    fn fill_secret(&self, out: &mut [u8]) -> Result<(), String> {
        for b in out {
            *b = (self.next_f64() * 256.0) as u8;
        }
        Ok(())
    }
}

/// The kinds of object shared by every isolate of a deployment (Durable Objects, one per name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedObject {
    /// One per gateway key: its request and spend allowance (`access::ledger`).
    KeyLimits,
    /// One per target: its health (`dispatch::health`).
    TargetHealth,
}

/// State shared across the edge. The core sends JSON and reads JSON back; the shell only carries
/// it to the object named `name` of the kind and back, giving up after `timeout_ms`.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded runtime: no Send bound wanted"
)]
pub trait Coordinator {
    /// Whether the deployment has the objects at all (without them, limits and health are
    /// counted per isolate).
    fn bound(&self) -> bool;
    async fn call(
        &self,
        object: SharedObject,
        name: &str,
        body: &str,
        timeout_ms: u64,
    ) -> Result<String, StoreError>;
}

/// Send `body` as JSON to the shared object `name` of a kind, and read its JSON answer.
pub async fn call_json<Q: Serialize, A: DeserializeOwned>(
    coordinator: &impl Coordinator,
    object: SharedObject,
    name: &str,
    body: &Q,
    timeout_ms: u64,
) -> Result<A, StoreError> {
    let body = serde_json::to_string(body).map_err(|e| StoreError(e.to_string()))?;
    let answer = coordinator.call(object, name, &body, timeout_ms).await?;
    serde_json::from_str(&answer)
        .map_err(|e| StoreError(format!("the object {name} answered something else: {e}")))
}

/// A shared object's side of the exchange, for its class in the shell: its stored state (JSON, or
/// nothing yet) and a request body in, `step` run on them, the state to store and the answer out.
/// A body that is not a `Q`, or a stored state that cannot be read, is an error (naming `what`
/// was expected), and the state is not changed.
pub fn serve_json<S, Q, A>(
    stored: Option<&str>,
    body: &str,
    what: &str,
    step: impl FnOnce(&mut S, &Q) -> A,
) -> Result<(String, String), String>
where
    S: Default + Serialize + DeserializeOwned,
    Q: DeserializeOwned,
    A: Serialize,
{
    let request: Q = serde_json::from_str(body).map_err(|e| format!("not {what}: {e}"))?;
    // A stored state that cannot be read is an error, never a fresh start: that would forget
    // what was counted.
    let mut state: S = match stored {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| format!("the stored state cannot be read: {e}"))?,
        None => S::default(),
    };
    let answer = step(&mut state, &request);
    let state = serde_json::to_string(&state).map_err(|e| e.to_string())?;
    let answer = serde_json::to_string(&answer).map_err(|e| e.to_string())?;
    Ok((state, answer))
}

/// No shared objects: native runs, and deployments without the Durable Object bindings.
pub struct NoCoordinator;

impl Coordinator for NoCoordinator {
    fn bound(&self) -> bool {
        false
    }
    async fn call(
        &self,
        _object: SharedObject,
        name: &str,
        _body: &str,
        _timeout_ms: u64,
    ) -> Result<String, StoreError> {
        Err(StoreError(format!(
            "no shared objects are bound (asked for {name})"
        )))
    }
}

/// The built-in task model and the lexicon of task words it reads. Natively both are compiled
/// in; the Worker reads them from its static assets, once per isolate, and only when rules that
/// turn the model on are first read, so a Worker whose rules do not use it never pays for them.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded runtime: no Send bound wanted"
)]
pub trait ModelFiles {
    /// Hand the model and its lexicon to the core (`task_model::install_builtin`) if it has not
    /// got them yet. What cannot be read is said there, and the rules that need the model fail
    /// validation with that reason.
    async fn load_builtin(&self);
}

/// The model and lexicon compiled into the binary: native runs and tests.
pub struct CompiledIn;

impl ModelFiles for CompiledIn {
    async fn load_builtin(&self) {}
}

/// The outside world for one request, as one bundle: the shell's bindings, or tests' doubles.
/// Everything in the core that needs more than one port takes `&impl PortSet`.
pub trait PortSet {
    type Kv: KvStore;
    type Secrets: Secrets;
    type Upstream: Upstream;
    type Clock: Clock;
    type Random: Random;
    type Cache: SharedCache;
    type Coordinator: Coordinator;
    type ModelFiles: ModelFiles;
    fn kv(&self) -> &Self::Kv;
    fn secrets(&self) -> &Self::Secrets;
    fn upstream(&self) -> &Self::Upstream;
    fn clock(&self) -> &Self::Clock;
    fn rng(&self) -> &Self::Random;
    /// Shared by the isolates of a location (the Cache API): cascade answers.
    fn cache(&self) -> &Self::Cache;
    /// The Durable Objects shared across the edge.
    fn coordinator(&self) -> &Self::Coordinator;
    /// The built-in task model's files.
    fn model_files(&self) -> &Self::ModelFiles;
}

/// The upstream body type of a port set: what a committed stream passes on.
pub type BodyOf<P> = <<P as PortSet>::Upstream as Upstream>::Body;

/// The ports, borrowed for one request: what the shell and tests build.
pub struct Ports<'a, K, S, U, C, R, X, D = NoCoordinator, M = CompiledIn> {
    pub kv: &'a K,
    pub secrets: &'a S,
    pub upstream: &'a U,
    pub clock: &'a C,
    pub rng: &'a R,
    pub cache: &'a X,
    pub coordinator: &'a D,
    pub model_files: &'a M,
}

impl<K, S, U, C, R, X, D, M> PortSet for Ports<'_, K, S, U, C, R, X, D, M>
where
    K: KvStore,
    S: Secrets,
    U: Upstream,
    C: Clock,
    R: Random,
    X: SharedCache,
    D: Coordinator,
    M: ModelFiles,
{
    type Kv = K;
    type Secrets = S;
    type Upstream = U;
    type Clock = C;
    type Random = R;
    type Cache = X;
    type Coordinator = D;
    type ModelFiles = M;
    fn kv(&self) -> &K {
        self.kv
    }
    fn secrets(&self) -> &S {
        self.secrets
    }
    fn upstream(&self) -> &U {
        self.upstream
    }
    fn clock(&self) -> &C {
        self.clock
    }
    fn rng(&self) -> &R {
        self.rng
    }
    fn cache(&self) -> &X {
        self.cache
    }
    fn coordinator(&self) -> &D {
        self.coordinator
    }
    fn model_files(&self) -> &M {
        self.model_files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s} {s:?}"), "***** *****");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"*****\"");
        assert_eq!(s.expose(), "sk-live-123");
    }
}
