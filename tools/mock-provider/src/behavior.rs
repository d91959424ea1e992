//! How the mock answers one request. Tests choose it per target through the model name the router
//! sends: `mock-fast` answers normally; directives after `+` change that, for example
//! `mock-x+status=429+retry_after=3`, `mock-x+delay=500`, `mock-x+malformed`, `mock-x+cut=3`,
//! `mock-x+chunks=20+chunk_delay=50`, `mock-x+stall_after=1+stall_ms=3000`, `mock-x+linger=2000`,
//! `mock-x+answer=billing`. A script queued for a model with `POST /__mock/script`
//! (`{"model": "...", "behaviors": ["status=500", ""]}`) takes precedence, one entry per request.

#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    /// HTTP status to answer with; non-2xx answers carry an OpenAI-shaped error body.
    pub status: u16,
    /// `retry-after` header value (seconds) on the answer.
    pub retry_after: Option<String>,
    /// Wait this long before the response head.
    pub delay_ms: u64,
    /// A 200 whose body is not valid JSON (or, streamed, not valid SSE JSON).
    pub malformed: bool,
    /// Streamed answers: content chunks to send.
    pub chunks: usize,
    /// Streamed answers: pause between chunks.
    pub chunk_delay_ms: u64,
    /// Streamed answers: drop the connection after this many content chunks, without `[DONE]`.
    pub cut_after: Option<usize>,
    /// Streamed answers: after this many events (the role chunk is the first; 0 is right after
    /// the response head), pause `stall_ms` once: a provider that goes quiet.
    pub stall_after: Option<usize>,
    pub stall_ms: u64,
    /// Streamed answers: after the last event, keep the body open this long, then send an SSE
    /// comment and end it: a provider slow to close its stream.
    pub linger_ms: u64,
    /// Streamed answers: an error event inside the 200 stream, before any content.
    pub stream_error: bool,
    /// Streamed answers: a 200 stream that ends with `[DONE]` before any content.
    pub empty_stream: bool,
    /// Leave out `usage` from the answer.
    pub no_usage: bool,
    /// Answer 400 with OpenAI's context_length_exceeded error.
    pub context_length: bool,
    /// Gemini: a 200 whose prompt was blocked for safety.
    pub safety_block: bool,
    /// The whole answer text, instead of `tok0 tok1 ...` (`answer=billing`).
    pub answer: Option<String>,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            status: 200,
            retry_after: None,
            delay_ms: 0,
            malformed: false,
            chunks: 5,
            chunk_delay_ms: 0,
            cut_after: None,
            stall_after: None,
            stall_ms: 0,
            linger_ms: 0,
            stream_error: false,
            empty_stream: false,
            no_usage: false,
            context_length: false,
            safety_block: false,
            answer: None,
        }
    }
}

impl Behavior {
    /// Parse `+`-separated directives; unknown ones are reported so a typo in a test is loud.
    pub fn parse(directives: &str) -> Result<Behavior, String> {
        let mut b = Behavior::default();
        for d in directives
            .split('+')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            let (key, value) = d.split_once('=').unwrap_or((d, ""));
            let num = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("directive {d}: expected a number"))
            };
            match key {
                "ok" => {}
                "status" => {
                    b.status =
                        u16::try_from(num()?).map_err(|_| format!("directive {d}: bad status"))?
                }
                "retry_after" => b.retry_after = Some(value.to_string()),
                "delay" => b.delay_ms = num()?,
                "malformed" => b.malformed = true,
                "chunks" => b.chunks = num()? as usize,
                "chunk_delay" => b.chunk_delay_ms = num()?,
                "cut" => b.cut_after = Some(num()? as usize),
                "stall_after" => b.stall_after = Some(num()? as usize),
                "stall_ms" => b.stall_ms = num()?,
                "linger" => b.linger_ms = num()?,
                "stream_error" => b.stream_error = true,
                "empty_stream" => b.empty_stream = true,
                "no_usage" => b.no_usage = true,
                "safety_block" => b.safety_block = true,
                "answer" => b.answer = Some(value.to_string()),
                "context_length" => {
                    b.context_length = true;
                    b.status = 400;
                }
                other => return Err(format!("unknown mock directive \"{other}\"")),
            }
        }
        Ok(b)
    }

    /// The directives carried by a model name (`name+dir+dir`).
    pub fn from_model(model: &str) -> Result<Behavior, String> {
        Behavior::parse(model.split_once('+').map_or("", |(_, rest)| rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        assert_eq!(
            Behavior::from_model("mock-fast").unwrap(),
            Behavior::default()
        );
        let b = Behavior::from_model(
            "m+status=429+retry_after=3+delay=10+cut=2+chunks=9+chunk_delay=5+stall_after=1+stall_ms=7+linger=4",
        )
        .unwrap();
        assert_eq!(
            (b.status, b.retry_after.as_deref(), b.delay_ms),
            (429, Some("3"), 10)
        );
        assert_eq!((b.cut_after, b.chunks, b.chunk_delay_ms), (Some(2), 9, 5));
        assert_eq!((b.stall_after, b.stall_ms, b.linger_ms), (Some(1), 7, 4));
        assert!(
            Behavior::parse("malformed+stream_error+no_usage")
                .unwrap()
                .malformed
        );
        assert_eq!(
            Behavior::parse(r#"answer={"task": "faq"}"#)
                .unwrap()
                .answer
                .as_deref(),
            Some(r#"{"task": "faq"}"#)
        );
        assert!(Behavior::parse("bogus").unwrap_err().contains("bogus"));
        assert!(Behavior::parse("delay=x").is_err());
    }
}
