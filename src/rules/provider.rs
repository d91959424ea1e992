//! Provider kinds as a closed set (exhaustive matches, no `_` arm, so adding a kind is a compile
//! error until every place handles it), and the policy for provider base URLs: https, or plain
//! http only for loopback hosts, and never a private, link-local or other local IP literal.

use std::net::IpAddr;
use url::{Host, Url};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// api.openai.com.
    OpenAi,
    /// Any API that speaks OpenAI's chat-completions format (Groq, Together, Mistral, vLLM, ...).
    OpenAiCompatible,
    /// Anthropic's Messages API.
    Anthropic,
    /// Azure OpenAI deployments.
    AzureOpenAi,
    /// Google Gemini (generateContent).
    Gemini,
    /// Cloudflare Workers AI, through the Worker's `AI` binding (no URL, no key).
    WorkersAi,
    /// Amazon Bedrock's Converse API, signed with AWS Signature Version 4.
    Bedrock,
}

impl ProviderKind {
    pub const SUPPORTED: [&'static str; 7] = [
        "openai",
        "openai_compatible",
        "anthropic",
        "azure_openai",
        "gemini",
        "workers_ai",
        "bedrock",
    ];

    pub fn parse(kind: &str) -> Result<ProviderKind, String> {
        match kind {
            "openai" => Ok(ProviderKind::OpenAi),
            "openai_compatible" => Ok(ProviderKind::OpenAiCompatible),
            "anthropic" => Ok(ProviderKind::Anthropic),
            "azure_openai" => Ok(ProviderKind::AzureOpenAi),
            "gemini" => Ok(ProviderKind::Gemini),
            "workers_ai" => Ok(ProviderKind::WorkersAi),
            "bedrock" => Ok(ProviderKind::Bedrock),
            k => Err(format!(
                "unknown provider kind \"{k}\" (supported: {})",
                Self::SUPPORTED.join(", ")
            )),
        }
    }

    /// The kinds with an embeddings API the router speaks.
    pub const EMBEDDING_KINDS: [&'static str; 5] = [
        "openai",
        "openai_compatible",
        "azure_openai",
        "gemini",
        "workers_ai",
    ];

    /// Whether this kind has an embeddings API the router speaks.
    pub fn embeds(self) -> bool {
        match self {
            ProviderKind::OpenAi
            | ProviderKind::OpenAiCompatible
            | ProviderKind::AzureOpenAi
            | ProviderKind::Gemini
            | ProviderKind::WorkersAi => true,
            ProviderKind::Anthropic | ProviderKind::Bedrock => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::OpenAiCompatible => "openai_compatible",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::AzureOpenAi => "azure_openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::WorkersAi => "workers_ai",
            ProviderKind::Bedrock => "bedrock",
        }
    }

    /// Whether providers of this kind are reached through a binding, not at a URL.
    pub fn bound(self) -> bool {
        match self {
            ProviderKind::WorkersAi => true,
            ProviderKind::OpenAi
            | ProviderKind::OpenAiCompatible
            | ProviderKind::Anthropic
            | ProviderKind::AzureOpenAi
            | ProviderKind::Gemini
            | ProviderKind::Bedrock => false,
        }
    }
}

/// Check a provider base URL and return it without a trailing slash.
pub fn check_base_url(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| {
        let hint = if e == url::ParseError::IdnaError {
            " (hosts must be ASCII: write an internationalised name in its punycode form, xn--...)"
        } else {
            ""
        };
        format!("not a valid URL: {e}{hint}")
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use api_key_secret".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if let Some(why) = private_host(&url) {
        return Err(format!(
            "must not point at {why} (only loopback hosts are allowed among local addresses, for local development)"
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err("must use https (plain http is allowed only for loopback hosts)".into())
        }
        other => return Err(format!("must use https, not {other}")),
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Why an IP-literal host is not a provider's address: private, link-local (the cloud metadata
/// address 169.254.169.254 among them), shared, unspecified, broadcast or multicast, in IPv4,
/// IPv6, or IPv4 mapped into IPv6. Names are not resolved here.
fn private_host(url: &Url) -> Option<&'static str> {
    let ip = match url.host()? {
        Host::Domain(_) => return None,
        Host::Ipv4(ip) => ip,
        Host::Ipv6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => v4,
            None => {
                let first = ip.segments()[0];
                return if ip.is_unspecified() {
                    Some("an unspecified address (::)")
                } else if first & 0xffc0 == 0xfe80 {
                    Some("a link-local address (fe80::/10)")
                } else if first & 0xfe00 == 0xfc00 {
                    Some("a private address (fc00::/7, unique local)")
                } else if ip.is_multicast() {
                    Some("a multicast address")
                } else {
                    None
                };
            }
        },
    };
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("an unspecified address (0.0.0.0/8)")
    } else if ip.is_link_local() {
        Some("a link-local address (169.254.0.0/16, where cloud metadata services answer)")
    } else if ip.is_private() {
        Some("a private address (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared address (100.64.0.0/10)")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("a broadcast or multicast address")
    } else {
        None
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let table = [
            ("https://api.openai.com/v1", Ok("https://api.openai.com/v1")),
            (
                "https://api.groq.com/openai/v1/",
                Ok("https://api.groq.com/openai/v1"),
            ),
            ("http://127.0.0.1:8788/v1", Ok("http://127.0.0.1:8788/v1")),
            ("http://127.9.9.9/v1", Ok("http://127.9.9.9/v1")),
            ("http://localhost:11434/v1", Ok("http://localhost:11434/v1")),
            ("http://[::1]:8000/v1", Ok("http://[::1]:8000/v1")),
            ("http://api.openai.com/v1", Err("must use https")),
            (
                "http://10.0.0.1/v1",
                Err("must not point at a private address"),
            ),
            (
                "https://169.254.169.254/v1",
                Err("must not point at a link-local address"),
            ),
            (
                "https://0xA9FEA9FE/v1",
                Err("must not point at a link-local address"),
            ),
            (
                "https://[::ffff:169.254.169.254]/v1",
                Err("must not point at a link-local address"),
            ),
            (
                "https://[::ffff:10.1.2.3]/v1",
                Err("must not point at a private address"),
            ),
            (
                "https://10.0.0.1/v1",
                Err("must not point at a private address"),
            ),
            (
                "https://172.20.1.1/v1",
                Err("must not point at a private address"),
            ),
            (
                "https://192.168.1.10/v1",
                Err("must not point at a private address"),
            ),
            (
                "https://100.100.1.1/v1",
                Err("must not point at a shared address"),
            ),
            (
                "https://0.0.0.0/v1",
                Err("must not point at an unspecified"),
            ),
            ("https://[::]/v1", Err("must not point at an unspecified")),
            (
                "https://[fe80::1]/v1",
                Err("must not point at a link-local"),
            ),
            ("https://[fd00::1]/v1", Err("must not point at a private")),
            ("https://172.32.0.1/v1", Ok("https://172.32.0.1/v1")),
            (
                "https://[2606:4700::1111]/v1",
                Ok("https://[2606:4700::1111]/v1"),
            ),
            (
                "https://[::ffff:127.0.0.1]/v1",
                Ok("https://[::ffff:7f00:1]/v1"),
            ),
            ("ftp://x.example/v1", Err("must use https, not ftp")),
            (
                "https://user:pw@x.example/v1",
                Err("must not carry credentials"),
            ),
            ("https://x.example/v1?key=1", Err("must not have a query")),
            ("not a url", Err("not a valid URL")),
            (
                "https://xn--bcher-kva.example/v1",
                Ok("https://xn--bcher-kva.example/v1"),
            ),
            (
                "https://bücher.example/v1",
                Err("not a valid URL: invalid international domain name (hosts must be ASCII"),
            ),
            // Full-width digits are not read as an address here (nor as a name): refused.
            ("https://１０.０.０.１/v1", Err("not a valid URL")),
        ];
        for (raw, want) in table {
            match (check_base_url(raw), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w),
                (Err(got), Err(w)) => assert!(got.starts_with(w), "{raw}: {got}"),
                (got, w) => panic!("{raw}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(ProviderKind::parse("openai"), Ok(ProviderKind::OpenAi));
        assert_eq!(ProviderKind::parse("gemini"), Ok(ProviderKind::Gemini));
        assert!(ProviderKind::parse("grok")
            .unwrap_err()
            .starts_with("unknown provider kind"));
        for k in ProviderKind::SUPPORTED {
            assert_eq!(ProviderKind::parse(k).unwrap().as_str(), k);
        }
    }
}
