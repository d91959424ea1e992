//! The AWS event-stream binary framing (Bedrock's ConverseStream): each message is a prelude
//! (total length, headers length, the prelude's CRC32), typed headers (`:event-type`,
//! `:message-type`, `:exception-type`, ...), a payload, and the message's CRC32. Bytes in, whole
//! messages out, both checksums verified (`crc32fast`); a message split across chunks at any
//! byte waits for the rest. Each message becomes one SSE `data:` event holding
//! `{"<event type>": payload}` (or `{"exception": type, "message": ...}`), so the stream watch and
//! the Bedrock translator read it like any other stream.

use serde_json::{json, Value};

/// The largest message accepted (the framing allows 16 MiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// One decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// String headers by name (`:event-type`, `:message-type`, `:content-type`, ...).
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The message as the JSON the translators read: `{"<event type>": payload}`, or for an
    /// exception `{"exception": "<type>", "message": "..."}`.
    pub fn to_json(&self) -> Value {
        let payload: Value = serde_json::from_slice(&self.payload).unwrap_or(Value::Null);
        match self.header(":message-type") {
            Some("exception" | "error") => {
                let kind = self
                    .header(":exception-type")
                    .or_else(|| self.header(":error-code"))
                    .unwrap_or("exception");
                let message = payload
                    .get("message")
                    .or_else(|| payload.get("Message"))
                    .cloned()
                    .unwrap_or(Value::Null);
                json!({"exception": kind, "message": message})
            }
            _ => {
                let kind = self.header(":event-type").unwrap_or("event");
                json!({ kind: payload })
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; every message they complete, or why the stream is not one.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Message>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 12 {
                return Ok(out);
            }
            let total = be32(&self.buf[0..4]) as usize;
            let headers_len = be32(&self.buf[4..8]) as usize;
            if crc32fast::hash(&self.buf[0..8]) != be32(&self.buf[8..12]) {
                return Err("an event-stream message whose prelude fails its CRC".into());
            }
            if !(16..=MAX_MESSAGE_BYTES).contains(&total) || headers_len > total - 16 {
                return Err(format!(
                    "an event-stream message of impossible length {total}"
                ));
            }
            if self.buf.len() < total {
                return Ok(out);
            }
            let message: Vec<u8> = self.buf.drain(..total).collect();
            if crc32fast::hash(&message[..total - 4]) != be32(&message[total - 4..]) {
                return Err("an event-stream message that fails its CRC".into());
            }
            let headers = parse_headers(&message[12..12 + headers_len])?;
            let payload = message[12 + headers_len..total - 4].to_vec();
            out.push(Message { headers, payload });
        }
    }
}

/// The headers block: string and bytes values kept (as text), the other types skipped over.
fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, String> {
    let bad = || "an event-stream header that runs past its block".to_string();
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = *b.first().ok_or_else(bad)? as usize;
        let name = b.get(1..1 + name_len).ok_or_else(bad)?;
        let name = String::from_utf8_lossy(name).into_owned();
        b = &b[1 + name_len..];
        let kind = *b.first().ok_or_else(bad)?;
        b = &b[1..];
        let fixed = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let len = b.get(0..2).ok_or_else(bad)?;
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                let value = b.get(2..2 + len).ok_or_else(bad)?;
                out.push((name, String::from_utf8_lossy(value).into_owned()));
                b = &b[2 + len..];
                continue;
            }
            other => return Err(format!("an event-stream header of unknown type {other}")),
        };
        b = b.get(fixed..).ok_or_else(bad)?;
    }
    Ok(out)
}

/// One message in the framing (for tests and the mock's fixtures): string headers and a payload.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&out[0..8]).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    #[test]
    fn messages_split_anywhere_come_out_whole() {
        let mut all = event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hé"}}"#,
        );
        all.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#));
        for cut in 0..all.len() {
            let mut d = Decoder::new();
            let mut got = d.push(&all[..cut]).unwrap();
            got.extend(d.push(&all[cut..]).unwrap());
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(
                got[0].to_json(),
                json!({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hé"}}})
            );
            assert_eq!(got[1].header(":event-type"), Some("messageStop"));
        }
    }

    /// Headers of the types the router does not read (bool, int, timestamp) are stepped over.
    #[test]
    fn other_header_types_are_skipped_and_exceptions_read() {
        let mut h = Vec::new();
        for (name, kind, value) in [
            ("b", 0u8, vec![]),
            ("i", 4, vec![0, 0, 0, 7]),
            ("t", 8, vec![0; 8]),
        ] {
            h.push(1);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend(value);
        }
        assert_eq!(parse_headers(&h).unwrap(), Vec::<(String, String)>::new());
        let e = encode(
            &[
                (":message-type", "exception"),
                (":exception-type", "throttlingException"),
            ],
            br#"{"message":"slow down"}"#,
        );
        let m = Decoder::new().push(&e).unwrap();
        assert_eq!(
            m[0].to_json(),
            json!({"exception": "throttlingException", "message": "slow down"})
        );
    }

    #[test]
    fn corrupt_messages_are_refused() {
        let good = event("messageStop", "{}");
        let mut bad_body = good.clone();
        let n = bad_body.len();
        bad_body[n - 6] ^= 1;
        assert!(Decoder::new().push(&bad_body).unwrap_err().contains("CRC"));
        let mut bad_prelude = good.clone();
        bad_prelude[3] ^= 1;
        assert!(Decoder::new()
            .push(&bad_prelude)
            .unwrap_err()
            .contains("prelude"));
    }
}
