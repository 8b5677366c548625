//! Robustness: thousands of deterministic mutations of valid programs (token deletion,
//! duplication and swaps, byte flips, truncation) must never make `parse_module` (or the
//! rendering of its diagnostics) panic.

mod common;

use aivm_compiler::diagnostic::Diagnostics;
use aivm_compiler::parse::parse_module;
use aivm_compiler::render::render;
use common::Rng;

const PROGRAMS: &[&str] = &[
    r#"import std.strings as s
import "./util.ail"
/// A ticket.
type Ticket = { title: string, severity: "low" | "medium" | "high", tags: [string], customer: string? }
extern fn upper(s: string) -> string = "string.upper"
export fn main(args: [string]) -> int {
  let t: Ticket = {title: "x", severity: "low", tags: [], customer: null}
  if t.severity == "high" and len(args) > 0 { print("page {t.title}!") } else if not ok { return 1 } else { }
  for i, a in args { print("{i}: {a}") }
  return 0
}
"#,
    r#"fn fib(n: int) -> int {
  if n < 2 { return n }
  return fib(n - 1) + fib(n - 2)
}
fn main() {
  let xs = [1, 2.5, -3, 1_000, 1e9]
  xs[0] += 1; xs[1] = xs[1:2][0] * 2 % 3
  let m = {"a": 1, "b": {k: [null, true, false]}}
  while true { break }
  try { throw error("Oops", "m") } catch e { print(e.kind) }
  let f = fn(x) -> int { return x / 2 }
  fn inner(y) { return inner(y) }
  for k in 0..10 { continue }
  print("\u{1F600} \n\t\"{f(3)}\" \{ {m["a"]} \}")
}
"#,
    "fn main() {\n  let s = \"nested {\"a {\"b {1 + 2}\"}\"} done\"\n  print(s[:2], s[1:], -(-1))\n}\n",
];

/// Rough tokens: runs of word characters, or single other characters.
fn pieces(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    for (n, &(i, c)) in chars.iter().enumerate() {
        let next_word = chars
            .get(n + 1)
            .is_some_and(|&(_, d)| d.is_alphanumeric() || d == '_');
        if !(c.is_alphanumeric() || c == '_') || !next_word {
            out.push(&src[start..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    out
}

fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut toks: Vec<String> = pieces(src).into_iter().map(String::from).collect();
    if toks.is_empty() {
        return src.to_string();
    }
    match rng.below(6) {
        0 => {
            let i = rng.below(toks.len());
            toks.remove(i);
        }
        1 => {
            let i = rng.below(toks.len());
            let t = toks[i].clone();
            toks.insert(i, t);
        }
        2 => {
            let (i, j) = (rng.below(toks.len()), rng.below(toks.len()));
            toks.swap(i, j);
        }
        3 => {
            let mut bytes = src.as_bytes().to_vec();
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        4 => {
            let mut cut = rng.below(src.len());
            while !src.is_char_boundary(cut) {
                cut -= 1;
            }
            return src[..cut].to_string();
        }
        _ => {
            // Insert a token taken from elsewhere in the program.
            let (i, j) = (rng.below(toks.len()), rng.below(toks.len()));
            let t = toks[j].clone();
            toks.insert(i, t);
        }
    }
    toks.concat()
}

#[test]
fn mutated_programs_never_panic() {
    for p in PROGRAMS {
        assert!(
            parse_module(0, p).is_ok(),
            "seed program must parse: {:?}",
            parse_module(0, p).err()
        );
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rejected = 0;
    let total = 3_000;
    for n in 0..total {
        let base = PROGRAMS[n % PROGRAMS.len()];
        // Stack a few mutations so that errors compound.
        let mut src = base.to_string();
        for _ in 0..=rng.below(3) {
            src = mutate(&src, &mut rng);
        }
        if let Err(diags) = parse_module(0, &src) {
            rejected += 1;
            for d in &diags {
                assert!(d.code.starts_with("E01"), "syntax codes only: {d:?}");
                assert!(
                    d.span.end as usize <= src.len() + 1,
                    "span inside the source: {d:?}\n{src}"
                );
            }
            // Rendering is slower; a sample shows that miette accepts every span we make.
            if n % 10 == 0 {
                let mut all = Diagnostics::default();
                all.sources.add("m.ail", src.as_str());
                all.items = diags;
                assert!(render(&all, false).contains("error[E01"));
            }
        }
    }
    // Most mutations break the program; if none did, the mutator is broken.
    assert!(
        rejected > total / 3,
        "only {rejected} of {total} mutants were rejected"
    );
}

#[test]
fn pathological_inputs_do_not_panic() {
    let deep_parens =
        "fn main() { let x = ".to_string() + &"(".repeat(5000) + "1" + &")".repeat(5000) + " }";
    let deep_strings =
        "fn main() { print(".to_string() + &"\"{".repeat(200) + "1" + &"}\"".repeat(200) + ") }";
    let many_negs = "fn main() { let x = ".to_string() + &"-".repeat(3000) + "1 }";
    for src in [
        deep_parens.as_str(),
        deep_strings.as_str(),
        many_negs.as_str(),
        "\"",
        "{",
        "}",
        "\u{0}",
        "///",
        "\"\\u{",
        "\"{\"{\"{",
    ] {
        let _ = parse_module(0, src);
    }
}
