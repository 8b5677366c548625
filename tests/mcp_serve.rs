//! `aivm serve --mcp`: exported functions as MCP tools. Driven over stdio by JSON-RPC lines and
//! by the Python SDK client, over Streamable HTTP by the official conformance tool; and the
//! schemas the server shows agree with those the compiler sends to models.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{aivm_command, assert_exit, path_str, root, stderr, temp_dir};

fn fixture() -> PathBuf {
    root().join("tests/mcp/conformance/server.ail")
}

/// A served program on stdio, spoken to one JSON-RPC line at a time.
struct StdioServer {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, notifications included.
    seen: Vec<Value>,
    /// The result this client gives to a request from the server.
    answer: Box<dyn FnMut(&Value) -> Value>,
}

impl StdioServer {
    fn start(dir: &Path, args: &[&str]) -> StdioServer {
        StdioServer::start_as(dir, args, json!({}))
    }

    /// Starts a server and initializes it as a client with these capabilities.
    fn start_as(dir: &Path, args: &[&str], capabilities: Value) -> StdioServer {
        let mut child = aivm_command(dir)
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aivm serve starts");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = StdioServer {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            answer: Box::new(|req| panic!("unexpected request from the server: {req}")),
        };
        let init = s.request(
            1,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": capabilities,
                   "clientInfo": {"name": "aivm-test", "version": "0"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "aivm", "{init}");
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    /// The next message within `wait`, if one comes; requests from the server are answered
    /// with [`StdioServer::answer`] (and returned too).
    fn next(&mut self, wait: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(wait).ok()?;
        // Stdout carries the protocol and nothing else: every line is a JSON-RPC message.
        let msg: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(msg["jsonrpc"], "2.0", "{line}");
        self.seen.push(msg.clone());
        if msg.get("method").is_some() && msg.get("id").is_some() {
            let result = (self.answer)(&msg);
            self.send(json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}));
        }
        Some(msg)
    }

    /// Waits (10 s at most) for the response with this id.
    fn response(&mut self, id: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .next(left)
                .unwrap_or_else(|| panic!("no response with id {id}"));
            if msg["id"] == json!(id) && msg.get("method").is_none() {
                return msg;
            }
        }
    }

    fn send(&mut self, msg: Value) {
        writeln!(self.stdin, "{msg}").expect("write to aivm serve");
        self.stdin.flush().expect("flush");
    }

    /// Sends a request and waits (10 s at most) for the response with its id.
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.response(id)
    }

    fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        self.request(id, "tools/call", json!({"name": tool, "arguments": args}))
    }

    /// Closes stdin: the server ends; its stderr.
    fn finish(mut self) -> String {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "aivm serve did not end at EOF");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(!err.contains("panicked"), "{err}");
        err
    }
}

fn text_of(result: &Value) -> &str {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
}

#[test]
fn stdio_lists_and_calls_tools() {
    let dir = temp_dir("mcp-serve", "stdio");
    let mut s = StdioServer::start(&dir, &[path_str(&fixture()), "--mcp"]);

    let list = s.request(2, "tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "test_simple_text",
            "test_error_handling",
            "test_tool_with_logging",
            "add",
            "greet",
            "test_image_content",
            "test_audio_content",
            "test_embedded_resource",
            "test_multiple_content_types",
            "test_tool_with_progress",
            "test_sampling",
            "test_elicitation",
        ]
    );
    let add = &tools[3];
    assert_eq!(add["description"], "Adds two integers.");
    assert_eq!(
        add["inputSchema"],
        json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
               "required": ["a", "b"], "additionalProperties": false})
    );
    assert_eq!(
        add["outputSchema"]["properties"]["result"],
        json!({"type": "integer"})
    );
    // A string result has no output schema.
    assert!(tools[0].get("outputSchema").is_none(), "{}", tools[0]);

    let r = s.call(3, "add", json!({"a": 2, "b": 3}));
    assert_eq!(text_of(&r), "5");
    assert_eq!(r["result"]["structuredContent"], json!({"result": 5}));
    assert!(r["result"].get("isError").is_none_or(|e| e == false), "{r}");

    // A record result is the structured content itself; a missing optional is null.
    let r = s.call(4, "greet", json!({"name": "Ada"}));
    assert_eq!(
        r["result"]["structuredContent"],
        json!({"greeting": "Hello, Ada", "length": 10})
    );

    let r = s.call(5, "test_simple_text", json!({}));
    assert_eq!(
        r["result"]["content"],
        json!([{"type": "text", "text": "This is a simple text response for testing."}])
    );

    let r = s.call(6, "test_error_handling", json!({}));
    assert_eq!(r["result"]["isError"], true);
    assert_eq!(
        text_of(&r),
        "TestError: This tool intentionally returns an error for testing"
    );

    // Printed lines arrive as log notifications before the result, never as raw output.
    let r = s.call(7, "test_tool_with_logging", json!({}));
    assert_eq!(text_of(&r), "Logging test completed");
    let logs: Vec<&Value> = s
        .seen
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .map(|m| &m["params"]["data"])
        .collect();
    assert_eq!(
        logs,
        [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed"
        ]
    );

    // Bad arguments: an error result naming the problem, and the server goes on.
    for (id, args, want) in [
        (
            8,
            json!({"a": "two", "b": 1}),
            "ValueError: argument a: expected int",
        ),
        (9, json!({"a": 1}), "ValueError: missing argument `b`"),
        (
            10,
            json!({"a": 1, "b": 2, "c": 3}),
            "ValueError: unexpected argument `c`",
        ),
        (
            11,
            json!({"a": 1.5, "b": 2}),
            "ValueError: argument a: expected int",
        ),
    ] {
        let r = s.call(id, "add", args);
        assert_eq!(r["result"]["isError"], true, "{r}");
        assert!(text_of(&r).starts_with(want), "{r}");
    }
    let r = s.call(12, "greet", json!({"name": "Ada", "excited": "very"}));
    assert!(
        text_of(&r).starts_with("ValueError: argument excited: expected bool or null"),
        "{r}"
    );
    // An unknown tool is a JSON-RPC error (invalid params).
    let r = s.request(13, "tools/call", json!({"name": "nope", "arguments": {}}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = s.call(14, "add", json!({"a": 20, "b": 22}));
    assert_eq!(r["result"]["structuredContent"], json!({"result": 42}));

    let err = s.finish();
    assert!(err.contains("serving 12 tool(s) over stdio"), "{err}");
}

#[test]
fn stdio_calls_run_under_the_policy_and_are_journalled() {
    let dir = temp_dir("mcp-serve", "policy");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(dir.join("data/note.txt"), "granted text").expect("write");
    std::fs::write(dir.join("secret.txt"), "secret").expect("write");
    std::fs::write(
        dir.join("prog.ail"),
        "import std.fs\n\n/// Reads a file.\nexport fn read(path: string) -> string {\n  \
         return fs.read(path)\n}\n\n/// Counts forever.\nexport fn spin() -> int {\n  let i = 0\n  \
         while true {\n    i += 1\n  }\n  return i\n}\n",
    )
    .expect("write");
    let mut s = StdioServer::start(
        &dir,
        &[
            "prog.ail",
            "--mcp",
            "--allow-read=data",
            "--fuel=100000",
            "--trace",
            "journals",
        ],
    );
    let r = s.call(2, "read", json!({"path": "data/note.txt"}));
    assert_eq!(text_of(&r), "granted text", "{r}");
    // Outside the grant: the effect is denied inside the call, and the call says so.
    let r = s.call(3, "read", json!({"path": "secret.txt"}));
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(text_of(&r).starts_with("PolicyDenied: "), "{r}");
    // A limit stops one call, not the server.
    let r = s.call(4, "spin", json!({}));
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(text_of(&r).starts_with("FuelExhausted: "), "{r}");
    let r = s.call(5, "read", json!({"path": "data/note.txt"}));
    assert_eq!(text_of(&r), "granted text", "{r}");
    s.finish();

    let mut journals: Vec<String> = std::fs::read_dir(dir.join("journals"))
        .expect("the journal folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    journals.sort();
    assert_eq!(
        journals,
        [
            "call-0001-read.jsonl",
            "call-0002-read.jsonl",
            "call-0003-spin.jsonl",
            "call-0004-read.jsonl"
        ]
    );
    let denied = std::fs::read_to_string(dir.join("journals/call-0002-read.jsonl")).expect("read");
    assert!(
        denied.contains("\"deny\"") || denied.contains("PolicyDenied"),
        "{denied}"
    );
    assert!(denied.contains("run_end"), "{denied}");
}

#[test]
fn http_refuses_a_non_loopback_address() {
    let o = common::aivm(&[
        "serve",
        path_str(&fixture()),
        "--mcp",
        "--http",
        "0.0.0.0:0",
    ]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("not a loopback address"),
        "{}",
        stderr(&o)
    );
}

/// A served program over Streamable HTTP on a free port; killed when dropped.
struct Http {
    child: Child,
    url: String,
}

impl Http {
    fn start(program: &Path) -> Http {
        let mut child = aivm_command(&root())
            .args(["serve", path_str(program), "--mcp", "--http", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aivm serve starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            let line = lines
                .next()
                .and_then(Result::ok)
                .expect("aivm serve says where it listens");
            if let Some(url) = line.strip_prefix("aivm: serving MCP at ") {
                break url.to_string();
            }
        };
        // Keep draining stderr so that the server never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Http { child, url }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The conformance tool's server scenarios that the fixture program provides (the others
/// need prompts, resources, completions, `$ref` schemas or elicitation forms other than one
/// text answer: see spec/mcp.md, "Server mode").
const PASSING: &[&str] = &[
    "server-initialize",
    "ping",
    "logging-set-level",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-error",
    "tools-call-with-logging",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-with-progress",
    "tools-call-sampling",
    "tools-call-elicitation",
    "server-sse-polling",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
];

#[test]
fn conformance_server_scenarios_pass() {
    let npm = aivm_fakes::mcp::installed();
    let server = Http::start(&fixture());
    let out = temp_dir("mcp-serve", "conformance");
    for scenario in PASSING {
        let dir = out.join(scenario);
        let o = Command::new(npm.node22())
            .arg(npm.conformance())
            .args(["server", "--url", &server.url, "--scenario", scenario, "-o"])
            .arg(&dir)
            .output()
            .expect("the conformance tool runs");
        let said = format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "scenario {scenario} failed:\n{said}");
        // Checks are SUCCESS, FAILURE, WARNING (server-sse-polling warns that nothing
        // answered after a reconnection: it calls a tool `test_reconnection` the fixture does
        // not have) or INFO (a message sent or received).
        let checks = checks_of(&dir);
        assert!(
            checks.iter().any(|c| c["status"] == "SUCCESS"),
            "{scenario}: no successful check"
        );
        for c in &checks {
            assert_ne!(c["status"], "FAILURE", "{scenario}: {c}");
        }
    }
}

/// Every check of every `checks.json` beneath `dir`.
fn checks_of(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(checks_of(&p));
        } else if p.file_name().is_some_and(|n| n == "checks.json") {
            let text = std::fs::read_to_string(&p).expect("checks.json");
            let doc: Value = serde_json::from_str(&text).expect("checks.json is JSON");
            out.extend(doc.as_array().cloned().unwrap_or_default());
        }
    }
    out
}

#[test]
fn python_sdk_client_calls_tools_over_stdio() {
    let python = aivm_fakes::mcp::python();
    let o = Command::new(python)
        .arg(root().join("tests/mcp/serve_client.py"))
        .arg(env!("CARGO_BIN_EXE_aivm"))
        .arg(fixture())
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: Value = serde_json::from_slice(&o.stdout).expect("the client prints JSON");
    assert_eq!(doc["server"], "aivm");
    assert_eq!(doc["protocol"], "2025-11-25");
    assert_eq!(
        doc["tools"],
        json!([
            "add",
            "greet",
            "test_audio_content",
            "test_elicitation",
            "test_embedded_resource",
            "test_error_handling",
            "test_image_content",
            "test_multiple_content_types",
            "test_sampling",
            "test_simple_text",
            "test_tool_with_logging",
            "test_tool_with_progress"
        ])
    );
    assert_eq!(doc["add"]["structuredContent"], json!({"result": 42}));
    assert_eq!(doc["add"]["content"][0]["text"], "42");
    assert_eq!(
        doc["greet"]["structuredContent"],
        json!({"greeting": "Hello, Ada!", "length": 11})
    );
    assert_eq!(doc["bad"]["isError"], true);
}

/// The schema `aivm serve` derives from bytecode types is the one the compiler derives from
/// its own types for the same function (sent to models when it is offered as a tool).
#[test]
fn served_schemas_agree_with_the_compilers() {
    let src = r#"
/// How urgent.
type Level = "low" | "high"
/// A search query.
type Query = {text: string, tags: [string], limit: int?, level: Level, weights: map[string, float], mixed: int | string | null}
model m = "large"

/// Searches.
export fn search(q: Query, n: int, flag: bool?, lit: "x" | "y", free, many: [Query]) -> string {
  return "found"
}

fn main() {
  let a = llm m {
    user "hi"
    tools [search]
  }
  print(a)
}
"#;
    let module = aivm_compiler::compile_source("schemas.ail", src)
        .expect("compiles")
        .module;
    let export = module
        .exports
        .iter()
        .find(|e| module.str(e.name) == "search")
        .expect("search is exported");
    let f = &module.functions[export.func as usize];
    let served = aivm_vm::format::schema::arguments(&module, &f.params).expect("a schema");
    // The compiler's schema is a JSON string constant of the module (parsed when offered).
    let compiled: Vec<Value> = module
        .strings
        .iter()
        .filter_map(|s| serde_json::from_str::<Value>(s).ok())
        .filter(|v| v["properties"].get("many").is_some())
        .collect();
    assert_eq!(compiled.len(), 1, "the compiler's schema of search");
    assert_eq!(served, compiled[0]);
    // And it is a real schema, not an empty one that would agree with anything.
    assert_eq!(
        served["properties"]["q"]["properties"]["level"],
        json!({"type": "string", "enum": ["low", "high"], "description": "How urgent."})
    );
}

const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// A function returning `mcp.Content` or `[mcp.Content]` returns content items, in MCP's
/// camelCase, with no structured content and no output schema.
#[test]
fn content_items_are_returned_as_mcp_content() {
    let dir = temp_dir("mcp-serve", "content");
    let mut s = StdioServer::start(&dir, &[path_str(&fixture()), "--mcp"]);
    let list = s.request(2, "tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().expect("tools");
    let image = tools
        .iter()
        .find(|t| t["name"] == "test_image_content")
        .expect("test_image_content is a tool");
    assert!(image.get("outputSchema").is_none(), "{image}");

    let r = s.call(3, "test_image_content", json!({}));
    assert_eq!(
        r["result"],
        json!({"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]})
    );
    let r = s.call(4, "test_audio_content", json!({}));
    assert_eq!(r["result"]["content"][0]["type"], "audio");
    assert_eq!(r["result"]["content"][0]["mimeType"], "audio/wav");
    assert!(r["result"]["content"][0]["data"]
        .as_str()
        .is_some_and(|d| d.starts_with("UklGR")));
    let r = s.call(5, "test_embedded_resource", json!({}));
    assert_eq!(
        r["result"],
        json!({"content": [{"type": "resource", "resource": {
            "uri": "test://embedded-resource",
            "mimeType": "text/plain",
            "text": "This is an embedded resource content."
        }}]})
    );
    let r = s.call(6, "test_multiple_content_types", json!({}));
    assert_eq!(
        r["result"],
        json!({"content": [
            {"type": "text", "text": "Multiple content types test:"},
            {"type": "image", "data": PNG, "mimeType": "image/png"},
            {"type": "resource", "resource": {
                "uri": "test://mixed-content-resource",
                "mimeType": "application/json",
                "text": "{\"test\":\"data\",\"value\":123}"
            }}
        ]})
    );
    s.finish();
}

/// A program's own type named `Content`, even shaped like an item, is a value: only
/// std.mcp's content types are content.
#[test]
fn an_ordinary_record_is_never_content() {
    let dir = temp_dir("mcp-serve", "not-content");
    std::fs::write(
        dir.join("prog.ail"),
        "import std.mcp\n\ntype Content = {type: string, text: string}\n\n/// Mine.\n\
         export fn mine() -> Content {\n  return {type: \"text\", text: \"hi\"}\n}\n\n\
         /// A blob resource, and none.\nexport fn blobs(n: int) -> [mcp.Content] {\n  \
         if n == 0 {\n    return []\n  }\n  \
         return [mcp.resource_blob(\"test://b\", \"application/octet-stream\", \"AAEC\")]\n}\n",
    )
    .expect("write");
    let mut s = StdioServer::start(&dir, &["prog.ail", "--mcp"]);
    let r = s.call(2, "mine", json!({}));
    assert_eq!(
        r["result"]["structuredContent"],
        json!({"type": "text", "text": "hi"})
    );
    assert_eq!(
        r["result"]["content"],
        json!([{"type": "text", "text": "{\"type\":\"text\",\"text\":\"hi\"}"}])
    );
    let r = s.call(3, "blobs", json!({"n": 1}));
    assert_eq!(
        r["result"]["content"],
        json!([{"type": "resource", "resource": {
            "uri": "test://b", "mimeType": "application/octet-stream", "blob": "AAEC"
        }}])
    );
    let r = s.call(4, "blobs", json!({"n": 0}));
    assert_eq!(r["result"], json!({"content": []}));
    s.finish();
}

/// `mcp.progress` becomes notifications/progress with the request's token, in order, before
/// the result; without a token nothing is sent.
#[test]
fn progress_reaches_a_client_that_asked_for_it() {
    let dir = temp_dir("mcp-serve", "progress");
    let mut s = StdioServer::start(&dir, &[path_str(&fixture()), "--mcp"]);
    let r = s.request(
        2,
        "tools/call",
        json!({"name": "test_tool_with_progress", "arguments": {},
               "_meta": {"progressToken": "tok-7"}}),
    );
    assert_eq!(text_of(&r), "Progress test completed");
    let progress: Vec<Value> = s
        .seen
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| m["params"].clone())
        .collect();
    assert_eq!(
        progress,
        [
            json!({"progressToken": "tok-7", "progress": 0.0, "total": 100.0}),
            json!({"progressToken": "tok-7", "progress": 50.0, "total": 100.0, "message": "half way"}),
            json!({"progressToken": "tok-7", "progress": 100.0, "total": 100.0, "message": "done"}),
        ]
    );
    let before = s.seen.len();
    let r = s.call(3, "test_tool_with_progress", json!({}));
    assert_eq!(text_of(&r), "Progress test completed");
    assert!(
        !s.seen[before..]
            .iter()
            .any(|m| m["method"] == "notifications/progress"),
        "{:?}",
        &s.seen[before..]
    );
    s.finish();
}

/// A model bound to `mcp-client:` is answered by the calling client (sampling), and
/// `io.ask` is put to its user (elicitation), when the client declared those capabilities.
#[test]
fn sampling_and_elicitation_go_to_the_calling_client() {
    let dir = temp_dir("mcp-serve", "client-requests");
    let mut s = StdioServer::start_as(
        &dir,
        &[path_str(&fixture()), "--mcp"],
        json!({"sampling": {}, "elicitation": {}}),
    );
    let asked = std::rc::Rc::new(std::cell::RefCell::new(Vec::<Value>::new()));
    let log = asked.clone();
    let mut elicitations = 0;
    s.answer = Box::new(move |req| {
        log.borrow_mut().push(req.clone());
        match req["method"].as_str() {
            Some("sampling/createMessage") => json!({
                "role": "assistant",
                "content": {"type": "text", "text": "hello from the client"},
                "model": "client-model-1",
                "stopReason": "endTurn"
            }),
            Some("elicitation/create") => {
                elicitations += 1;
                if elicitations == 1 {
                    json!({"action": "accept", "content": {"answer": "Ada"}})
                } else {
                    json!({"action": "decline"})
                }
            }
            _ => panic!("unexpected request {req}"),
        }
    });
    let r = s.call(2, "test_sampling", json!({"prompt": "Say hi"}));
    assert_eq!(text_of(&r), "LLM response: hello from the client", "{r}");
    let r = s.call(3, "test_elicitation", json!({"message": "Your name?"}));
    assert_eq!(text_of(&r), "User response: accept, Ada", "{r}");
    let r = s.call(4, "test_elicitation", json!({"message": "Again?"}));
    assert_eq!(
        text_of(&r),
        "User response: io.ask: no answer: the user declined",
        "{r}"
    );
    let mut asked = asked.borrow_mut();
    assert_eq!(asked.len(), 3, "{asked:?}");
    // rmcp gives every request a progress token of its own: not the program's business.
    if let Some(p) = asked[0]["params"].as_object_mut() {
        p.remove("_meta");
    }
    assert_eq!(
        asked[0]["params"],
        json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Say hi"}}],
               "maxTokens": 100})
    );
    assert_eq!(asked[1]["params"]["message"], "Your name?");
    assert_eq!(
        asked[1]["params"]["requestedSchema"],
        json!({"type": "object",
               "properties": {"answer": {"type": "string", "description": "Your answer"}},
               "required": ["answer"]})
    );
    s.finish();
}

/// Without the capabilities, the model call fails (a ModelError) and `io.ask` sees the end
/// of input, as a served call always did.
#[test]
fn a_client_without_sampling_or_elicitation_is_not_asked() {
    let dir = temp_dir("mcp-serve", "no-caps");
    let mut s = StdioServer::start(&dir, &[path_str(&fixture()), "--mcp"]);
    let r = s.call(2, "test_sampling", json!({"prompt": "Say hi"}));
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(
        text_of(&r).starts_with("ModelError: ")
            && text_of(&r).contains("did not declare the sampling capability"),
        "{r}"
    );
    let r = s.call(3, "test_elicitation", json!({"message": "Name?"}));
    assert_eq!(
        text_of(&r),
        "User response: io.ask: no answer: the input ended",
        "{r}"
    );
    s.finish();
}

/// notifications/cancelled stops a call (waiting for an answer, or busy with effects), and
/// frees its slot: with `--max-concurrent-calls=1` the next call waits until then.
#[test]
fn cancellation_stops_a_call_and_frees_its_slot() {
    let dir = temp_dir("mcp-serve", "cancel");
    std::fs::write(
        dir.join("prog.ail"),
        "import std.io\nimport std.mcp\n\n/// Asks.\nexport fn ask() -> string {\n  \
         return io.ask(\"Name?\")\n}\n\n/// Reports progress forever.\nexport fn busy() -> int {\n  \
         let i = 0\n  while true {\n    mcp.progress(i, null, null)\n    i += 1\n  }\n  return i\n}\n\n\
         /// Adds.\nexport fn add(a: int, b: int) -> int {\n  return a + b\n}\n",
    )
    .expect("write");
    let mut s = StdioServer::start_as(
        &dir,
        &[
            "prog.ail",
            "--mcp",
            "--max-concurrent-calls=1",
            "--trace",
            "journals",
        ],
        json!({"elicitation": {}}),
    );
    // The client never answers the question: the call waits for it.
    s.answer = Box::new(|_| json!({"action": "accept", "content": {"answer": "late"}}));
    s.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                  "params": {"name": "ask", "arguments": {}}}));
    // Swallow the elicitation request rather than answer it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = s
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the elicitation request");
        let msg: Value = serde_json::from_str(&line).expect("JSON");
        if msg["method"] == "elicitation/create" {
            break;
        }
    }
    // The only slot is taken: `add` waits.
    s.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                  "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}));
    while let Some(msg) = s.next(Duration::from_millis(500)) {
        assert_ne!(msg["id"], 3, "add ran while the slot was taken: {msg}");
    }
    s.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": 2, "reason": "test"}}),
    );
    let r = s.response(3);
    assert_eq!(
        r["result"]["structuredContent"],
        json!({"result": 3}),
        "{r}"
    );

    // A call busy with effects stops between steps.
    s.send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                  "params": {"name": "busy", "arguments": {}}}));
    std::thread::sleep(Duration::from_millis(300));
    s.send(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": 4, "reason": "test"}}),
    );
    let r = s.call(5, "add", json!({"a": 2, "b": 2}));
    assert_eq!(
        r["result"]["structuredContent"],
        json!({"result": 4}),
        "{r}"
    );
    s.finish();

    // Both cancelled runs ended and said so in their journals.
    for j in ["call-0001-ask.jsonl", "call-0003-busy.jsonl"] {
        let text = std::fs::read_to_string(dir.join("journals").join(j)).expect(j);
        assert!(text.contains("the run was cancelled"), "{j}: {text}");
    }
}

/// Under `aivm run`, progress is journalled and otherwise ignored, and a model bound to
/// `mcp-client:` has nobody to answer it.
#[test]
fn outside_serve_progress_is_journalled_and_the_client_model_absent() {
    let dir = temp_dir("mcp-serve", "run");
    std::fs::write(
        dir.join("prog.ail"),
        "import std.mcp\n\nmodel m = \"helper\"\n\nfn main() {\n  mcp.progress(1, 2, \"half\")\n  \
         print(\"after\")\n  try {\n    let a = llm m {\n      user \"hi\"\n    }\n    print(a)\n  \
         } catch e {\n    print(e.kind)\n  }\n}\n",
    )
    .expect("write");
    let o = common::aivm_in(
        &dir,
        &[
            "run",
            "prog.ail",
            "--model",
            "helper=mcp-client:",
            "--allow-model=helper",
            "--trace",
            "j.jsonl",
        ],
    );
    assert_exit(&o, 0);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "after\nModelError\n");
    let journal = std::fs::read_to_string(dir.join("j.jsonl")).expect("journal");
    let progress = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["effect"] == "mcp.progress")
        .unwrap_or_else(|| panic!("no mcp.progress event: {journal}"));
    assert_eq!(progress["args"], json!([1, 2, "half"]), "{progress}");
    assert!(
        journal.contains("only the MCP client of a tool served by `aivm serve --mcp`"),
        "{journal}"
    );
}
