//! A fake of the Cloudflare API on 127.0.0.1 for the CLI's tests: one thread reads each HTTP/1.1
//! request (method, path, authorization, body) and answers what the test's handler returns.
#![expect(clippy::unwrap_used, reason = "test doubles fail loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

pub struct FakeRequest {
    pub method: String,
    /// With its query string.
    pub path: String,
    pub auth: String,
    pub body: Vec<u8>,
}

/// Serve until the test ends; the API base URL (`http://127.0.0.1:PORT/client/v4`).
pub fn serve(
    content_type: Option<&'static str>,
    handler: impl Fn(FakeRequest) -> (u16, String) + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!(
        "http://127.0.0.1:{}/client/v4",
        listener.local_addr().unwrap().port()
    );
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            );
            let (mut len, mut auth) = (0usize, String::new());
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "authorization" => auth = v.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let (code, text) = handler(FakeRequest {
                method,
                path,
                auth,
                body,
            });
            let content_type = content_type
                .map(|t| format!("content-type: {t}\r\n"))
                .unwrap_or_default();
            let mut out = conn;
            let _ = write!(
                out,
                "HTTP/1.1 {code} X\r\n{content_type}content-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    base
}

/// Run the CLI with `args` and extra environment; its exit code, stdout and stderr.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_taskrouter"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
