//! Asking the cascade model for a request's label when the built-in task model is unsure: from
//! the isolate's cache, else the location's shared cache, else with one call (no retries, the
//! cascade's own timeout). The question and the reading of its answer are `decide::cascade`.

use crate::decide::cascade::{self, CascadeCache, CascadeOutcome};
use crate::decide::facts::Derived;
use crate::decide::plan::plan;
use crate::dispatch::attempt::{self, Call};
use crate::http::ReplyBody;
use crate::ports::{Clock, PortSet, Secret, SharedCache};
use crate::record::events::Event;
use crate::rules::{Cascade, Rules, Settings, Target};
use crate::task_model::OUT_OF_SCOPE;

/// What asking gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asked {
    /// The task to route with: `None` when the call failed, its answer is not one of the labels,
    /// or it says `out_of_scope` (when the model has that label, the cascade may answer it too).
    pub task: Option<String>,
    pub outcome: CascadeOutcome,
    pub ms: f64,
    /// What the question cost; the caller's key pays for it too.
    pub cost_usd: f64,
}

/// The request whose label is asked for.
pub struct Question<'a> {
    pub rules: &'a Rules,
    pub cascade: &'a Cascade,
    /// Its facts and texts.
    pub derived: &'a Derived,
    pub own_key: Option<&'a Secret>,
    pub request_id: &'a str,
}

/// Ask for the label of a request.
pub async fn ask<P: PortSet>(
    ports: &P,
    answers: &CascadeCache,
    question: Question<'_>,
    logs: &mut Vec<String>,
) -> Asked {
    let Question {
        rules,
        cascade,
        derived,
        own_key,
        request_id,
    } = question;
    let Some(model) = rules.task_model.as_ref() else {
        return Asked::default();
    };
    let labels = &model.model.labels;
    let answered = |label: String, outcome| Asked {
        task: (label != OUT_OF_SCOPE).then_some(label),
        outcome,
        ..Asked::default()
    };
    let key = cascade::prompt_key(&derived.texts);
    if let Some(label) = answers.get(key) {
        return answered(label, CascadeOutcome::Cached);
    }
    let shared_key = cascade::shared_key(key);
    if let Some(label) = ports
        .cache()
        .get_text(&shared_key)
        .await
        .filter(|l| labels.contains(l))
    {
        answers.put(key, label.clone());
        return answered(label, CascadeOutcome::Cached);
    }
    let target = Target::Model {
        model: cascade.model.clone(),
        settings: Settings::default(),
    };
    let Some(attempt) = plan(
        rules,
        &target,
        &derived.facts,
        ports.rng(),
        "classifier.cascade",
    )
    .into_iter()
    .next() else {
        return Asked::default();
    };
    let question = cascade::question(&cascade.model, labels, &derived.texts);
    let started = ports.clock().now_ms();
    let call = Call {
        rules,
        attempt: &attempt,
        chat: &question,
        own_key,
        timeout_ms: cascade.timeout_ms,
    };
    let result = attempt::call(ports, call, logs).await;
    let ms = (ports.clock().now_ms() - started).max(0.0);
    let success = match result {
        Ok(success) => success,
        Err(failure) => {
            logs.push(
                Event::CascadeFailed {
                    request_id,
                    target: &cascade.model,
                    kind: failure.kind,
                    status: failure.status,
                }
                .line(),
            );
            return Asked {
                outcome: CascadeOutcome::Failed,
                ms,
                ..Asked::default()
            };
        }
    };
    let price = rules.models.get(&cascade.model).and_then(|m| m.price);
    let cost_usd = match (success.usage, price) {
        (Some(usage), Some(price)) => usage.cost(&price),
        _ => 0.0,
    };
    let label = match &success.reply.body {
        ReplyBody::Bytes(bytes) => cascade::read_answer(bytes, labels),
        ReplyBody::Stream(_) => None,
    };
    let Some(label) = label else {
        logs.push(
            Event::CascadeUnreadable {
                request_id,
                target: &cascade.model,
            }
            .line(),
        );
        return Asked {
            outcome: CascadeOutcome::Unreadable,
            ms,
            cost_usd,
            ..Asked::default()
        };
    };
    answers.put(key, label.clone());
    ports
        .cache()
        .put_text(&shared_key, &label, cascade::SHARED_TTL_S)
        .await;
    Asked {
        ms,
        cost_usd,
        ..answered(label, CascadeOutcome::Answered)
    }
}
