//! Classification + routing on the host: a rules document of 100 routes and 2,000 keywords over 20
//! tasks, and an 8 KB prompt. Budget (issue 3): under 50 µs per request. Measures the whole
//! per-request path the Worker runs after parsing the body: facts, classification, route
//! evaluation and the attempt plan. Two prompts: ordinary prose, and a worst case made only of
//! words that start keywords (the keyword automaton can skip nothing).
#![expect(
    clippy::panic,
    reason = "a benchmark whose setup fails must stop loudly"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::hint::black_box;
use taskrouter::chat::request::parse_chat;
use taskrouter::decide::facts::derive;
use taskrouter::decide::route::{decide, Trace};
use taskrouter::http::Body;
use taskrouter::ports::SeededRandom;
use taskrouter::rules::{parse_rules, Rules};
use taskrouter::task_model::lexicon::{self, Lexicon};
use taskrouter::task_model::{TaskModel, BUILTIN};

mod workload;

use workload::{adversarial_8k, big_rules, prose_8k};

fn one_prompt(c: &mut Criterion, rules: &Rules, name: &str, prompt: &str) {
    let body = json!({"model": "auto", "messages": [{"role": "system", "content": "You are helpful."},
                                                    {"role": "user", "content": prompt}],
                      "metadata": {"tier": "tier3"}});
    let chat = parse_chat(&Body::Bytes(body.to_string().into_bytes()), None, 1 << 20)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let rng = SeededRandom::new(1);
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    // The prompt is classified and a route matches: the benchmark measures real work.
    let mut d = derive(&chat, &headers);
    let decision = decide(rules, "auto", &mut d.facts, &d.texts, &rng, Trace::Off)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(decision.classification.task.as_deref(), Some("task13"));
    assert_eq!(decision.rule, "route13");
    c.bench_function(
        &format!("classify+route: 100 routes, 2000 keywords, 8 KB {name} prompt"),
        |b| {
            b.iter(|| {
                let mut d = derive(black_box(&chat), &headers);
                black_box(decide(
                    rules,
                    "auto",
                    &mut d.facts,
                    &d.texts,
                    &rng,
                    Trace::Off,
                ))
            })
        },
    );
}

fn bench(c: &mut Criterion) {
    let text = big_rules();
    let rules = parse_rules(&text).unwrap_or_else(|e| panic!("{e:?}"));
    one_prompt(c, &rules, "prose", &prose_8k());
    one_prompt(c, &rules, "adversarial", &adversarial_8k());
    // The built-in task model (budget: under 100 µs for an 8 KB prompt). Prose in one block (its
    // edge sentences are the instruction), German, an instruction with 8 KB of pasted material
    // after a blank line, and Chinese (characters and bigrams, no words).
    let model = TaskModel::from_bytes(BUILTIN).unwrap_or_else(|e| panic!("{e}"));
    let german = "Bitte übersetzen Sie diesen Absatz ins Englische und behalten Sie den Ton bei. "
        .repeat(110);
    let pasted = format!(
        "tl;dr of the notes below, as bullets please\n\n{}",
        prose_8k()
    );
    let chinese = "请把下面这段会议记录总结成三个要点，并保留所有的日期和负责人。".repeat(95);
    for (name, prompt) in [
        ("prose", prose_8k()),
        ("German", german),
        ("instruction + pasted", pasted),
        ("Chinese", chinese),
    ] {
        c.bench_function(&format!("task model: label an 8 KB {name} prompt"), |b| {
            b.iter(|| black_box(model.predict(black_box(&prompt), "You are helpful.").1))
        });
    }
    // What an isolate's first labelled prompt pays once: reading the lexicon's index, as the
    // Worker does (models/lexicon.trlx); and what building it from the text costs (natively, once
    // per process that trains, and in `taskrouter lexicon`).
    let index = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/lexicon.trlx"))
        .unwrap_or_else(|e| panic!("models/lexicon.trlx: {e}"));
    c.bench_function("lexicon: read its index", |b| {
        b.iter(|| black_box(Lexicon::read(black_box(&index)).map(|l| l.len())))
    });
    c.bench_function("lexicon: build its index from the text", |b| {
        b.iter(|| black_box(lexicon::shipped_index().map(|i| i.len())))
    });
    c.bench_function(
        "validate and compile the 100-route, 2000-keyword document",
        |b| b.iter(|| black_box(parse_rules(black_box(&text)).is_ok())),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
