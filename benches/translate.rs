//! Translation costs (issue 4): a 32 KB chat request into each provider's wire format, and a
//! 200-chunk streamed answer through the stream watch (OpenAI pass-through, Anthropic and Gemini
//! translated to OpenAI chunks).
#![expect(
    clippy::panic,
    reason = "a benchmark whose setup fails must stop loudly"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map};
use std::hint::black_box;
use taskrouter::chat::request::parse_chat;
use taskrouter::decide::plan::Attempt;
use taskrouter::http::Body;
use taskrouter::providers::build_request;
use taskrouter::rules::provider::ProviderKind;
use taskrouter::rules::{builtin_retry, FallbackOn, Provider};
use taskrouter::stream::watch::StreamWatch;

fn provider(kind: ProviderKind) -> Provider {
    Provider {
        name: "p".into(),
        kind,
        base_url: "https://p.example".into(),
        api_key_secret: None,
        headers: Vec::new(),
        api_version: None,
        allow_byok: false,
        region: None,
    }
}

fn attempt() -> Attempt {
    Attempt {
        target: "m".into(),
        provider: "p".into(),
        model_id: "model-x".into(),
        overrides: Map::new(),
        retry: builtin_retry(),
        timeout_ms: 1000,
        fallback_on: FallbackOn::Default,
        why: "bench".into(),
    }
}

/// Bedrock's stream: the same 200 text deltas in the AWS event-stream framing.
fn bedrock_stream() -> Vec<u8> {
    let event = |kind: &str, payload: String| {
        let headers = [
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ];
        taskrouter::stream::eventstream::encode(&headers, payload.as_bytes())
    };
    let mut out = event("messageStart", r#"{"role":"assistant"}"#.into());
    for i in 0..200 {
        out.extend(event(
            "contentBlockDelta",
            format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"word{i} "}}}}"#),
        ));
    }
    out.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#.into()));
    out.extend(event(
        "metadata",
        r#"{"usage":{"inputTokens":10,"outputTokens":400,"totalTokens":410}}"#.into(),
    ));
    out
}

fn stream_of(kind: ProviderKind) -> Vec<u8> {
    if kind == ProviderKind::Bedrock {
        return bedrock_stream();
    }
    let mut s = String::new();
    for i in 0..200 {
        let ev = match kind {
            ProviderKind::Anthropic => {
                if i == 0 {
                    s.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg\",\"model\":\"m\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n");
                }
                format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n")
            }
            ProviderKind::Bedrock => String::new(),
            ProviderKind::WorkersAi => format!("data: {{\"response\":\"word{i} \",\"p\":\"abcdef\"}}\n\n"),
            ProviderKind::Gemini => format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"word{i} \"}}],\"role\":\"model\"}},\"index\":0}}]}}\r\n\r\n"),
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::AzureOpenAi => format!(
                "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"finish_reason\":null}}]}}\n\n"
            ),
        };
        s.push_str(&ev);
    }
    s.push_str(match kind {
        ProviderKind::Anthropic => "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":400}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ProviderKind::Gemini => "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\".\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":400}}\r\n\r\n",
        ProviderKind::Bedrock => "",
        ProviderKind::WorkersAi => "data: {\"response\":\"\",\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":400}}\n\ndata: [DONE]\n\n",
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::AzureOpenAi => "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":400}}\n\ndata: [DONE]\n\n",
    });
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    // ~32 KB: a system prompt, a long conversation, and a tool.
    let mut messages =
        vec![json!({"role": "system", "content": "You are a careful assistant. ".repeat(40)})];
    while serde_json::to_string(&messages).map_or(0, |s| s.len()) < 32 * 1024 {
        messages.push(json!({"role": "user", "content": "Please summarise the attached meeting notes and list the action items. ".repeat(6)}));
        messages.push(json!({"role": "assistant", "content": "Here is the summary with the action items you asked for. ".repeat(6)}));
    }
    messages.push(json!({"role": "user", "content": "Thanks, now the next one."}));
    let body = json!({"model": "auto", "max_tokens": 500, "temperature": 0.3, "messages": messages,
                      "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let bytes = body.to_string().into_bytes();
    assert!(bytes.len() >= 32 * 1024);
    let chat = parse_chat(&Body::Bytes(bytes), None, 1 << 20).unwrap_or_else(|e| panic!("{e:?}"));
    let a = attempt();
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::WorkersAi,
        ProviderKind::Bedrock,
    ] {
        let p = provider(kind);
        c.bench_function(
            &format!("translate a 32 KB request to {}", kind.as_str()),
            |b| b.iter(|| black_box(build_request(&p, &a, black_box(&chat), None))),
        );
        let stream = stream_of(kind);
        c.bench_function(
            &format!("watch a 200-chunk {} stream", kind.as_str()),
            |b| {
                b.iter(|| {
                    let mut w = StreamWatch::for_provider(kind, false, "c", 0);
                    let mut n = 0;
                    // Arrive in network-sized pieces.
                    for piece in stream.chunks(512) {
                        n += w.on_chunk(black_box(piece)).len();
                    }
                    n + w.on_end().len()
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
