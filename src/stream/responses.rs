//! The Responses API's shapes (a Response object, its items, its usage) and its stream: the
//! router's OpenAI-shaped chat stream re-encoded as typed events (`response.created`,
//! `response.output_item.added`, `response.output_text.delta`, `response.function_call_arguments.delta`,
//! ..., `response.completed`), each with its `sequence_number`, as the last stage of the stream
//! watch. A stream that breaks ends with `response.failed` and an `error` event, never with
//! `response.completed`.

use crate::chat::usage::Usage;
use crate::stream::sse::SseParser;
use serde_json::{json, Map, Value};

/// What the reply needs from the request: the fields a Response repeats back.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    pub fields: Map<String, Value>,
    /// The Responses request as it came, for targets it passes through to unchanged.
    pub original: Map<String, Value>,
}

/// An id of the Responses API's shape (`prefix_` and letters and digits) made from another id.
pub fn item_id(prefix: &str, from: &str) -> String {
    let tail: String = from
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(48)
        .collect();
    format!("{prefix}_{tail}")
}

/// The Responses API's `usage` object.
pub fn usage_object(usage: Usage) -> Value {
    json!({"input_tokens": usage.input, "input_tokens_details": {"cached_tokens": usage.cached_input},
           "output_tokens": usage.output, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": usage.input + usage.output})
}

/// Where a Response stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Status {
    InProgress,
    #[default]
    Completed,
    /// Cut short: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    Failed,
}

impl Status {
    /// How a chat completion's `finish_reason` ends a Response.
    pub fn from_finish(finish: Option<&str>) -> Status {
        match finish {
            Some("length") => Status::Incomplete("max_output_tokens"),
            Some("content_filter") => Status::Incomplete("content_filter"),
            _ => Status::Completed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete(_) => "incomplete",
            Status::Failed => "failed",
        }
    }
}

/// A Response object around `output` items.
pub fn response_object(
    echo: &Echo,
    id: &str,
    model: &Value,
    created: &Value,
    status: Status,
    output: Vec<Value>,
    usage: Option<Usage>,
) -> Value {
    let mut r = Map::new();
    r.insert("id".into(), json!(id));
    r.insert("object".into(), json!("response"));
    r.insert("created_at".into(), created.clone());
    r.insert("status".into(), json!(status.as_str()));
    r.insert("error".into(), Value::Null);
    let incomplete = match status {
        Status::Incomplete(reason) => json!({"reason": reason}),
        Status::InProgress | Status::Completed | Status::Failed => Value::Null,
    };
    r.insert("incomplete_details".into(), incomplete);
    r.insert("model".into(), model.clone());
    r.insert("output".into(), Value::Array(output));
    r.insert("previous_response_id".into(), Value::Null);
    r.insert("store".into(), json!(false));
    r.insert("usage".into(), usage.map_or(Value::Null, usage_object));
    for (k, v) in &echo.fields {
        r.insert(k.clone(), v.clone());
    }
    Value::Object(r)
}

/// An assistant message item with one text part.
pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

/// A function call item.
pub fn call_item(id: &str, call_id: &str, name: &Value, arguments: &Value, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
           "arguments": arguments, "status": status})
}

/// One output item of a streamed Response, as it is built.
#[derive(Debug)]
enum Item {
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: Value,
        arguments: String,
    },
}

impl Item {
    fn done(&self) -> Value {
        match self {
            Item::Message { id, text } => message_item(id, text, "completed"),
            Item::Call {
                id,
                call_id,
                name,
                arguments,
            } => call_item(id, call_id, name, &json!(arguments), "completed"),
        }
    }
}

/// Turns the router's OpenAI stream into the Responses API's events.
#[derive(Debug, Default)]
pub struct StreamAdapter {
    parser: SseParser,
    echo: Echo,
    sequence: u64,
    /// The chat stream's id, once its first chunk came.
    chat_id: Option<String>,
    model: Value,
    created: Value,
    items: Vec<Item>,
    /// The message item text goes to, while no function call has come after it.
    open_message: Option<usize>,
    /// OpenAI tool-call index -> item index.
    calls: Vec<(u64, usize)>,
    /// How the answer ended, once its finish reason came.
    status: Status,
    usage: Option<Usage>,
    finished: bool,
}

impl StreamAdapter {
    pub fn new(echo: Echo) -> Self {
        StreamAdapter {
            echo,
            created: json!(0),
            ..StreamAdapter::default()
        }
    }

    fn emit(&mut self, out: &mut String, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        out.push_str(&format!("event: {kind}\ndata: {data}\n\n"));
    }

    fn response(&self, status: Status, output: Vec<Value>) -> Value {
        let id = item_id("resp", self.chat_id.as_deref().unwrap_or(""));
        let usage = if status == Status::InProgress {
            None
        } else {
            self.usage
        };
        response_object(
            &self.echo,
            &id,
            &self.model,
            &self.created,
            status,
            output,
            usage,
        )
    }

    fn start(&mut self, chunk: &Value, out: &mut String) {
        let id = chunk.get("id").and_then(Value::as_str).unwrap_or("resp");
        self.chat_id = Some(id.to_string());
        self.model = chunk.get("model").cloned().unwrap_or(Value::Null);
        self.created = chunk.get("created").cloned().unwrap_or(json!(0));
        let response = self.response(Status::InProgress, Vec::new());
        self.emit(out, "response.created", json!({"response": response}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn text(&mut self, delta: &str, out: &mut String) {
        let index = match self.open_message {
            Some(i) => i,
            None => {
                let base = item_id("msg", self.chat_id.as_deref().unwrap_or(""));
                let id = match self.items.len() {
                    0 => base,
                    n => format!("{base}{n}"),
                };
                let index = self.items.len();
                self.items.push(Item::Message {
                    id: id.clone(),
                    text: String::new(),
                });
                self.open_message = Some(index);
                let mut item = message_item(&id, "", "in_progress");
                item["content"] = json!([]);
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                );
                self.emit(out, "response.content_part.added", json!({"item_id": id, "output_index": index,
                    "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}));
                index
            }
        };
        let Some(Item::Message { id, text }) = self.items.get_mut(index) else {
            return;
        };
        text.push_str(delta);
        let id = id.clone();
        self.emit(
            out,
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index,
            "content_index": 0, "delta": delta, "logprobs": []}),
        );
    }

    fn call(&mut self, call: &Value, out: &mut String) {
        let k = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let index = match self.calls.iter().find(|(t, _)| *t == k) {
            Some((_, i)) => *i,
            None => {
                let call_id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("call")
                    .to_string();
                let id = item_id("fc", &call_id);
                let name = call.pointer("/function/name").cloned().unwrap_or(json!(""));
                let index = self.items.len();
                let item = call_item(&id, &call_id, &name, &json!(""), "in_progress");
                self.items.push(Item::Call {
                    id,
                    call_id,
                    name,
                    arguments: String::new(),
                });
                self.calls.push((k, index));
                self.open_message = None;
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                );
                index
            }
        };
        let Some(delta) = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let Some(Item::Call { id, arguments, .. }) = self.items.get_mut(index) else {
            return;
        };
        arguments.push_str(delta);
        let id = id.clone();
        self.emit(
            out,
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": index, "delta": delta}),
        );
    }

    fn finish(&mut self, out: &mut String) {
        if self.finished {
            return;
        }
        self.finished = true;
        let mut output = Vec::new();
        for index in 0..self.items.len() {
            let done = self.items[index].done();
            match &self.items[index] {
                Item::Message { id, text } => {
                    let (id, text) = (id.clone(), text.clone());
                    self.emit(
                        out,
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": index,
                        "content_index": 0, "text": text, "logprobs": []}),
                    );
                    self.emit(
                        out,
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": index,
                        "content_index": 0, "part": done["content"][0]}),
                    );
                }
                Item::Call {
                    id,
                    name,
                    arguments,
                    ..
                } => {
                    let (id, name, arguments) = (id.clone(), name.clone(), arguments.clone());
                    self.emit(
                        out,
                        "response.function_call_arguments.done",
                        json!({"item_id": id,
                        "output_index": index, "name": name, "arguments": arguments}),
                    );
                }
            }
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": index, "item": done}),
            );
            output.push(done);
        }
        let kind = match self.status {
            Status::Incomplete(_) => "response.incomplete",
            Status::InProgress | Status::Completed | Status::Failed => "response.completed",
        };
        let response = self.response(self.status, output);
        self.emit(out, kind, json!({"response": response}));
    }

    fn fail(&mut self, error: &Value, out: &mut String) {
        if self.finished {
            return;
        }
        self.finished = true;
        let code = error.get("code").cloned().unwrap_or(Value::Null);
        let message = error.get("message").cloned().unwrap_or(json!(""));
        let output = self.items.iter().map(Item::done).collect();
        let mut response = self.response(Status::Failed, output);
        response["error"] = json!({"code": code, "message": message});
        self.emit(out, "response.failed", json!({"response": response}));
        // `error` inside the event as well as beside it: the OpenAI SDKs raise on an event that
        // carries one, so a broken answer is never taken for a short one.
        let error = json!({"type": "server_error", "code": code, "message": message});
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": null, "error": error}),
        );
    }

    /// OpenAI SSE bytes in, Responses API SSE bytes out.
    pub fn on_bytes(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = String::new();
        for e in self.parser.push(bytes).unwrap_or_default() {
            let data = e.data.trim();
            if data.is_empty() || self.finished {
                continue;
            }
            if data == "[DONE]" {
                if self.chat_id.is_none() {
                    self.start(&Value::Null, &mut out);
                }
                self.finish(&mut out);
                continue;
            }
            let Ok(chunk) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if self.chat_id.is_none() {
                self.start(&chunk, &mut out);
            }
            if let Some(err) = chunk.get("error") {
                self.fail(err, &mut out);
                continue;
            }
            if chunk.get("usage").is_some_and(|u| !u.is_null()) {
                self.usage = Usage::from_openai(&chunk);
            }
            let Some(choice) = chunk.pointer("/choices/0") else {
                continue;
            };
            if let Some(text) = choice
                .pointer("/delta/content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.text(text, &mut out);
            }
            for call in choice
                .pointer("/delta/tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.call(call, &mut out);
            }
            if let Some(finish) = choice.get("finish_reason").and_then(Value::as_str) {
                self.status = Status::from_finish(Some(finish));
            }
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(out: &[u8]) -> Vec<(String, Value)> {
        let text = String::from_utf8(out.to_vec()).unwrap();
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let mut lines = e.lines();
                let name = lines
                    .next()
                    .unwrap()
                    .strip_prefix("event: ")
                    .unwrap()
                    .to_string();
                let data: Value =
                    serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                        .unwrap();
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect()
    }

    #[test]
    fn chat_streams_become_response_events() {
        let mut echo = Echo::default();
        echo.fields
            .insert("instructions".into(), json!("Be brief."));
        let mut a = StreamAdapter::new(echo);
        let input = concat!(
            "data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"created\":7,\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]}}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n",
            "data: [DONE]\n\n",
        );
        // Split at every byte boundary would be the parser's business; two halves are enough here.
        let (head, tail) = input.as_bytes().split_at(200);
        let mut out = a.on_bytes(head);
        out.extend(a.on_bytes(tail));
        let evs = events(&out);
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, (_, e)) in evs.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64);
        }
        assert_eq!(evs[0].1["response"]["status"], "in_progress");
        assert_eq!(evs[0].1["response"]["id"], "resp_chatcmpl1");
        assert_eq!(evs[0].1["response"]["instructions"], "Be brief.");
        assert_eq!(evs[4].1["item_id"], "msg_chatcmpl1");
        assert_eq!(evs[4].1["delta"], "Hel");
        assert_eq!(evs[9].1["text"], "Hello");
        assert_eq!(evs[12].1["arguments"], "{\"a\":1}");
        assert_eq!(evs[12].1["output_index"], 1);
        let done = &evs[14].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["created_at"], 7);
        assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(
            done["output"][1],
            json!({"type": "function_call", "id": "fc_call1", "call_id": "call_1",
            "name": "f", "arguments": "{\"a\":1}", "status": "completed"})
        );
        assert_eq!(done["usage"]["input_tokens"], 5);
        assert_eq!(done["usage"]["output_tokens"], 7);
        assert_eq!(done["usage"]["total_tokens"], 12);
    }

    #[test]
    fn a_broken_stream_fails_and_a_cut_one_is_incomplete() {
        let mut a = StreamAdapter::new(Echo::default());
        let out = a.on_bytes(
            concat!(
                "data: {\"id\":\"c2\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n",
                "data: {\"error\":{\"message\":\"broke\",\"code\":\"stream_interrupted\"}}\n\n",
                "data: [DONE]\n\n",
            )
            .as_bytes(),
        );
        let evs = events(&out);
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[names.len() - 2..], ["response.failed", "error"]);
        assert_eq!(evs[evs.len() - 1].1["error"]["code"], "stream_interrupted");
        assert!(!names.contains(&"response.completed"));
        assert_eq!(
            evs[evs.len() - 2].1["response"]["error"]["code"],
            "stream_interrupted"
        );
        assert_eq!(evs[evs.len() - 1].1["code"], "stream_interrupted");

        let mut b = StreamAdapter::new(Echo::default());
        let out = b.on_bytes(concat!(
            "data: {\"id\":\"c3\",\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"length\"}]}\n\n",
            "data: [DONE]\n\n",
        ).as_bytes());
        let evs = events(&out);
        let last = &evs[evs.len() - 1];
        assert_eq!(last.0, "response.incomplete");
        assert_eq!(
            last.1["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }
}
