//! mock-provider: a scriptable OpenAI-compatible provider on 127.0.0.1 for local development and the
//! end-to-end tests. It records every provider call (headers and body) for tests to read back, and
//! answers as the model name's directives say (see `behavior.rs`).
//!
//! Usage: `mock-provider [--port N] [--api-key KEY]` (port 0 picks a free one). It prints
//! `mock-provider listening on http://127.0.0.1:PORT` once ready. Control endpoints:
//! `GET /__mock/requests`, `DELETE /__mock/requests`, `POST /__mock/script`, `GET /healthz`.

mod anthropic;
mod bedrock;
mod behavior;
mod embeddings;
mod gemini;
mod http;
mod openai;
mod responses;

use behavior::Behavior;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Default)]
struct Shared {
    requests: Vec<Value>,
    scripts: HashMap<String, VecDeque<String>>,
    served: u64,
}

struct Config {
    port: u16,
    api_key: Option<String>,
}

fn main() {
    let config = match parse_args(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mock-provider: {e}\nusage: mock-provider [--port N] [--api-key KEY]");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", config.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "mock-provider: cannot listen on 127.0.0.1:{}: {e}",
                config.port
            );
            std::process::exit(1);
        }
    };
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(config.port);
    println!("mock-provider listening on http://127.0.0.1:{port}");
    let _ = io::stdout().flush();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let api_key = Arc::new(config.api_key);
    for conn in listener.incoming().flatten() {
        let shared = Arc::clone(&shared);
        let api_key = Arc::clone(&api_key);
        thread::spawn(move || {
            let _ = serve_connection(conn, &shared, api_key.as_deref());
        });
    }
}

fn parse_args(args: Vec<String>) -> Result<Config, String> {
    let mut config = Config {
        port: 8788,
        api_key: std::env::var("MOCK_API_KEY").ok().filter(|k| !k.is_empty()),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                config.port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port takes a number")?
            }
            "--api-key" => config.api_key = Some(it.next().ok_or("--api-key takes a value")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(config)
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn serve_connection(
    stream: TcpStream,
    shared: &Mutex<Shared>,
    api_key: Option<&str>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(req) = http::read_request(&mut reader)? {
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let keep = respond(&mut out, &req, shared, api_key)?;
        if close || !keep {
            return Ok(());
        }
    }
    Ok(())
}

fn json_headers() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".to_string())]
}

/// Answer one request; `Ok(false)` when the connection must be dropped (a cut stream).
fn respond(
    out: &mut TcpStream,
    req: &http::Request,
    shared: &Mutex<Shared>,
    api_key: Option<&str>,
) -> io::Result<bool> {
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET", "/healthz") => {
            http::write_full(out, 200, &json_headers(), b"{\"status\":\"ok\"}").map(|()| true)
        }
        ("GET", "/__mock/requests") => {
            let body = Value::Array(lock(shared).requests.clone()).to_string();
            http::write_full(out, 200, &json_headers(), body.as_bytes()).map(|()| true)
        }
        ("DELETE", "/__mock/requests") => {
            let mut s = lock(shared);
            s.requests.clear();
            s.scripts.clear();
            drop(s);
            http::write_full(out, 200, &json_headers(), b"{}").map(|()| true)
        }
        ("POST", "/__mock/script") => {
            let parsed: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let model = parsed
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_string);
            let behaviors: Option<Vec<String>> =
                parsed.get("behaviors").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(|b| b.as_str().map(str::to_string))
                        .collect()
                });
            match (model, behaviors) {
                (Some(model), Some(list)) => {
                    lock(shared).scripts.entry(model).or_default().extend(list);
                    http::write_full(out, 200, &json_headers(), b"{}").map(|()| true)
                }
                _ => {
                    let body =
                        json!({"error": "expected {\"model\": string, \"behaviors\": [string]}"})
                            .to_string();
                    http::write_full(out, 400, &json_headers(), body.as_bytes()).map(|()| true)
                }
            }
        }
        ("POST", "/v1/chat/completions" | "/v1/embeddings" | "/v1/responses") => {
            chat(out, req, shared, api_key, Wire::OpenAi)
        }
        ("POST", "/v1/messages") => chat(out, req, shared, api_key, Wire::Anthropic),
        ("POST", p) if p.starts_with("/v1beta/models/") && p.contains(":") => {
            chat(out, req, shared, api_key, Wire::Gemini)
        }
        ("POST", p)
            if p.starts_with("/openai/deployments/")
                && (p.ends_with("/chat/completions") || p.ends_with("/embeddings")) =>
        {
            chat(out, req, shared, api_key, Wire::Azure)
        }
        ("POST", p)
            if p.starts_with("/model/")
                && (p.ends_with("/converse") || p.ends_with("/converse-stream")) =>
        {
            chat(out, req, shared, api_key, Wire::Bedrock)
        }
        ("GET", "/v1/models") => {
            let body = json!({"object": "list", "data": [{"id": "mock-fast", "object": "model", "owned_by": "mock"}]});
            http::write_full(out, 200, &json_headers(), body.to_string().as_bytes()).map(|()| true)
        }
        _ => {
            let body = json!({"error": {"message": format!("mock: no route {} {}", req.method, path), "type": "invalid_request_error", "code": "not_found"}});
            http::write_full(out, 404, &json_headers(), body.to_string().as_bytes()).map(|()| true)
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Which provider's wire format a request came in (and is answered in).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
    /// OpenAI's format at an Azure deployment URL, keyed by `api-key`.
    Azure,
    /// Gemini: the model and the streaming choice are in the path, keyed by `x-goog-api-key`.
    Gemini,
    /// Bedrock Converse: the model and the streaming choice are in the path; a bearer API key, or
    /// a SigV4 signature whose access key id is the mock's key.
    Bedrock,
}

/// `%XX` decoding for the model segment of a Gemini path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn chat(
    out: &mut TcpStream,
    req: &http::Request,
    shared: &Mutex<Shared>,
    api_key: Option<&str>,
    wire: Wire,
) -> io::Result<bool> {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let path = req.path.split('?').next().unwrap_or("");
    let model = match wire {
        // /v1beta/models/<model>:generateContent
        Wire::Gemini => percent_decode(
            path.trim_start_matches("/v1beta/models/")
                .split(':')
                .next()
                .unwrap_or(""),
        ),
        // /model/<model>/converse
        Wire::Bedrock => percent_decode(
            path.trim_start_matches("/model/")
                .rsplit_once('/')
                .map_or("", |(m, _)| m),
        ),
        Wire::OpenAi | Wire::Anthropic | Wire::Azure => body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    };
    let (seq, scripted) = {
        let mut s = lock(shared);
        s.requests.push(json!({
            "method": req.method,
            "path": req.path,
            "headers": req.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "body": if body.is_null() { Value::String(String::from_utf8_lossy(&req.body).into_owned()) } else { body.clone() },
            "received_at_ms": now_ms() as u64,
        }));
        s.served += 1;
        let scripted = s.scripts.get_mut(&model).and_then(VecDeque::pop_front);
        (s.served, scripted)
    };
    let behavior = match scripted
        .map_or_else(|| Behavior::from_model(&model), |d| Behavior::parse(&d))
    {
        Ok(b) => b,
        Err(e) => {
            let body = json!({"error": {"message": e, "type": "invalid_request_error", "code": "bad_mock_directive"}});
            return http::write_full(out, 400, &json_headers(), body.to_string().as_bytes())
                .map(|()| true);
        }
    };
    if let Some(key) = api_key {
        let authorised = match wire {
            Wire::OpenAi => req.header("authorization") == Some(format!("Bearer {key}").as_str()),
            Wire::Azure => req.header("api-key") == Some(key),
            Wire::Gemini => req.header("x-goog-api-key") == Some(key),
            Wire::Anthropic => req.header("x-api-key") == Some(key),
            Wire::Bedrock => {
                let auth = req.header("authorization").unwrap_or("");
                auth == format!("Bearer {key}")
                    || (auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={key}/"))
                        && req.header("x-amz-date").is_some())
            }
        };
        if !authorised {
            let body = match wire {
                Wire::OpenAi | Wire::Azure => openai::error_body(401),
                Wire::Anthropic => anthropic::error_body(401, false),
                Wire::Gemini => gemini::error_body(403, false),
                Wire::Bedrock => bedrock::error(403, false).0,
            };
            return http::write_full(out, 401, &json_headers(), body.to_string().as_bytes())
                .map(|()| true);
        }
    }
    thread::sleep(Duration::from_millis(behavior.delay_ms));
    if !(200..300).contains(&behavior.status) {
        let mut headers = json_headers();
        if let Some(ra) = &behavior.retry_after {
            headers.push(("retry-after", ra.clone()));
        }
        if wire == Wire::Bedrock {
            let (body, kind) = bedrock::error(behavior.status, behavior.context_length);
            headers.push(("x-amzn-errortype", kind.to_string()));
            return http::write_full(out, behavior.status, &headers, body.to_string().as_bytes())
                .map(|()| true);
        }
        let body = match (wire, behavior.context_length) {
            (Wire::OpenAi | Wire::Azure, true) => openai::context_length_body(),
            (Wire::OpenAi | Wire::Azure, false) => openai::error_body(behavior.status),
            (Wire::Anthropic, ctx) => anthropic::error_body(behavior.status, ctx),
            (Wire::Gemini, ctx) => gemini::error_body(behavior.status, ctx),
            (Wire::Bedrock, _) => Value::Null,
        };
        return http::write_full(out, behavior.status, &headers, body.to_string().as_bytes())
            .map(|()| true);
    }
    if path.ends_with("/embeddings") || path.ends_with(":batchEmbedContents") {
        let answer = match wire {
            Wire::Gemini => embeddings::gemini(&model, &body),
            Wire::OpenAi | Wire::Azure | Wire::Anthropic | Wire::Bedrock => {
                embeddings::openai(&model, &body)
            }
        };
        return http::write_full(out, 200, &json_headers(), answer.to_string().as_bytes())
            .map(|()| true);
    }
    let responses_api = path.ends_with("/responses");
    let id = match responses_api {
        true => format!("resp_mock_{seq}"),
        false => format!("chatcmpl-mock-{seq}"),
    };
    let created = (now_ms() / 1000) as u64;
    let stream = match wire {
        Wire::Gemini => path.ends_with(":streamGenerateContent"),
        Wire::Bedrock => path.ends_with("/converse-stream"),
        Wire::OpenAi | Wire::Anthropic | Wire::Azure => {
            body.get("stream").and_then(Value::as_bool) == Some(true)
        }
    };
    if !stream {
        let answer = if behavior.malformed {
            b"{\"id\": \"chatcmpl-broken\", \"choices\": [".to_vec()
        } else {
            match wire {
                Wire::OpenAi if responses_api => {
                    responses::whole(&id, created, &model, &body, &behavior)
                }
                Wire::OpenAi | Wire::Azure => {
                    openai::completion(&id, created, &model, &body, &behavior)
                }
                Wire::Anthropic => anthropic::message(&id, &model, &body, &behavior),
                Wire::Gemini => gemini::response(&model, &body, &behavior),
                Wire::Bedrock => bedrock::converse(&body, &behavior),
            }
            .to_string()
            .into_bytes()
        };
        return http::write_full(out, 200, &json_headers(), &answer).map(|()| true);
    }
    let content_type = match wire {
        Wire::Bedrock => "application/vnd.amazon.eventstream",
        Wire::OpenAi | Wire::Anthropic | Wire::Azure | Wire::Gemini => {
            "text/event-stream; charset=utf-8"
        }
    };
    let headers = vec![
        ("content-type", content_type.to_string()),
        ("cache-control", "no-cache".to_string()),
    ];
    http::start_chunked(out, 200, &headers)?;
    if behavior.empty_stream {
        http::write_chunk(out, b"data: [DONE]\n\n")?;
        return http::end_chunked(out).map(|()| true);
    }
    if behavior.stream_error {
        let ev = match wire {
            Wire::OpenAi if responses_api => responses::stream_error(),
            Wire::OpenAi | Wire::Azure => format!("data: {}\n\n", openai::error_body(500)),
            Wire::Anthropic => format!(
                "event: error\ndata: {}\n\n",
                anthropic::error_body(529, false)
            ),
            Wire::Gemini => format!("data: {}\r\n\r\n", gemini::error_body(503, false)),
            Wire::Bedrock => {
                let frame = bedrock::exception("throttlingException", "mock: too many requests");
                http::write_chunk(out, &frame)?;
                return http::end_chunked(out).map(|()| true);
            }
        };
        http::write_chunk(out, ev.as_bytes())?;
        return http::end_chunked(out).map(|()| true);
    }
    let text = |events: Vec<String>| events.into_iter().map(String::into_bytes).collect();
    let events: Vec<Vec<u8>> = match wire {
        Wire::OpenAi if responses_api => text(responses::stream_events(
            &id, created, &model, &body, &behavior,
        )),
        Wire::OpenAi | Wire::Azure => text(openai::stream_events(
            &id, created, &model, &body, &behavior,
        )),
        Wire::Anthropic => text(anthropic::stream_events(&id, &model, &body, &behavior)),
        Wire::Gemini => text(gemini::stream_events(&model, &body, &behavior)),
        Wire::Bedrock => bedrock::stream_events(&body, &behavior),
    };
    for (i, ev) in events.iter().enumerate() {
        // Event 0 is the role chunk; content chunk k is event k.
        if behavior.cut_after.is_some_and(|n| i > n) {
            // Drop the connection mid-stream, without the terminating chunk.
            let _ = out.shutdown(std::net::Shutdown::Both);
            return Ok(false);
        }
        if i > 0 && behavior.chunk_delay_ms > 0 {
            thread::sleep(Duration::from_millis(behavior.chunk_delay_ms));
        }
        if behavior.stall_after == Some(i) {
            thread::sleep(Duration::from_millis(behavior.stall_ms));
        }
        let frame = match (behavior.malformed && i == 1, wire) {
            // A frame whose checksum is wrong.
            (true, Wire::Bedrock) => {
                let mut f = ev.clone();
                if let Some(last) = f.last_mut() {
                    *last ^= 0xff;
                }
                f
            }
            (true, _) => b"data: {not json\n\n".to_vec(),
            (false, _) => ev.clone(),
        };
        http::write_chunk(out, &frame)?;
    }
    if behavior.linger_ms > 0 {
        thread::sleep(Duration::from_millis(behavior.linger_ms));
        // A comment: nothing an SSE client reads as an event (Bedrock's framing has none).
        if wire != Wire::Bedrock {
            http::write_chunk(out, b": lingered\n\n")?;
        }
    }
    http::end_chunked(out).map(|()| true)
}
