//! The `aivm-fake-llm` binary end to end: it starts, prints its URL, answers after its latency
//! with the reply its mode asks for, and exits by itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn post(addr: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn answers_after_its_latency_in_each_mode() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aivm-fake-llm"))
        .args([
            "--latency-ms",
            "100",
            "--exit-after-secs",
            "20",
            "--json",
            "{\"n\":1}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    let addr = url.strip_suffix("/v1").unwrap();

    let start = Instant::now();
    let text = post(addr, r#"{"messages":[{"role":"user","content":"hi"}]}"#);
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""content":"ok""#), "{text}");

    let tool = post(
        addr,
        r#"{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}"#,
    );
    assert!(
        tool.contains(r#""finish_reason":"tool_calls""#) && tool.contains(r#""name":"lookup""#),
        "{tool}"
    );

    let structured = post(
        addr,
        r#"{"stream":true,"messages":[],"response_format":{"type":"json_schema"}}"#,
    );
    assert!(
        structured.contains("text/event-stream") && structured.contains(r#"{\"n\":1}"#),
        "{structured}"
    );
    assert!(structured.contains("data: [DONE]"), "{structured}");

    let bad = post(addr, "nope");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    child.kill().unwrap();
    child.wait().unwrap();
}
