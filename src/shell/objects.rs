//! Durable Objects. The two classes the Worker exports, `KeyLimiter` (one per gateway key) and
//! `TargetHealth` (one per target), only load their state, hand it with the request body to the
//! core's pure exchange (`access::ledger::serve`, `dispatch::health::serve`) and store what comes
//! back; and `Objects`, the core's `Coordinator` over their bindings (`LIMITS`, `HEALTH`), which
//! carries a JSON body to the object of a name and back, giving up after a timeout.

use crate::ports::{Coordinator, SharedObject, StoreError};
use futures_util::future::{select, Either};
use std::cell::RefCell;
use std::time::Duration;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::{
    durable_object, Delay, DurableObject, Env, ObjectNamespace, Request, Response, State,
};

pub const LIMITS_BINDING: &str = "LIMITS";
pub const HEALTH_BINDING: &str = "HEALTH";
/// The storage key of an object's whole state (one small JSON document).
const STATE_KEY: &str = "state";

type Exchange = fn(Option<&str>, &str, f64) -> Result<(String, String), String>;

/// Load the object's state (kept in memory once read), run the exchange, store the new state.
/// Each exchange reads and writes memory without awaiting in between, so concurrent requests to
/// one object cannot interleave inside it.
async fn exchange(
    state: &State,
    memory: &RefCell<Option<String>>,
    mut req: Request,
    serve: Exchange,
) -> worker::Result<Response> {
    let body = req.text().await?;
    if memory.borrow().is_none() {
        // The raw storage calls: the state is a string, nothing to convert. A read that fails
        // fails the call: starting over would forget what was counted.
        let pending = state.storage().as_raw().get(STATE_KEY)?;
        let stored = JsFuture::from(pending).await?.as_string();
        let mut slot = memory.borrow_mut();
        if slot.is_none() {
            *slot = stored;
        }
    }
    let outcome = {
        let mut slot = memory.borrow_mut();
        match serve(slot.as_deref(), &body, js_sys::Date::now()) {
            Ok((next, reply)) => {
                *slot = Some(next.clone());
                Ok((next, reply))
            }
            Err(why) => Err(why),
        }
    };
    match outcome {
        Ok((next, reply)) => {
            state
                .storage()
                .put_raw(STATE_KEY, JsValue::from_str(&next))
                .await?;
            Response::ok(reply)
        }
        Err(why) => Response::error(why, 500),
    }
}

/// One gateway key's shared request and spend allowance.
#[durable_object(fetch)]
pub struct KeyLimiter {
    state: State,
    memory: RefCell<Option<String>>,
}

impl DurableObject for KeyLimiter {
    fn new(state: State, _env: Env) -> Self {
        KeyLimiter {
            state,
            memory: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        exchange(&self.state, &self.memory, req, crate::access::ledger::serve).await
    }
}

/// One target's shared health.
#[durable_object(fetch)]
pub struct TargetHealth {
    state: State,
    memory: RefCell<Option<String>>,
}

impl DurableObject for TargetHealth {
    fn new(state: State, _env: Env) -> Self {
        TargetHealth {
            state,
            memory: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        exchange(
            &self.state,
            &self.memory,
            req,
            crate::dispatch::health::serve,
        )
        .await
    }
}

/// The objects' bindings, when the Worker has both.
pub struct Objects {
    bindings: Option<(ObjectNamespace, ObjectNamespace)>,
}

impl Objects {
    pub fn bound(env: &Env) -> Objects {
        let limits = env.durable_object(LIMITS_BINDING).ok();
        let health = env.durable_object(HEALTH_BINDING).ok();
        Objects {
            bindings: limits.zip(health),
        }
    }
}

impl Coordinator for Objects {
    fn bound(&self) -> bool {
        self.bindings.is_some()
    }

    async fn call(
        &self,
        object: SharedObject,
        name: &str,
        body: &str,
        timeout_ms: u64,
    ) -> Result<String, StoreError> {
        let Some((limits, health)) = &self.bindings else {
            return Err(StoreError("no Durable Object bindings".into()));
        };
        let namespace = match object {
            SharedObject::KeyLimits => limits,
            SharedObject::TargetHealth => health,
        };
        let failed = |e: worker::Error| StoreError(e.to_string());
        let stub = namespace.get_by_name(name).map_err(failed)?;
        // The runtime's own request type: the SDK's would convert options this call does not use.
        let js_failed = |e: JsValue| StoreError(format!("{e:?}"));
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(body));
        let req = web_sys::Request::new_with_str_and_init("https://object.internal/", &init)
            .map_err(js_failed)?;
        let req = Request::from(req);
        let call = Box::pin(async move {
            let mut resp = stub.fetch_with_request(req).await.map_err(failed)?;
            let text = resp.text().await.map_err(failed)?;
            match resp.status_code() {
                200 => Ok(text),
                status => Err(StoreError(format!("the object answered {status}: {text}"))),
            }
        });
        let timer = Box::pin(Delay::from(Duration::from_millis(timeout_ms)));
        match select(call, timer).await {
            Either::Left((answer, _)) => answer,
            Either::Right(_) => Err(StoreError(format!(
                "the object gave no answer within {timeout_ms} ms"
            ))),
        }
    }
}
