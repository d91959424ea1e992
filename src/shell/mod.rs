//! The Workers shell: the `fetch` entry point and the adapters from Workers bindings to the core's
//! ports. It holds no routing or accounting: it converts the request, calls `gateway::handle`,
//! converts the reply, and hands the analytics record to `ctx.wait_until` so it never delays the
//! answer (a stream's record once `State::settle_stream` has settled it).
//!
//! Bindings (wrangler.toml): `RULES` (KV: rules and gateway keys), `ANALYTICS` (Analytics Engine),
//! `AI` (Workers AI, for `workers_ai` providers), `LIMITS` and `HEALTH` (Durable Objects), `ASSETS`
//! (static assets: the built-in task model and the console's files, which are answered before
//! anything else, as `fronts::console::route` says);
//! vars `RULES_KEY`, `CACHE_TTL_SECONDS`, `MAX_BODY_BYTES` (and the rest `Settings` reads); provider
//! keys as secrets named by the rules, and the admin API's `ADMIN_KEY`, `CLOUDFLARE_ACCOUNT_ID` and
//! `CLOUDFLARE_API_TOKEN`.

mod analytics;
mod assets;
mod cache;
mod convert;
mod fetch;
mod glue;
mod kv;
mod objects;
mod secrets;
mod stream;

use crate::error::{ApiError, ErrorCode};
use crate::fronts::console;
use crate::gateway::{handle, run_deferred, Deferred, Handled, Ports, Settings, State};
use crate::http::{Method, Reply, ReplyBody};
use crate::ports::{Coordinator, MemoryKv, NoSharedCache};
use futures_channel::oneshot;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{console_error, console_log, console_warn, event, Context, Env, Request, Result};

pub const KV_BINDING: &str = "RULES";

thread_local! {
    /// Isolate memory: parsed rules and key records survive between requests. The isolate's
    /// name (for the Durable Objects that lease it limits) is random.
    static STATE: Rc<State> = Rc::new(State::new(format!(
        "{:013x}{:013x}",
        (js_sys::Math::random() * 4_503_599_627_370_496.0) as u64,
        (js_sys::Math::random() * 4_503_599_627_370_496.0) as u64
    )));
    /// The Worker's vars, as read on the isolate's first request.
    static SETTINGS: std::cell::OnceCell<Settings> = const { std::cell::OnceCell::new() };
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    // Vars change only with a deploy, which starts new isolates: read them once per isolate.
    let objects = objects::Objects::bound(&env);
    let settings = SETTINGS.with(|s| s.get_or_init(|| settings(&env, &objects)).clone());
    // The console's pages and files need neither the rules nor a key.
    match console::route(&Method::parse(req.method().as_ref()), &req.path()) {
        Some(console::Route::Asset(asset)) => return assets::console_file(&env, &asset).await,
        Some(console::Route::Refused(err)) => return assets::send(console::refused(&err)),
        None => {}
    }
    let incoming = convert::incoming(req, settings.max_body_bytes).await;
    let kv = match kv::Kv::bound(&env, KV_BINDING) {
        Some(kv) => kv,
        None => {
            let err = ApiError::new(
                ErrorCode::RulesUnavailable,
                format!("the Worker has no KV binding named {KV_BINDING}; see wrangler.toml"),
            );
            let reply = Reply::<()>::error(&err);
            let ReplyBody::Bytes(bytes) = reply.body else {
                return Err(worker::Error::RustError("an error reply is bytes".into()));
            };
            return Ok(convert::response(
                reply.status,
                &reply.headers,
                convert::ResponseBody::Bytes(bytes),
            )?);
        }
    };
    let secrets = secrets::EnvSecrets::new(&env);
    let upstream = fetch::Fetcher::new(&env);
    let clock = WorkerClock;
    let ports = Ports {
        kv: &kv,
        secrets: &secrets,
        upstream: &upstream,
        clock: &clock,
        rng: &MathRandom,
        cache: &cache::EdgeCache,
        coordinator: &objects,
        model_files: &assets::ModelAssets(&env),
    };
    let state = STATE.with(Rc::clone);
    let Handled {
        reply,
        record,
        logs,
        deferred,
    } = handle(&state, &ports, &settings, incoming).await;
    for line in &logs {
        console_log!("{line}");
    }
    if !deferred.is_empty() {
        let after = run_after(env.clone(), Rc::clone(&state), settings.clone(), deferred);
        ctx.wait_until(after);
    }
    let dataset = env.analytics_engine(analytics::BINDING).ok();
    let Reply {
        status,
        headers,
        body,
    } = reply;
    let body = match body {
        ReplyBody::Bytes(bytes) => {
            if let Some(record) = record {
                if settings.request_log {
                    console_log!("{}", record.log_line());
                }
                // The platform's write is synchronous; a binding that answers with a promise (a
                // wrapped binding in tests) has it kept alive past the response.
                if let Some(pending) = analytics::write(dataset.as_ref(), &record.data_point()) {
                    if let Err(e) = ctx.as_ref().wait_until(&pending) {
                        console_error!("analytics: waitUntil refused the write: {e:?}");
                    }
                }
            }
            convert::ResponseBody::Bytes(bytes)
        }
        ReplyBody::Stream(streamed) => {
            // The record is finished when the stream ends (or cancelled if the client leaves).
            let record = Rc::new(RefCell::new(record.unwrap_or_default()));
            let (ended, when_ended) = oneshot::channel();
            let client_stream = stream::client_stream(*streamed, Rc::clone(&record), ended)?;
            let state = Rc::clone(&state);
            let (env, settings) = (env.clone(), settings.clone());
            ctx.wait_until(async move {
                let completed = when_ended.await.is_ok();
                let (point, work) = {
                    let mut r = record.borrow_mut();
                    let work = state.settle_stream(&mut r, completed, js_sys::Date::now());
                    r.object_calls += work.len() as u32;
                    if settings.request_log {
                        console_log!("{}", r.log_line());
                    }
                    (r.data_point(), work)
                };
                if let Some(pending) = analytics::write(dataset.as_ref(), &point) {
                    let _ = wasm_bindgen_futures::JsFuture::from(pending).await;
                }
                run_after(env, state, settings, work).await;
            });
            convert::ResponseBody::Stream(client_stream)
        }
    };
    Ok(convert::response(status, &headers, body)?)
}

/// The Worker's vars, read once per isolate; vars that cannot be used are logged once here (and
/// shown by `GET /healthz`), and so is a deployment without the Durable Objects.
fn settings(env: &Env, objects: &objects::Objects) -> Settings {
    let settings = Settings::from_vars(|name| env.var(name).ok().map(|v| v.to_string()));
    for problem in &settings.problems {
        console_warn!("settings: {problem}");
    }
    if !objects.bound() {
        console_warn!(
            "limits: no Durable Object bindings {} and {}: key limits and target health are counted in each isolate (docs/operations.md)",
            objects::LIMITS_BINDING,
            objects::HEALTH_BINDING
        );
    }
    settings
}

/// A request's deferred work, after its answer, with ports of its own (the request's are gone).
async fn run_after(env: Env, state: Rc<State>, settings: Settings, work: Vec<Deferred>) {
    if work.is_empty() {
        return;
    }
    let objects = objects::Objects::bound(&env);
    let ports = Ports {
        kv: &MemoryKv::default(),
        secrets: &secrets::EnvSecrets::new(&env),
        upstream: &fetch::Fetcher::new(&env),
        clock: &WorkerClock,
        rng: &MathRandom,
        cache: &NoSharedCache,
        coordinator: &objects,
        model_files: &assets::ModelAssets(&env),
    };
    run_deferred(&state, &ports, &settings, work).await;
}

struct WorkerClock;

/// Load-balancing draws: `Math.random()` is enough (not a security decision). Secrets (gateway
/// keys the admin API makes) come from `crypto.getRandomValues`.
struct MathRandom;

impl crate::ports::Random for MathRandom {
    fn next_f64(&self) -> f64 {
        js_sys::Math::random()
    }

    fn fill_secret(&self, out: &mut [u8]) -> std::result::Result<(), String> {
        convert::getrandom_js(out).map_err(|()| "crypto.getRandomValues failed".to_string())
    }
}

impl crate::ports::Clock for WorkerClock {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }

    async fn sleep(&self, ms: u64) {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
    }
}
