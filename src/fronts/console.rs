//! The operator's console: which requests are its pages and files, which static asset answers
//! each, and the headers they are served with. The pages themselves live in `console/` and are
//! uploaded with the Worker's static assets (under `/console/`); the shell only fetches the asset
//! named here and sends it with these headers.
//!
//! Paths: `GET /admin` and `GET /admin/` are the page (`/console/index.html`),
//! `GET /admin/console/<file>` its stylesheet and script. They need no key: they hold no data, and
//! every call the page makes goes to the admin API, which keeps its own authentication. Every
//! other path under `/admin/` is the admin API's (`fronts::admin`).
//!
//! Invariants: only a plain file name (letters, digits, `-`, `_`, one `.` before a known
//! extension) is ever mapped to an asset, so no request can name a file outside `/console/` (the
//! task model included); and every console answer carries the strict content security policy, so
//! the page can load nothing and talk to nothing but this Worker.

use crate::error::{ApiError, ErrorCode};
use crate::http::{Method, Reply};

/// The page's paths.
pub const PAGE_PATHS: [&str; 2] = ["/admin", "/admin/"];
/// Where the page's own files are requested.
pub const FILES_PREFIX: &str = "/admin/console/";
/// Where the console's files sit among the static assets.
const ASSET_DIR: &str = "/console/";
const INDEX: &str = "index.html";

/// Nothing from elsewhere, no inline script or style, no framing, no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the console makes of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Serve this static asset with these headers.
    Asset(Asset),
    /// A console path that is not served as asked: answer this error.
    Refused(ApiError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The asset's path in the static assets (`/console/index.html`).
    pub path: String,
    /// Every header of a successful answer, content type and security headers included.
    pub headers: Vec<(String, String)>,
}

/// The console's answer to `method` on `path`, or `None` when the path is not the console's.
pub fn route(method: &Method, path: &str) -> Option<Route> {
    let file = if PAGE_PATHS.contains(&path) {
        INDEX
    } else {
        path.strip_prefix(FILES_PREFIX)?
    };
    let Some(content_type) = content_type(file) else {
        return Some(Route::Refused(ApiError::new(
            ErrorCode::NotFound,
            format!("the console has no file {path}"),
        )));
    };
    if *method != Method::Get {
        return Some(Route::Refused(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{path} is a console page: GET only"),
        )));
    }
    Some(Route::Asset(Asset {
        path: format!("{ASSET_DIR}{file}"),
        headers: headers(content_type),
    }))
}

/// The answer when the asset the route named could not be read: a deployment without the console
/// among its static assets (`why` says what went wrong; it names no secret).
pub fn unavailable<S>(asset: &Asset, why: &str) -> Reply<S> {
    let err = ApiError::new(
        ErrorCode::NotFound,
        format!(
            "the console file {} is not available ({why}); build with scripts/build-wasm.sh, which puts console/ into the static assets",
            asset.path
        ),
    );
    let mut reply = Reply::error(&err);
    for (name, value) in security_headers() {
        reply.set_header(name, value);
    }
    reply
}

/// A refused console request as a reply, with the same security headers as the pages.
pub fn refused<S>(err: &ApiError) -> Reply<S> {
    let mut reply = Reply::error(err);
    for (name, value) in security_headers() {
        reply.set_header(name, value);
    }
    reply
}

/// The content type of a console file, or `None` for a name the console never serves.
fn content_type(file: &str) -> Option<&'static str> {
    let (stem, ext) = file.rsplit_once('.')?;
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if stem.is_empty() || !stem.chars().all(plain) {
        return None;
    }
    match ext {
        "html" => Some("text/html; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "js" => Some("text/javascript; charset=utf-8"),
        "svg" => Some("image/svg+xml"),
        "png" => Some("image/png"),
        _ => None,
    }
}

fn security_headers() -> [(&'static str, &'static str); 4] {
    [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        // The pages change with each deploy; a browser asks again rather than keep an old script.
        ("cache-control", "no-cache"),
    ]
}

fn headers(content_type: &str) -> Vec<(String, String)> {
    let mut out = vec![("content-type".to_string(), content_type.to_string())];
    out.extend(
        security_headers()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(method: Method, path: &str) -> Asset {
        match route(&method, path) {
            Some(Route::Asset(a)) => a,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn refused_code(method: Method, path: &str) -> ErrorCode {
        match route(&method, path) {
            Some(Route::Refused(e)) => e.code,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn header<'a>(a: &'a Asset, name: &str) -> Option<&'a str> {
        crate::ports::header(&a.headers, name)
    }

    #[test]
    fn the_page_is_served_at_admin_with_and_without_the_slash() {
        for path in ["/admin", "/admin/"] {
            let a = asset(Method::Get, path);
            assert_eq!(a.path, "/console/index.html");
            assert_eq!(header(&a, "content-type"), Some("text/html; charset=utf-8"));
        }
    }

    #[test]
    fn files_map_into_the_console_folder_with_their_content_type() {
        let css = asset(Method::Get, "/admin/console/console.css");
        assert_eq!(css.path, "/console/console.css");
        assert_eq!(
            header(&css, "content-type"),
            Some("text/css; charset=utf-8")
        );
        let js = asset(Method::Get, "/admin/console/console.js");
        assert_eq!(js.path, "/console/console.js");
        assert_eq!(
            header(&js, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
    }

    #[test]
    fn every_answer_carries_the_security_headers() {
        let a = asset(Method::Get, "/admin/");
        assert_eq!(
            header(&a, "content-security-policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert_eq!(header(&a, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&a, "referrer-policy"), Some("no-referrer"));
        let err = ApiError::new(ErrorCode::NotFound, "x");
        let reply: Reply<()> = refused(&err);
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        let reply: Reply<()> = unavailable(&a, "HTTP 404");
        assert_eq!(reply.status, 404);
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }

    #[test]
    fn the_admin_api_paths_are_not_the_consoles() {
        for path in [
            "/admin/rules",
            "/admin/rules/history",
            "/admin/keys",
            "/admin/explain",
            "/admin/traffic",
            "/admin/console",
            "/administrator",
            "/v1/chat/completions",
            "/",
        ] {
            assert_eq!(route(&Method::Get, path), None, "{path}");
        }
    }

    #[test]
    fn no_name_reaches_outside_the_console_folder() {
        for path in [
            "/admin/console/",
            "/admin/console/../tasks-v2.trcls",
            "/admin/console/..%2ftasks-v2.trcls",
            "/admin/console/sub/console.js",
            "/admin/console/.js",
            "/admin/console/console.js.map",
            "/admin/console/tasks-v2.trcls",
            "/admin/console/lexicon.trlx",
            "/admin/console/../lexicon.trlx",
            "/admin/console/console",
            "/admin/console/a.b.js",
        ] {
            assert_eq!(
                refused_code(Method::Get, path),
                ErrorCode::NotFound,
                "{path}"
            );
        }
    }

    #[test]
    fn only_get_is_served() {
        assert_eq!(
            refused_code(Method::Post, "/admin/console/console.js"),
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            refused_code(Method::Put, "/admin"),
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            refused_code(Method::Delete, "/admin/"),
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            refused_code(Method::Other("PATCH".into()), "/admin"),
            ErrorCode::MethodNotAllowed
        );
    }
}
