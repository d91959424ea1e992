//! Golden fixtures, one folder per provider kind under tests/fixtures/, shaped after the providers'
//! documented examples: request translation, answer translation, stream translation (chunked at
//! every byte position), and error normalisation.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "fixture checks fail loudly"
)]

use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use taskrouter::chat::request::parse_chat;
use taskrouter::decide::plan::Attempt;
use taskrouter::http::Body;
use taskrouter::ports::Secret;
use taskrouter::providers::errors::classify_status;
use taskrouter::providers::{answer_to_openai, build_request};
use taskrouter::rules::provider::ProviderKind;
use taskrouter::rules::{builtin_retry, FallbackOn, Provider};
use taskrouter::stream::eventstream::encode;
use taskrouter::stream::watch::Outcome;
use taskrouter::stream::watch::StreamWatch;

fn dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs.len(),
        ProviderKind::SUPPORTED.len() - 1,
        "a folder per provider kind (openai_compatible shares openai's)"
    );
    dirs
}

/// The provider's stream as bytes: `stream.sse`, or `stream.frames.json` framed as AWS
/// event-stream messages.
fn stream_bytes(dir: &Path) -> Option<Vec<u8>> {
    if let Some(sse) = read(dir, "stream.sse") {
        return Some(sse.into_bytes());
    }
    let frames = json_of(dir, "stream.frames.json")?;
    let mut out = Vec::new();
    for f in frames.as_array().unwrap() {
        let headers = [
            (":event-type", f[0].as_str().unwrap()),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ];
        out.extend(encode(&headers, f[1].to_string().as_bytes()));
    }
    Some(out)
}

fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

fn json_of(dir: &Path, name: &str) -> Option<Value> {
    read(dir, name).map(|t| {
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
    })
}

fn setup(dir: &Path) -> (Provider, Attempt) {
    let p = json_of(dir, "provider.json").unwrap();
    let kind = ProviderKind::parse(p["kind"].as_str().unwrap()).unwrap();
    let provider = Provider {
        name: "fixture".into(),
        kind,
        base_url: p["base_url"].as_str().unwrap().into(),
        api_key_secret: Some("KEY".into()),
        headers: Vec::new(),
        api_version: p["api_version"].as_str().map(str::to_string),
        allow_byok: false,
        region: None,
    };
    let attempt = Attempt {
        target: "m".into(),
        provider: "fixture".into(),
        model_id: p["model_id"].as_str().unwrap().into(),
        overrides: Map::new(),
        retry: builtin_retry(),
        timeout_ms: 1000,
        fallback_on: FallbackOn::Default,
        why: "fixture".into(),
    };
    (provider, attempt)
}

#[test]
fn requests_translate_as_documented() {
    for dir in dirs() {
        let (provider, attempt) = setup(&dir);
        let Some(f) = json_of(&dir, "request.json") else {
            panic!("{}: request.json", dir.display())
        };
        let chat = parse_chat(
            &Body::Bytes(f["input"].to_string().into_bytes()),
            None,
            1 << 20,
        )
        .unwrap();
        let out = build_request(&provider, &attempt, &chat, Some(&Secret::new("sk-fixture")));
        assert_eq!(out.url, f["url"], "{}", dir.display());
        for (k, v) in f["headers"].as_object().unwrap() {
            assert!(
                out.headers
                    .iter()
                    .any(|(hk, hv)| hk == k && hv == v.as_str().unwrap()),
                "{}: header {k}",
                dir.display()
            );
        }
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(body, f["body"], "{}", dir.display());
    }
}

#[test]
fn answers_translate_as_documented() {
    for dir in dirs() {
        let (provider, _) = setup(&dir);
        let f = json_of(&dir, "response.json").unwrap();
        let got = answer_to_openai(&provider, f["answer"].clone(), "chatcmpl-fixture", 0).unwrap();
        assert_eq!(got, f["openai"], "{}", dir.display());
    }
}

#[test]
fn streams_translate_as_documented_however_they_are_chunked() {
    for dir in dirs() {
        let (Some(sse), Some(want)) = (stream_bytes(&dir), json_of(&dir, "stream.json")) else {
            continue;
        };
        let (provider, _) = setup(&dir);
        for split in (0..sse.len()).step_by(7).chain([sse.len()]) {
            let mut watch = StreamWatch::for_provider(provider.kind, true, "chatcmpl-fixture", 0);
            let mut out = watch.on_chunk(&sse[..split]);
            out.extend(watch.on_chunk(&sse[split..]));
            out.extend(watch.on_end());
            let text = String::from_utf8(out).unwrap();
            let frames: Vec<&str> = text
                .split("\n\n")
                .filter(|f| !f.trim().is_empty())
                .collect();
            assert_eq!(
                frames.last().copied(),
                Some("data: [DONE]"),
                "{} split {split}",
                dir.display()
            );
            let chunks: Vec<Value> = frames[..frames.len() - 1]
                .iter()
                .map(|f| serde_json::from_str(f.trim_start_matches("data: ")).unwrap())
                .collect();
            assert!(
                chunks
                    .iter()
                    .all(|c| c["object"] == "chat.completion.chunk"),
                "{}",
                dir.display()
            );
            let content: String = chunks
                .iter()
                .filter_map(|c| {
                    c.pointer("/choices/0/delta/content")
                        .and_then(Value::as_str)
                })
                .collect();
            assert_eq!(content, want["content"], "{} split {split}", dir.display());
            let finish = chunks.iter().find_map(|c| {
                c.pointer("/choices/0/finish_reason")
                    .filter(|f| !f.is_null())
                    .cloned()
            });
            assert_eq!(
                finish,
                Some(want["finish_reason"].clone()),
                "{}",
                dir.display()
            );
            let u = watch.usage.unwrap();
            assert_eq!(
                json!({"input": u.input, "output": u.output}),
                want["usage"],
                "{}",
                dir.display()
            );
            assert_eq!(watch.outcome, Outcome::Completed, "{}", dir.display());
        }
    }
}

#[test]
fn errors_normalise_as_documented() {
    let mut seen = std::collections::BTreeSet::new();
    for dir in dirs() {
        let Some(cases) = json_of(&dir, "errors.json") else {
            continue;
        };
        for case in cases.as_array().unwrap() {
            let status = case["status"].as_u64().unwrap() as u16;
            let kind = classify_status(status, case["body"].to_string().as_bytes());
            assert_eq!(kind.as_str(), case["kind"], "{}: {case}", dir.display());
            seen.insert(kind.as_str());
        }
    }
    // Timeouts and network failures have no body; every other kind has a documented example.
    for kind in [
        "rate_limited",
        "context_length_exceeded",
        "auth",
        "permission",
        "not_found",
        "bad_request",
        "content_filtered",
        "server_error",
        "overloaded",
    ] {
        assert!(seen.contains(kind), "no fixture for {kind}");
    }
}
