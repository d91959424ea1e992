//! The Worker's static assets (wrangler.toml `[assets]`, binding `ASSETS`, the folder
//! `build/assets/` that scripts/build-wasm.sh assembles): the built-in task model and the lexicon
//! of task words it reads, read once per isolate when rules that turn the model on are first read
//! (the core asks through `ports::ModelFiles`), instead of being compiled into the wasm, which
//! keeps the upload small and spares a Worker whose rules do not use the model; and the operator
//! console's files, fetched as `fronts::console` names them.

use super::convert;
use crate::fronts::console::{self, Asset};
use crate::http::Reply;
use crate::ports::ModelFiles;
use crate::task_model::{self, lexicon};
use worker::{console_error, console_warn, Env};

pub const BINDING: &str = "ASSETS";

/// The core's port to the built-in model's files: the Worker's static assets.
pub struct ModelAssets<'a>(pub &'a Env);

impl ModelFiles for ModelAssets<'_> {
    async fn load_builtin(&self) {
        load_task_model(self.0).await;
    }
}

/// Hand the built-in task model, and the lexicon of task words it reads, to the core if it has
/// not got them yet (both read side by side). A missing binding or asset, or a file that is not
/// what it should be, is a broken deployment: said once and kept (the rules that turn the model on
/// then fail validation with that reason). Anything else is tried again when rules that use the
/// model are next validated (the next request, or one rules-cache TTL later when the last good
/// rules are kept meanwhile); the model waits for its lexicon, without which it would be refused.
async fn load_task_model(env: &Env) {
    if !task_model::builtin_wanted() {
        return;
    }
    let lexicon_wanted = lexicon::wanted();
    let (lexicon_read, model_read) = futures_util::future::join(
        async {
            match lexicon_wanted {
                true => Some(read(env, lexicon::ASSET).await),
                false => None,
            }
        },
        read(env, task_model::BUILTIN_ASSET),
    )
    .await;
    match lexicon_read {
        None => {}
        Some(Ok(bytes)) => lexicon::install(Ok(bytes)),
        Some(Err(Read::Missing(why))) => {
            // Said once: when the model is missing too, the reason is the same (no binding).
            if model_read.is_ok() {
                console_error!("task model: {why}");
            }
            lexicon::install(Err(why));
        }
        Some(Err(Read::Failed(why))) => {
            console_warn!("task model: {why}; trying again when the rules are next read");
            return;
        }
    }
    match model_read {
        Ok(bytes) => task_model::install_builtin(Ok(bytes)),
        Err(Read::Missing(why)) => {
            console_error!("task model: {why}");
            task_model::install_builtin(Err(why));
        }
        Err(Read::Failed(why)) => {
            console_warn!("task model: {why}; trying again when the rules are next read");
        }
    }
}

enum Read {
    Missing(String),
    Failed(String),
}

/// A console page or file: the asset `fronts::console` named, with its headers, or that module's
/// answer for an asset that cannot be read.
pub async fn console_file(env: &Env, asset: &Asset) -> worker::Result<web_sys::Response> {
    let reply = match read(env, &asset.path).await {
        Ok(bytes) => {
            return Ok(convert::response(
                200,
                &asset.headers,
                convert::ResponseBody::Bytes(bytes),
            )?)
        }
        Err(Read::Missing(why) | Read::Failed(why)) => {
            console_warn!("console: {why}");
            console::unavailable::<()>(asset, &why)
        }
    };
    send(reply)
}

/// A console error reply (its body is always bytes).
pub fn send(reply: Reply<()>) -> worker::Result<web_sys::Response> {
    let crate::http::ReplyBody::Bytes(bytes) = reply.body else {
        return Err(worker::Error::RustError("an error reply is bytes".into()));
    };
    Ok(convert::response(
        reply.status,
        &reply.headers,
        convert::ResponseBody::Bytes(bytes),
    )?)
}

async fn read(env: &Env, path: &str) -> Result<Vec<u8>, Read> {
    let assets = env.assets(BINDING).map_err(|_| {
        Read::Missing(format!(
            "the Worker has no static assets binding {BINDING} (wrangler.toml [assets])"
        ))
    })?;
    let url = format!("https://assets.invalid{path}");
    let mut response = assets
        .fetch(url, None)
        .await
        .map_err(|e| Read::Failed(format!("reading {path}: {e}")))?;
    match response.status_code() {
        200 => {}
        404 => {
            return Err(Read::Missing(format!(
                "{path} is not among the Worker's static assets (wrangler.toml [assets] directory = \"build/assets\", assembled by scripts/build-wasm.sh)"
            )))
        }
        status => return Err(Read::Failed(format!("reading {path}: HTTP {status}"))),
    }
    response
        .bytes()
        .await
        .map_err(|e| Read::Failed(format!("reading {path}: {e}")))
}
