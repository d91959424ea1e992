//! Worker secrets (and, for local development, `.dev.vars`) as the core's `Secrets`.

use crate::ports::{Secret, Secrets};

pub struct EnvSecrets<'a> {
    env: &'a worker::Env,
}

impl<'a> EnvSecrets<'a> {
    pub fn new(env: &'a worker::Env) -> Self {
        EnvSecrets { env }
    }
}

impl Secrets for EnvSecrets<'_> {
    fn get(&self, name: &str) -> Option<Secret> {
        let value = self.env.secret(name).ok()?.to_string();
        (!value.is_empty()).then(|| Secret::new(value))
    }
}
