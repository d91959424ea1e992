//! The Worker's static assets (wrangler.toml `[assets]`, binding `ASSETS`): the built-in task
//! model, read once per isolate on its first request instead of being compiled into the wasm,
//! which keeps the upload small.

use crate::task_model;
use worker::{console_error, console_warn, Env};

pub const BINDING: &str = "ASSETS";

/// Hand the built-in task model to the core if it has not got it yet. A missing binding or asset,
/// or a file that is not a model, is a broken deployment: said once and kept (the rules that turn
/// the model on then fail validation with that reason). Anything else is tried again on the next
/// request.
pub async fn load_task_model(env: &Env) {
    if !task_model::builtin_wanted() {
        return;
    }
    match read(env).await {
        Ok(bytes) => task_model::install_builtin(Ok(bytes)),
        Err(Read::Missing(why)) => {
            console_error!("task model: {why}");
            task_model::install_builtin(Err(why));
        }
        Err(Read::Failed(why)) => {
            console_warn!("task model: {why}; trying again on the next request");
        }
    }
}

enum Read {
    Missing(String),
    Failed(String),
}

async fn read(env: &Env) -> Result<Vec<u8>, Read> {
    let assets = env.assets(BINDING).map_err(|_| {
        Read::Missing(format!(
            "the Worker has no static assets binding {BINDING} (wrangler.toml [assets])"
        ))
    })?;
    let url = format!("https://assets.invalid{}", task_model::BUILTIN_ASSET);
    let mut response = assets
        .fetch(url, None)
        .await
        .map_err(|e| Read::Failed(format!("reading {}: {e}", task_model::BUILTIN_ASSET)))?;
    match response.status_code() {
        200 => {}
        404 => {
            return Err(Read::Missing(format!(
                "{} is not among the Worker's static assets (wrangler.toml [assets] directory = \"models\")",
                task_model::BUILTIN_ASSET
            )))
        }
        status => {
            return Err(Read::Failed(format!(
                "reading {}: HTTP {status}",
                task_model::BUILTIN_ASSET
            )))
        }
    }
    response
        .bytes()
        .await
        .map_err(|e| Read::Failed(format!("reading {}: {e}", task_model::BUILTIN_ASSET)))
}
