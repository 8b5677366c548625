//! MCP tools in the language: `tool NAME(PARAMS) -> T from mcp "SERVER[.TOOL]"` items. Their
//! diagnostics (E0122), the manifest of a program that declares them, the `mcp.call` effect
//! their bodies yield (this test is the host: no server runs), the run-time check of the
//! result against the return type, the shaping of results by `std.mcp.output`, and the `mcp`
//! field of the tool record a model is offered.

use aivm_compiler::render::render;
use aivm_compiler::{compile_file, compile_source};
mod common;

use aivm_vm::format::{manifest_text, Module, VerifiedModule};
use aivm_vm::{HostError, HostValue, Limits, Step, Vm};
use common::{list, record, s};
use serde_json::{json, Value};

/// The codes of the errors compiling `src` reports.
fn errors(src: &str) -> Vec<&'static str> {
    match compile_source("mcp.ail", src) {
        Ok(_) => Vec::new(),
        Err(d) => d.items.iter().map(|d| d.code).collect(),
    }
}

/// The rendered diagnostics of `src`, which must fail to compile.
fn rendered(src: &str) -> String {
    match compile_source("mcp.ail", src) {
        Ok(_) => panic!("compiled without errors:\n{src}"),
        Err(d) => render(&d, false),
    }
}

fn compile(src: &str) -> Module {
    compile_source("mcp.ail", src)
        .unwrap_or_else(|d| panic!("does not compile:\n{}", render(&d, false)))
        .module
}

fn tools(m: &Module) -> Vec<String> {
    m.manifest
        .tools
        .iter()
        .map(|&t| m.str(t).to_string())
        .collect()
}

fn text_item(t: &str) -> HostValue {
    record(vec![("type", s("text")), ("text", s(t))])
}

/// A result as the host gives it: `{content, structured}`.
fn result(content: Vec<HostValue>, structured: HostValue) -> HostValue {
    record(vec![("content", list(content)), ("structured", structured)])
}

/// What a run did: the lines printed, each `mcp.call` as `[id, arguments]`, each model
/// request, and the uncaught error, if any.
#[derive(Debug, Default)]
struct Run {
    printed: Vec<String>,
    calls: Vec<Value>,
    requests: Vec<Value>,
    failure: Option<String>,
}

/// Runs `main`, answering `mcp.call` with `answer(id, arguments)`, model turns from
/// `replies` in order, and letting every `tool.call` gate pass.
fn run(
    src: &str,
    answer: impl Fn(&str, &HostValue) -> Result<HostValue, HostError>,
    mut replies: Vec<HostValue>,
) -> Run {
    let module = VerifiedModule::new(compile(src)).expect("the compiled module verifies");
    let mut vm = Vm::new(&module, Limits::default()).expect("module loads");
    vm.start_main(vec![]).expect("main starts");
    replies.reverse();
    let mut out = Run::default();
    loop {
        match vm.run() {
            Ok(Step::Done { .. }) => return out,
            Ok(Step::Idle) => panic!("idle with nothing in flight: {out:#?}"),
            Ok(Step::Effect(req)) => {
                let r = match req.native.as_str() {
                    "io.print" => {
                        out.printed
                            .push(req.args[0].as_str().unwrap_or("?").to_string());
                        Ok(HostValue::null())
                    }
                    "mcp.call" => {
                        assert_eq!(req.args.len(), 2, "mcp.call(tool, arguments)");
                        let id = req.args[0].as_str().expect("the id is a string");
                        out.calls.push(json!([id, req.args[1].to_json()]));
                        answer(id, &req.args[1])
                    }
                    "llm.call" => {
                        out.requests.push(req.args[1].to_json());
                        Ok(replies.pop().expect("a scripted turn is left"))
                    }
                    "tool.call" => Ok(HostValue::null()),
                    other => panic!("unexpected effect {other}"),
                };
                vm.resume(req.task, r).expect("resume");
            }
            Err(e) => {
                out.failure = Some(e.to_string());
                return out;
            }
        }
    }
}

// ---------------------------------------------------------------- diagnostics

#[test]
fn a_bad_source_is_e0122() {
    let item = |source: &str| format!("tool t(x: string) -> string {source}\nfn main() {{\n}}\n");
    for bad in [
        // A server name with a character outside A-Z a-z 0-9 _ -.
        r#"from mcp "my server""#,
        r#"from mcp "caf\u{e9}""#,
        // A native family as the server.
        r#"from mcp "fs""#,
        r#"from mcp "llm.read""#,
        r#"from mcp "mcp""#,
        // A remote name with a bad character, or empty.
        r#"from mcp "files.read file""#,
        r#"from mcp "files.rea/d""#,
        r#"from mcp "files.""#,
        r#"from mcp ".read""#,
        // Words other than `from mcp`.
        r#"from "files""#,
        r#"with mcp "files""#,
        r#"from http "files""#,
    ] {
        assert_eq!(errors(&item(bad)), ["E0122"], "{bad}");
    }
    // Missing altogether, at the end of the file or before the next item.
    assert_eq!(errors("tool t(x: string) -> string\n"), ["E0122"]);
    assert_eq!(errors("tool t(x: string)\nfn main() {\n}\n"), ["E0122"]);
    // An id over 128 bytes.
    let long = format!("{}.{}", "s".repeat(64), "t".repeat(64));
    assert_eq!(errors(&item(&format!("from mcp \"{long}\""))), ["E0122"]);
    let fits = format!("{}.{}", "s".repeat(60), "t".repeat(60));
    assert_eq!(
        errors(&item(&format!("from mcp \"{fits}\""))),
        Vec::<&str>::new()
    );
    // Interpolation is not allowed in the source.
    assert_eq!(errors(&item(r#"from mcp "{x}""#))[0], "E0115");
}

#[test]
fn e0122_says_what_is_wrong_and_what_to_do() {
    let family = rendered("tool read(path: string) -> string from mcp \"fs\"\n");
    assert!(family.contains("E0122"), "{family}");
    assert!(
        family.contains("`fs` is a family of VM natives"),
        "{family}"
    );
    assert!(family.contains("rename the server"), "{family}");
    let chars = rendered("tool read(path: string) from mcp \"files.read file\"\n");
    assert!(
        chars.contains("`read file` is not an MCP tool name"),
        "{chars}"
    );
    let missing = rendered("tool read(path: string) -> string\n");
    assert!(
        missing.contains("does not say where the tool comes from"),
        "{missing}"
    );
    assert!(
        missing.contains("from mcp \\\"SERVER\\\"") || missing.contains("from mcp \"SERVER\""),
        "{missing}"
    );
}

#[test]
fn tool_stays_a_name_everywhere_but_the_start_of_an_item() {
    let src = r#"
fn tool(x) {
  return x + 1
}

fn main() {
  let tool = {fn: fn(x) { return x * 2 }}
  print(tool.fn(3))
}
"#;
    let r = run(src, |_, _| panic!("no MCP call"), vec![]);
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["6"]);
}

#[test]
fn a_tool_item_is_typed_like_a_function() {
    // Arity and argument types are checked statically at calls of a tool item.
    let src = "tool read(path: string) -> string from mcp \"files\"\n\
               fn main() {\n  print(read(1))\n  print(read(\"a\", \"b\"))\n}\n";
    assert_eq!(errors(src), ["E0301", "E0304"]);
    // Its result has its declared type.
    let src = "tool count(path: string) -> int from mcp \"files\"\n\
               fn main() {\n  let s: string = count(\"a\")\n  print(s)\n}\n";
    assert_eq!(errors(src), ["E0301"]);
    // A parameter declared twice.
    let src = "tool t(a: string, a: int) from mcp \"files\"\nfn main() {\n}\n";
    assert_eq!(errors(src), ["E0202"]);
    // A name taken twice.
    let src = "fn t() {\n}\ntool t(a: string) from mcp \"files\"\nfn main() {\n}\n";
    assert_eq!(errors(src), ["E0202"]);
}

// ---------------------------------------------------------------- manifest

const TWO_TOOLS: &str = r#"
/// Reads a text file of the granted folder.
tool read_text_file(path: string) -> string from mcp "files"

/// Adds two numbers (the server names it `get-sum`).
tool add(a: int, b: int) -> any from mcp "everything.get-sum"

tool never_used(x: string) -> string from mcp "other"

fn main() {
  print(read_text_file("notes.txt"))
  print(add(2, 3))
}
"#;

#[test]
fn the_manifest_lists_mcp_call_and_the_ids_of_the_tools_the_code_can_reach() {
    let m = compile(TWO_TOOLS);
    assert_eq!(
        tools(&m),
        [
            "everything.get-sum",
            "files.read_text_file",
            "io.print",
            "mcp.call"
        ],
        "a tool item nothing calls is pruned, and its id with it"
    );
    let text = manifest_text(&m);
    assert!(
        text.contains("tools:\n  io.print\n  mcp.call\nmcp tools:\n  everything.get-sum\n  files.read_text_file\noffered to models:\n  (none)\n"),
        "{text}"
    );
    VerifiedModule::new(m).expect("the verifier accepts MCP ids in the manifest (V20, V21)");
}

#[test]
fn a_module_without_tool_items_has_no_mcp_section() {
    let m = compile("fn main() {\n  print(1)\n}\n");
    assert!(!manifest_text(&m).contains("mcp tools"));
}

#[test]
fn an_exported_tool_item_is_a_root_and_an_export() {
    let m = compile("export tool search(q: string) -> string from mcp \"web\"\n");
    assert_eq!(tools(&m), ["mcp.call", "web.search"]);
    let exports: Vec<&str> = m.exports.iter().map(|e| m.str(e.name)).collect();
    assert_eq!(exports, ["search"]);
}

// ---------------------------------------------------------------- running

#[test]
fn a_call_yields_mcp_call_with_the_id_and_the_arguments_record() {
    let r = run(
        TWO_TOOLS,
        |id, _| match id {
            "files.read_text_file" => Ok(result(
                vec![text_item("line 1"), text_item("line 2")],
                HostValue::null(),
            )),
            _ => Ok(result(
                vec![text_item("5")],
                record(vec![("sum", HostValue::int(5))]),
            )),
        },
        vec![],
    );
    assert_eq!(r.failure, None);
    assert_eq!(
        r.calls,
        [
            json!(["files.read_text_file", {"path": "notes.txt"}]),
            json!(["everything.get-sum", {"a": 2, "b": 3}]),
        ]
    );
    // `-> string`: the text items joined; otherwise the structured content.
    assert_eq!(r.printed, ["line 1\nline 2", r#"{"sum": 5}"#]);
}

#[test]
fn a_tool_without_parameters_sends_an_empty_object() {
    let src = "tool ping() -> string from mcp \"everything\"\nfn main() {\n  print(ping())\n}\n";
    let r = run(
        src,
        |_, _| Ok(result(vec![text_item("pong")], HostValue::null())),
        vec![],
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.calls, [json!(["everything.ping", {}])]);
    assert_eq!(r.printed, ["pong"]);
}

#[test]
fn the_result_is_checked_against_the_return_type_at_run_time() {
    let src = r#"
tool count(path: string) -> int from mcp "files"
type Sum = {sum: int}
tool add(a: int, b: int) -> Sum from mcp "everything.get-sum"

fn main() {
  print(add(1, 2).sum)
  try {
    print(count("x"))
  } catch e {
    print(e.kind)
  }
  print(count("y"))
}
"#;
    let r = run(
        src,
        |id, args| match id {
            "everything.get-sum" => Ok(result(vec![], record(vec![("sum", HostValue::int(3))]))),
            // "x": a text answer where an int is declared; "y": structured content that fits.
            _ => Ok(match args.to_json()["path"].as_str() {
                Some("x") => result(vec![text_item("seven")], HostValue::null()),
                _ => result(vec![], HostValue::int(7)),
            }),
        },
        vec![],
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["3", "TypeError", "7"]);
}

#[test]
fn server_errors_reach_the_program_as_catchable_errors() {
    let src = r#"
tool read(path: string) -> string from mcp "files"
fn main() {
  try {
    print(read("x"))
  } catch e {
    print("{e.kind}: {e.message}")
  }
}
"#;
    let r = run(
        src,
        |_, _| Err(HostError::new("ToolError", "no such file")),
        vec![],
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["ToolError: no such file"]);
}

#[test]
fn a_tool_item_of_an_imported_file_is_called_like_its_functions() {
    let dir = std::env::temp_dir().join(format!("aivm-mcp-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("files.ail"),
        "/// Reads a file.\ntool read(path: string) -> string from mcp \"files.read_text_file\"\n",
    )
    .expect("write files.ail");
    let main = dir.join("main.ail");
    std::fs::write(
        &main,
        "import \"./files.ail\"\nfn main() {\n  let f = files.read\n  print(f(\"a\"))\n}\n",
    )
    .expect("write main.ail");
    let compiled = compile_file(&main);
    let _ = std::fs::remove_dir_all(&dir);
    let m = compiled
        .unwrap_or_else(|d| panic!("{}", render(&d, false)))
        .module;
    assert_eq!(tools(&m), ["files.read_text_file", "io.print", "mcp.call"]);
}

// ---------------------------------------------------------------- std.mcp.output

#[test]
fn std_mcp_output_shapes_results_as_the_contract_says() {
    // Pure: results built in the program, fed through `output` and `text_of`.
    let src = r#"
import std.mcp

fn main() {
  let two = {content: [{type: "text", text: "a"}, {type: "image", data: "AA==", mime_type: "image/png"}, {type: "text", text: "b"}], structured: null}
  print(mcp.output(two, true))
  print(mcp.output(two, false))
  let structured = {content: [{type: "text", text: "\{\"n\": 1\}"}], structured: {n: 1}}
  print(mcp.output(structured, false))
  print(mcp.output(structured, true))
  let one = {content: [{type: "text", text: "only"}], structured: null}
  print(mcp.output(one, false))
  let image = {content: [{type: "image", data: "AA==", mime_type: "image/png"}], structured: null}
  print(mcp.output(image, false))
  print(mcp.output(image, true) == "")
  print(mcp.text_of({content: [], structured: null}) == "")
}
"#;
    let r = run(src, |_, _| panic!("no MCP call"), vec![]);
    assert_eq!(r.failure, None);
    assert_eq!(
        r.printed,
        [
            "a\nb",
            r#"[{type: "text", text: "a"}, {type: "image", data: "AA==", mime_type: "image/png"}, {type: "text", text: "b"}]"#,
            "{n: 1}",
            "{\"n\": 1}",
            "only",
            r#"[{type: "image", data: "AA==", mime_type: "image/png"}]"#,
            "true",
            "true",
        ]
    );
}

// ---------------------------------------------------------------- offered to a model

#[test]
fn an_offered_tool_item_carries_its_mcp_id_and_runs_through_mcp_call() {
    let src = r#"
model smart = "large"

/// Reads a text file.
tool read_text_file(path: string) -> string from mcp "files"

/// Counts words.
fn count(text: string) -> int {
  return len(text)
}

fn main() {
  let answer = llm smart {
    user "Read a.txt"
    tools [read_text_file, count]
  }
  print(answer)
}
"#;
    let call = record(vec![
        ("id", s("c1")),
        ("name", s("read_text_file")),
        ("arguments", s(r#"{"path": "a.txt"}"#)),
    ]);
    let turn = |content: &str, calls: Vec<HostValue>| {
        let finish = if calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        };
        record(vec![
            ("role", s("assistant")),
            ("content", s(content)),
            ("tool_calls", list(calls)),
            ("finish", s(finish)),
            (
                "usage",
                record(vec![
                    ("input_tokens", HostValue::int(1)),
                    ("output_tokens", HostValue::int(1)),
                ]),
            ),
            ("model", s("scripted-1")),
        ])
    };
    let r = run(
        src,
        |_, _| Ok(result(vec![text_item("hello")], HostValue::null())),
        vec![turn("", vec![call]), turn("it says hello", vec![])],
    );
    assert_eq!(r.failure, None);
    assert_eq!(r.printed, ["it says hello"]);
    assert_eq!(
        r.calls,
        [json!(["files.read_text_file", {"path": "a.txt"}])]
    );
    let offered = &r.requests[0]["tools"];
    assert_eq!(offered[0]["name"], "read_text_file");
    assert_eq!(offered[0]["mcp"], "files.read_text_file");
    assert_eq!(offered[0]["description"], "Reads a text file.");
    assert_eq!(offered[0]["parameters"]["required"], json!(["path"]));
    assert!(
        offered[1].get("mcp").is_none(),
        "a function's record has no `mcp`: {}",
        offered[1]
    );
    let m = compile(src);
    assert_eq!(
        tools(&m),
        [
            "count",
            "files.read_text_file",
            "io.print",
            "mcp.call",
            "read_text_file",
            "tool.call"
        ]
    );
}
