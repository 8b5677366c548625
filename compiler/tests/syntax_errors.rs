//! Snapshot tests of rendered syntax diagnostics (E01xx): one program and one snapshot per
//! kind of mistake, rendered without color exactly as the CLI prints them.

use aivm_compiler::diagnostic::Diagnostics;
use aivm_compiler::parse::parse_module;
use aivm_compiler::render::render;

/// Parses `src` as `main.ail` and renders its diagnostics; a program that parses is a test bug.
fn rendered(src: &str) -> String {
    let mut diags = Diagnostics::default();
    let file = diags.sources.add("main.ail", src);
    match parse_module(file, src) {
        Ok(_) => panic!("expected syntax errors in:\n{src}"),
        Err(items) => diags.items = items,
    }
    render(&diags, false)
}

macro_rules! snapshot {
    ($name:ident, $src:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(rendered($src));
        }
    };
}

snapshot!(
    assignment_in_condition,
    "fn main() {\n  let x = 1\n  if x = 1 {\n    print(x)\n  }\n}\n"
);

snapshot!(
    missing_closing_brace,
    "fn main() {\n  for x in xs {\n    print(x)\n\n  print(\"done\")\n}\n"
);

snapshot!(
    mismatched_delimiter,
    "fn main() {\n  let xs = [1, 2, 3)\n}\n"
);

snapshot!(
    unexpected_closing_delimiter,
    "fn main() {\n  print(1)\n}\n}\n"
);

snapshot!(elif, "fn sign(x: int) -> int {\n  if x > 0 {\n    return 1\n  } elif x < 0 {\n    return -1\n  }\n  return 0\n}\n");

snapshot!(
    double_ampersand,
    "fn main() {\n  if ready && count > 0 {\n    go()\n  }\n}\n"
);

snapshot!(
    bang_not,
    "fn main() {\n  while !done {\n    step()\n  }\n}\n"
);

snapshot!(
    chained_comparison,
    "fn main() {\n  if 0 < x < 10 {\n    print(x)\n  }\n}\n"
);

snapshot!(
    missing_comma_in_call,
    "fn main() {\n  print(\"total\" total)\n}\n"
);

snapshot!(
    integer_too_large,
    "fn main() {\n  let big = 99_999_999_999_999_999_999\n}\n"
);

snapshot!(unterminated_string, "fn main() {\n  print(\"hello)\n}\n");

snapshot!(
    unknown_escape,
    "fn main() {\n  print(\"C:\\Users\\me\")\n}\n"
);

snapshot!(
    json_braces_in_string,
    "fn main() {\n  let prompt = \"Answer as {\"name\": string}\"\n}\n"
);

snapshot!(
    statement_at_top_level,
    "let greeting = \"hi\"\n\nfn main() {\n  print(greeting)\n}\n"
);

snapshot!(keyword_as_name, "fn main() {\n  let type = \"low\"\n}\n");

snapshot!(fn_without_parameter_list, "fn main {\n  print(1)\n}\n");

snapshot!(invalid_assignment_target, "fn main() {\n  f(x) = 3\n}\n");

snapshot!(
    mixed_record_and_map_keys,
    "fn main() {\n  let r = {name: \"x\", \"age\": 3}\n}\n"
);

snapshot!(
    two_statements_on_one_line,
    "fn main() {\n  let a = 1 let b = 2\n}\n"
);

snapshot!(unexpected_end_of_file, "fn main() -> ");

snapshot!(unknown_character, "fn main() {\n  let s = 'hi'\n}\n");

snapshot!(double_equals_in_let, "fn main() {\n  let x == 1\n}\n");

snapshot!(
    several_errors,
    "fn main() {\n  let = 1\n  print(a b)\n  let ok = 2\n}\n\nfn helper(x y) {\n  return x\n}\n"
);

snapshot!(
    unescaped_brace_swallows_string,
    "fn main() {\n  let inbox = \"[\n    {\\\"id\\\": 1}\n  ]\"\n  print(inbox)\n}\n"
);

snapshot!(
    llm_unknown_item,
    "model smart = \"large\"\nfn main() {\n  let a = llm smart {\n    system \"You are terse.\"\n    prompt \"Hi\"\n  }\n  print(a)\n}\n"
);

snapshot!(
    llm_option_twice,
    "model smart = \"large\"\nfn main() {\n  print(llm smart {\n    user \"Hi\"\n    temperature 0.2\n    temperature 0.5\n  })\n}\n"
);

snapshot!(
    llm_tools_not_names,
    "model smart = \"large\"\nfn main() {\n  print(llm smart {\n    user \"Hi\"\n    tools [search, \"lookup\"]\n  })\n}\n"
);

snapshot!(
    llm_items_on_one_line,
    "model smart = \"large\"\nfn main() {\n  print(llm smart { system \"a\" user \"b\" })\n}\n"
);

snapshot!(
    spawn_not_a_call,
    "fn main() {\n  let t = spawn worker\n  print(await t)\n}\n"
);
