//! A small incremental parser for server-sent events: bytes in, whole events out, each with its
//! raw text so it can be passed on unchanged. Handles `\n`, `\r\n` and `\r` line ends, events split
//! across chunks at any byte (UTF-8 included), comments, and multi-line `data`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The event exactly as received, terminating blank line included.
    pub raw: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

/// The most bytes one event may hold before the parser gives up on finding its end.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; get every event they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, String> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = event_end(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end).collect();
            if let Some(e) = parse_event(raw) {
                events.push(e);
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(format!("an event longer than {MAX_EVENT_BYTES} bytes"));
        }
        Ok(events)
    }

    /// Bytes received that do not yet form a whole event.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// Index just past the blank line that ends the first event in `buf`.
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        // A line end: \r\n, \n or \r.
        let eol = match buf[i] {
            b'\n' => 1,
            b'\r' if buf.get(i + 1) == Some(&b'\n') => 2,
            b'\r' if i + 1 < buf.len() => 1,
            // A lone \r at the very end may be the start of \r\n: wait for more.
            b'\r' => return None,
            _ => {
                i += 1;
                continue;
            }
        };
        let next = i + eol;
        match buf.get(next) {
            Some(b'\n') => return Some(next + 1),
            Some(b'\r') if buf.get(next + 1) == Some(&b'\n') => return Some(next + 2),
            Some(b'\r') if next + 1 < buf.len() => return Some(next + 1),
            Some(b'\r') | None => return None,
            Some(_) => i = next,
        }
    }
    None
}

fn parse_event(raw: Vec<u8>) -> Option<Event> {
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line
            .split_once(':')
            .map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "event" => event = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    // Events with neither data nor a name (comments, keep-alives) are passed on but carry nothing.
    Some(Event {
        event,
        data: data.unwrap_or_default(),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = SseParser::new();
        chunks.iter().flat_map(|c| p.push(c).unwrap()).collect()
    }

    #[test]
    fn events_across_chunks_and_line_ends() {
        let whole: &[u8] = b"data: {\"a\":1}\n\nevent: message_delta\ndata: x\ndata: y\n\n: keep-alive\n\ndata: [DONE]\n\n";
        let expect = vec![
            ("", "{\"a\":1}"),
            ("message_delta", "x\ny"),
            ("", ""),
            ("", "[DONE]"),
        ];
        for split in 0..whole.len() {
            let (a, b) = whole.split_at(split);
            let got = all(&[a, b]);
            let pairs: Vec<(&str, &str)> = got
                .iter()
                .map(|e| (e.event.as_deref().unwrap_or(""), e.data.as_str()))
                .collect();
            assert_eq!(pairs, expect, "split at {split}");
            assert_eq!(
                got.iter().flat_map(|e| e.raw.clone()).collect::<Vec<u8>>(),
                whole,
                "raw bytes kept"
            );
        }
        // A trailing lone \r may be half of \r\n: the event after it completes only with more bytes.
        let crlf = all(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]);
        assert_eq!(
            crlf.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let one_byte_at_a_time: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(all(&one_byte_at_a_time).len(), 4);
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data: héllo ✓\n\n".as_bytes();
        let got = all(&[&text[..8], &text[8..]]);
        assert_eq!(got[0].data, "héllo ✓");
    }

    /// Seeded fuzzing: SSE-like garbage in random chunkings never panics the parser or any kind of
    /// stream watch, and the parser loses no byte (events' raw bytes plus what is pending = input).
    #[test]
    fn random_input_in_random_chunks() {
        use crate::ports::{Random, SeededRandom};
        use crate::rules::provider::ProviderKind;
        const PIECES: [&str; 14] = [
            "data: ",
            "event: ",
            "\n",
            "\r",
            "\r\n",
            "{",
            "}",
            "\"",
            "[DONE]",
            "é✓",
            ":",
            "error",
            "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}",
            "{\"type\":\"message_start\",\"message\":{}}",
        ];
        let rng = SeededRandom::new(2024);
        let pick = |n: usize| (rng.next_f64() * n as f64) as usize % n;
        for _ in 0..2000 {
            let input: String = (0..pick(60)).map(|_| PIECES[pick(PIECES.len())]).collect();
            let bytes = input.as_bytes();
            let mut parser = SseParser::new();
            let kinds = [
                ProviderKind::OpenAi,
                ProviderKind::Anthropic,
                ProviderKind::Gemini,
            ];
            let mut watches: Vec<_> = kinds
                .iter()
                .map(|k| crate::stream::watch::StreamWatch::for_provider(*k, pick(2) == 1, "c", 0))
                .collect();
            let mut raw = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let end = (at + 1 + pick(9)).min(bytes.len());
                for e in parser.push(&bytes[at..end]).unwrap() {
                    raw.extend(e.raw);
                }
                for w in &mut watches {
                    w.on_chunk(&bytes[at..end]);
                }
                at = end;
            }
            raw.extend_from_slice(parser.pending());
            assert_eq!(raw, bytes, "lossless for {input:?}");
            for w in &mut watches {
                w.on_end();
            }
        }
    }

    #[test]
    fn incomplete_and_oversized() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: partial").unwrap().is_empty());
        assert_eq!(p.pending(), b"data: partial");
        let mut big = SseParser::new();
        assert!(big.push(&vec![b'x'; MAX_EVENT_BYTES + 1]).is_err());
    }
}
