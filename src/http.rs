//! The core's own view of HTTP: the incoming request as the shell hands it over, and the reply the
//! shell turns back into a Workers `Response`. Header names are lower case.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Other(String),
}

impl Method {
    pub fn parse(m: &str) -> Method {
        match m.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_string()),
        }
    }
}

/// The request body as read by the shell: it stops reading when the declared length is too large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Bytes(Vec<u8>),
    /// Declared (`content-length`) larger than the limit; not read.
    TooLarge {
        declared: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Unique per request: `cf-ray` when present, otherwise made by the shell.
    pub request_id: String,
    pub colo: Option<String>,
    pub country: Option<String>,
    /// The query string without its `?` (empty when none). The shell reads it only for the admin
    /// API, the one place that takes parameters there (`GET /admin/traffic?since=24h`).
    pub query: String,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::ports::header(&self.headers, name)
    }

    /// The value of a query parameter (percent-decoded), if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A reply's body: bytes, or a stream of the shell's making (`S`, a committed stream in
/// `stream::reply`), so this module knows nothing of how streams are watched.
#[derive(Debug)]
pub enum ReplyBody<S> {
    Bytes(Vec<u8>),
    Stream(S),
}

#[derive(Debug)]
pub struct Reply<S> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody<S>,
}

impl<S> Reply<S> {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Bytes(value.to_string().into_bytes()),
        }
    }

    pub fn error(err: &ApiError) -> Self {
        Reply {
            status: err.status(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Bytes(err.body()),
        }
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.headers.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name.to_string(), value)),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        crate::ports::header(&self.headers, name)
    }
}
