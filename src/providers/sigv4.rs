//! AWS Signature Version 4 for the requests the router sends to Amazon Bedrock: the canonical
//! request, the string to sign and the signing key derived from the secret, date, region and
//! service (HMAC-SHA256 from the `hmac` and `sha2` crates), checked against AWS's published test
//! vectors. `now` comes from the caller: the core keeps no clock.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Long-term or temporary AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, *****)", self.access_key_id)
    }
}

impl Credentials {
    /// `ACCESS_KEY_ID:SECRET_ACCESS_KEY` or `ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN`, as a
    /// Worker secret holds them; `None` for anything else (a Bedrock API key).
    pub fn parse(value: &str) -> Option<Credentials> {
        let mut parts = value.trim().splitn(3, ':');
        let id = parts.next()?;
        let secret = parts.next()?;
        let token = parts.next();
        let plausible = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
        (plausible(id) && plausible(secret) && token.is_none_or(plausible)).then(|| Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: token.map(str::to_string),
        })
    }
}

/// What is signed: the method, the path as sent (its segments already percent-encoded once), the
/// query (`k=v&...`, encoded), the headers (any case) and the body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Where and when it is signed.
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Percent-encoding as SigV4 wants it: everything but unreserved characters (and `/` when
/// `keep_slash`), upper-case hex.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The canonical query: pairs sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request, and the signed header names (`a;b;c`).
pub fn canonical_request(req: &Request, payload_hash: &str) -> (String, String) {
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (k.to_ascii_lowercase(), value)
        })
        .collect();
    headers.sort();
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in headers {
        match merged.last_mut() {
            Some((last, values)) if *last == k => {
                values.push(',');
                values.push_str(&v);
            }
            _ => merged.push((k, v)),
        }
    }
    let signed = merged
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = merged.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    // Services other than S3 encode each path segment twice: the path as sent, encoded again.
    let path = match req.path {
        "" => "/".to_string(),
        p => uri_encode(p, true),
    };
    let canonical = format!(
        "{}\n{path}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        req.method,
        canonical_query(req.query)
    );
    (canonical, signed)
}

/// The signing key for a day, region and service.
fn signing_key(secret: &str, date: &str, scope: &Scope) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The headers to add to `req` (which must already carry `host`): `x-amz-date`, the session token
/// when there is one, and `authorization`.
pub fn sign(req: &Request, credentials: &Credentials, scope: &Scope) -> Vec<(String, String)> {
    let mut added = vec![("x-amz-date".to_string(), scope.amz_date.to_string())];
    if let Some(token) = &credentials.session_token {
        added.push(("x-amz-security-token".into(), token.clone()));
    }
    let headers: Vec<(String, String)> = req.headers.iter().chain(&added).cloned().collect();
    let with_added = Request {
        headers: &headers,
        ..*req
    };
    let (canonical, signed) = canonical_request(&with_added, &sha256_hex(req.body));
    let date = scope.amz_date.get(..8).unwrap_or(scope.amz_date);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.amz_date,
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(&credentials.secret_access_key, date, scope);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    added.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    added
}

/// `YYYYMMDDTHHMMSSZ` for milliseconds since the Unix epoch (UTC, proleptic Gregorian).
pub fn amz_date(now_ms: f64) -> String {
    let secs = (now_ms / 1000.0).floor().max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's example credentials and scope, used by every vector of the SigV4 test suite.
    fn suite() -> (Credentials, Scope<'static>) {
        (
            Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            },
            Scope {
                region: "us-east-1",
                service: "service",
                amz_date: "20150830T123600Z",
            },
        )
    }

    fn signature(method: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let (credentials, scope) = suite();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = Request {
            method,
            path: "/",
            query,
            headers: &headers,
            body,
        };
        let added = sign(&req, &credentials, &scope);
        let auth = &added.last().unwrap().1;
        auth.rsplit("Signature=").next().unwrap().to_string()
    }

    /// The published vectors (aws-sig-v4-test-suite, as kept in awslabs/aws-c-auth
    /// tests/aws-signing-test-suite/v4): request, then `header-signature.txt`.
    #[test]
    fn published_test_vectors() {
        let host = ("Host", "example.amazonaws.com");
        assert_eq!(
            signature("GET", "", &[host], b""),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "get-vanilla"
        );
        assert_eq!(
            signature("POST", "", &[host], b""),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            "post-vanilla"
        );
        assert_eq!(
            signature("POST", "", &[host, ("My-Header1", "value1")], b""),
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
            "post-header-key-sort"
        );
        assert_eq!(
            signature("GET", "Param2=value2&Param1=value1", &[host], b""),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            "get-vanilla-query-order-key-case"
        );
    }

    #[test]
    fn the_intermediate_steps_match_the_suite() {
        let headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            body: b"",
        };
        let (canonical, signed) = canonical_request(&req, &sha256_hex(b""));
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "host;x-amz-date");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            "the hash in get-vanilla's string to sign"
        );
    }

    #[test]
    fn paths_are_encoded_again_and_tokens_signed() {
        let headers = vec![(
            "host".to_string(),
            "bedrock-runtime.us-east-1.amazonaws.com".to_string(),
        )];
        let req = Request {
            method: "POST",
            path: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let (canonical, _) = canonical_request(&req, "x");
        assert!(
            canonical.contains("\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n")
        );
        let (mut credentials, scope) = suite();
        credentials.session_token = Some("TOKEN".into());
        let added = sign(&req, &credentials, &scope);
        assert_eq!(added[1], ("x-amz-security-token".into(), "TOKEN".into()));
        assert!(added[2]
            .1
            .contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    }

    #[test]
    fn dates_and_credentials() {
        assert_eq!(amz_date(1_440_938_160_000.0), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400_000.0), "20000229T000000Z");
        assert_eq!(amz_date(1_798_761_599_000.0), "20261231T235959Z");
        let c = Credentials::parse("AKID:secret/key").unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.session_token.as_deref()),
            ("AKID", None)
        );
        assert_eq!(
            Credentials::parse("AKID:s:tok")
                .unwrap()
                .session_token
                .as_deref(),
            Some("tok")
        );
        assert_eq!(Credentials::parse("bedrock-api-key-abc"), None);
        assert!(!format!("{c:?}").contains("secret"));
    }
}
