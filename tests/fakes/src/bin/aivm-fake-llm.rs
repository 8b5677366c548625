//! `aivm-fake-llm`: an OpenAI-compatible chat-completions server for benchmarks. It answers
//! every request to `/v1/chat/completions` after `--latency-ms` with a fixed reply — text, a
//! tool call, or a JSON object — plain or streamed as the request asks. It listens on
//! 127.0.0.1 only and prints `listening on http://127.0.0.1:PORT/v1` once ready.
//!
//! ```text
//! aivm-fake-llm [--port N] [--latency-ms N] [--mode auto|text|tool|structured]
//!               [--text S] [--tool NAME] [--args JSON] [--json JSON] [--exit-after-secs N]
//! ```
//!
//! `auto` (the default) answers a request offering tools with a tool call unless its last
//! message is a tool result (so an agent's call → tool → call loop ends after one round),
//! a request with `response_format` with the JSON object, anything else with the text.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aivm_fakes::{openai, respond, Reply};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Auto,
    Text,
    Tool,
    Structured,
}

#[derive(Debug)]
struct Options {
    port: u16,
    latency: Duration,
    mode: Mode,
    text: String,
    tool: String,
    args: Value,
    json: Value,
    exit_after: Option<Duration>,
}

const USAGE: &str =
    "usage: aivm-fake-llm [--port N] [--latency-ms N] [--mode auto|text|tool|structured] \
[--text S] [--tool NAME] [--args JSON] [--json JSON] [--exit-after-secs N]";

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        port: 0,
        latency: Duration::ZERO,
        mode: Mode::Auto,
        text: "ok".into(),
        tool: "lookup".into(),
        args: json!({"query": "aivm"}),
        json: json!({"answer": "ok"}),
        exit_after: None,
    };
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        let parse_json =
            |v: String| serde_json::from_str::<Value>(&v).map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--port" => {
                o.port =
                    u16::try_from(number(value()?)?).map_err(|_| "--port: too large".to_string())?
            }
            "--latency-ms" => o.latency = Duration::from_millis(number(value()?)?),
            "--mode" => {
                o.mode = match value()?.as_str() {
                    "auto" => Mode::Auto,
                    "text" => Mode::Text,
                    "tool" => Mode::Tool,
                    "structured" => Mode::Structured,
                    other => return Err(format!("--mode: unknown mode {other:?}")),
                }
            }
            "--text" => o.text = value()?,
            "--tool" => o.tool = value()?,
            "--args" => o.args = parse_json(value()?)?,
            "--json" => o.json = parse_json(value()?)?,
            "--exit-after-secs" => o.exit_after = Some(Duration::from_secs(number(value()?)?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

struct Server {
    o: Options,
    served: AtomicU64,
}

/// What to answer: text, a tool call, or the JSON object.
fn choose(o: &Options, req: &Value) -> Mode {
    if o.mode != Mode::Auto {
        return o.mode;
    }
    let last_is_tool = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    let offers_tools = req["tools"].as_array().is_some_and(|t| !t.is_empty());
    if offers_tools && !last_is_tool {
        Mode::Tool
    } else if req.get("response_format").is_some_and(|r| !r.is_null()) {
        Mode::Structured
    } else {
        Mode::Text
    }
}

async fn chat(State(s): State<Arc<Server>>, body: Bytes) -> Response {
    let n = s.served.fetch_add(1, Ordering::Relaxed);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return respond(Reply::json(
            400,
            &openai::error_body(400, "the body is not JSON", "invalid_request_error"),
        ))
        .await;
    };
    let stream = req["stream"] == true;
    let id = format!("call_{n}");
    let args = s.o.args.to_string();
    let json_text = s.o.json.to_string();
    let reply = match (choose(&s.o, &req), stream) {
        (Mode::Tool, false) => Reply::json(200, &openai::tool_calls(&[(&id, &s.o.tool, &args)])),
        (Mode::Tool, true) => Reply::sse(openai::stream_tool_call(&id, &s.o.tool, &[&args])),
        (Mode::Structured, false) => Reply::json(200, &openai::completion(&json_text, "stop")),
        (Mode::Structured, true) => Reply::sse(openai::stream_text(&[&json_text], "stop")),
        (_, false) => Reply::json(200, &openai::completion(&s.o.text, "stop")),
        (_, true) => Reply::sse(openai::stream_text(&[&s.o.text], "stop")),
    };
    respond(reply.with_delay(s.o.latency)).await
}

fn main() -> ExitCode {
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aivm-fake-llm: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aivm-fake-llm: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(o: Options) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", o.port)).await?;
    let addr = listener.local_addr()?;
    let exit_after = o.exit_after;
    let state = Arc::new(Server {
        o,
        served: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/health", get(|| async { "{\"status\":\"ok\"}" }))
        .with_state(state.clone());
    let mut out = std::io::stdout();
    writeln!(out, "listening on http://{addr}/v1")?;
    out.flush()?;
    let server = axum::serve(listener, app);
    match exit_after {
        Some(d) => {
            tokio::select! {
                r = server => r?,
                _ = tokio::time::sleep(d) => {}
            }
        }
        None => server.await?,
    }
    eprintln!(
        "aivm-fake-llm: served {} requests",
        state.served.load(Ordering::Relaxed)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Options {
        parse_args(args.iter().map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn arguments() {
        let o = opts(&[
            "--latency-ms",
            "100",
            "--mode",
            "tool",
            "--args",
            "{\"a\":1}",
        ]);
        assert_eq!(
            (o.latency, o.mode, o.args),
            (Duration::from_millis(100), Mode::Tool, json!({"a": 1}))
        );
        assert!(parse_args(["--mode".to_string(), "loud".to_string()].into_iter()).is_err());
        assert!(parse_args(["--port".to_string()].into_iter()).is_err());
    }

    #[test]
    fn auto_mode_ends_a_tool_loop_after_one_round() {
        let o = opts(&[]);
        let tools = json!([{"type": "function"}]);
        let ask = json!({"messages": [{"role": "user"}], "tools": tools});
        let after = json!({"messages": [{"role": "user"}, {"role": "assistant"}, {"role": "tool"}], "tools": tools});
        let structured =
            json!({"messages": [{"role": "user"}], "response_format": {"type": "json_schema"}});
        assert_eq!(choose(&o, &ask), Mode::Tool);
        assert_eq!(choose(&o, &after), Mode::Text);
        assert_eq!(choose(&o, &structured), Mode::Structured);
        assert_eq!(choose(&o, &json!({"messages": []})), Mode::Text);
    }
}
