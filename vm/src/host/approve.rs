//! Approvals: when the policy says `ask`, a person decides. The prompt shows the tool, its
//! canonical arguments, their labels and the rule, with every character that could hide or
//! reorder text (controls, bidi overrides, zero-width and tag characters) escaped and long
//! values visibly truncated. An approval is bound to the exact payload it was shown — the hash
//! of (tool, canonical arguments, labels, rule, run, nonce) — and consumed by the one effect it
//! was given for: a changed argument or another call asks again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};

/// What a person is asked to approve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub tool: String,
    /// The arguments as canonical JSON: the bytes the tool will receive.
    pub args: String,
    /// Each argument's label, as text.
    pub labels: Vec<(String, String)>,
    /// The label of the control flow that led to the call.
    pub control: String,
    /// The rule that asked, and why.
    pub rule: String,
    pub reason: String,
    /// Whether the rule asks because a label condition failed (e.g. untrusted data in an
    /// argument that must be trusted): `--yes` does not cover these unless the rule says so.
    pub label_violation: bool,
    /// Whether `--yes` may approve this request.
    pub auto_approvable: bool,
    /// The hash that binds an approval to this request (`policy::payload_hash`).
    pub hash: String,
}

/// Who approved or refused, as the journal records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// A person at the terminal said yes.
    Person,
    /// `--yes` approved a request its rule lets it approve.
    Auto,
    /// Refused: by the person, or because nobody can be asked.
    Refused(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The person said no (or anything but yes).
    Person,
    /// No terminal to ask on, or `--no-prompt`: non-interactive runs deny.
    NonInteractive,
    /// `--yes` was given but this request is outside what it may approve.
    NotAutoApprovable,
}

impl Approval {
    pub fn approved(self) -> bool {
        matches!(self, Approval::Person | Approval::Auto)
    }

    /// The journal's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Person => "approved",
            Approval::Auto => "auto-approved",
            Approval::Refused(Refusal::Person) => "refused",
            Approval::Refused(Refusal::NonInteractive) => "refused: no one to ask",
            Approval::Refused(Refusal::NotAutoApprovable) => "refused: --yes does not cover it",
        }
    }
}

/// Decides `ask` verdicts, and answers MCP servers' requests for information from a person
/// (elicitation) when there is one to ask.
pub trait Approver {
    fn approve(&mut self, req: &ApprovalRequest) -> Approval;

    /// Whether a person can be asked: only then does the MCP client offer elicitation.
    fn can_ask(&self) -> bool {
        false
    }

    /// Puts a server's form to the person. Nobody to ask: declined.
    fn elicit(&mut self, _req: &Elicitation) -> ElicitAnswer {
        ElicitAnswer::Decline
    }
}

/// An MCP server's request for information from the person (`elicitation/create`, form
/// mode): its message and the fields of its flat schema. All of it is the server's
/// (untrusted) text.
#[derive(Clone, Debug, PartialEq)]
pub struct Elicitation {
    pub server: String,
    pub message: String,
    pub fields: Vec<ElicitField>,
}

/// One field of an elicitation form.
#[derive(Clone, Debug, PartialEq)]
pub struct ElicitField {
    pub name: String,
    /// `string`, `integer`, `number` or `boolean`.
    pub kind: String,
    pub description: String,
    pub required: bool,
    pub default: Option<serde_json::Value>,
    /// The allowed values of an enum field.
    pub options: Vec<String>,
}

impl Elicitation {
    /// The form a server asks for, from its `requestedSchema` (a flat object of primitive
    /// properties); `None` when it is not one.
    pub fn from_schema(server: &str, message: &str, schema: &serde_json::Value) -> Option<Self> {
        let props = schema.get("properties")?.as_object()?;
        let required: Vec<&str> = schema
            .get("required")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let mut fields = Vec::new();
        for (name, p) in props {
            let text = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let options: Vec<String> = p
                .get("enum")
                .and_then(|e| e.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let kind = text("type");
            if !matches!(kind.as_str(), "string" | "integer" | "number" | "boolean") {
                return None;
            }
            fields.push(ElicitField {
                name: name.clone(),
                kind,
                description: text("description"),
                required: required.contains(&name.as_str()),
                default: p.get("default").cloned(),
                options,
            });
        }
        Some(Elicitation {
            server: server.to_string(),
            message: message.to_string(),
            fields,
        })
    }
}

/// How a person answered an elicitation.
#[derive(Clone, Debug, PartialEq)]
pub enum ElicitAnswer {
    /// The values, by field name.
    Accept(serde_json::Map<String, serde_json::Value>),
    Decline,
    Cancel,
}

impl ElicitAnswer {
    /// The MCP action: `accept`, `decline` or `cancel`.
    pub fn action(&self) -> &'static str {
        match self {
            ElicitAnswer::Accept(_) => "accept",
            ElicitAnswer::Decline => "decline",
            ElicitAnswer::Cancel => "cancel",
        }
    }
}

/// Non-interactive: every request is refused.
#[derive(Debug, Default)]
pub struct NoPrompt;

impl Approver for NoPrompt {
    fn approve(&mut self, _req: &ApprovalRequest) -> Approval {
        Approval::Refused(Refusal::NonInteractive)
    }
}

/// `--yes`: approves what its rule lets it approve, refuses the rest (never a label violation
/// unless the rule says so: the policy folds that into `auto_approvable`).
#[derive(Debug, Default)]
pub struct AutoYes;

impl Approver for AutoYes {
    fn approve(&mut self, req: &ApprovalRequest) -> Approval {
        if req.auto_approvable {
            Approval::Auto
        } else {
            Approval::Refused(Refusal::NotAutoApprovable)
        }
    }
}

/// Asks a person: shows the prompt on `out` and reads the answer from `input` (in the CLI,
/// both are the controlling terminal, not the program's standard streams).
pub struct Prompter<R, W> {
    input: R,
    out: W,
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    pub fn new(input: R, out: W) -> Self {
        Prompter { input, out }
    }
}

impl<R: BufRead, W: Write> Approver for Prompter<R, W> {
    fn approve(&mut self, req: &ApprovalRequest) -> Approval {
        let shown = render_prompt(req);
        if self.out.write_all(shown.as_bytes()).is_err() || self.out.flush().is_err() {
            return Approval::Refused(Refusal::NonInteractive);
        }
        let mut answer = String::new();
        // An answer longer than a line of sense is not "yes".
        match std::io::Read::take(&mut self.input, 64).read_line(&mut answer) {
            Ok(n) if n > 0 => {}
            _ => return Approval::Refused(Refusal::NonInteractive),
        }
        match answer.trim() {
            "y" | "yes" | "Y" | "YES" | "Yes" => Approval::Person,
            _ => Approval::Refused(Refusal::Person),
        }
    }

    fn can_ask(&self) -> bool {
        true
    }

    fn elicit(&mut self, req: &Elicitation) -> ElicitAnswer {
        let mut shown = String::new();
        let _ = writeln!(
            shown,
            "aivm: the MCP server {} asks you for information:",
            escape(&req.server, 64)
        );
        let _ = writeln!(shown, "  {}", escape(&req.message, SHOWN_CHARS));
        shown.push_str("Answer it? [y/N] ");
        if self.out.write_all(shown.as_bytes()).is_err() || self.out.flush().is_err() {
            return ElicitAnswer::Decline;
        }
        match self.line().as_deref().map(str::trim) {
            Some("y" | "yes" | "Y" | "YES" | "Yes") => {}
            Some(_) => return ElicitAnswer::Decline,
            None => return ElicitAnswer::Cancel,
        }
        let mut values = serde_json::Map::new();
        for f in &req.fields {
            let mut ask = format!("  {} ({}", escape(&f.name, 64), f.kind);
            if !f.options.is_empty() {
                let opts: Vec<String> = f.options.iter().map(|o| escape(o, 64)).collect();
                let _ = write!(ask, ": one of {}", opts.join(", "));
            }
            if let Some(d) = &f.default {
                let _ = write!(ask, ", Enter for {}", escape(&d.to_string(), 128));
            }
            if f.required {
                ask.push_str(", required");
            }
            ask.push(')');
            if !f.description.is_empty() {
                let _ = write!(ask, " {}", escape(&f.description, 200));
            }
            ask.push_str(": ");
            if self.out.write_all(ask.as_bytes()).is_err() || self.out.flush().is_err() {
                return ElicitAnswer::Cancel;
            }
            let Some(line) = self.line() else {
                return ElicitAnswer::Cancel;
            };
            let text = line.trim_end_matches(['\r', '\n']);
            let value = if text.is_empty() {
                match &f.default {
                    Some(d) => d.clone(),
                    None if f.required => return ElicitAnswer::Decline,
                    None => continue,
                }
            } else {
                match field_value(f, text) {
                    Some(v) => v,
                    // An answer that does not fit the field: nothing is sent.
                    None => return ElicitAnswer::Decline,
                }
            };
            values.insert(f.name.clone(), value);
        }
        ElicitAnswer::Accept(values)
    }
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    /// One line of the person's answer (at most 4 KiB); `None` at the end of input.
    fn line(&mut self) -> Option<String> {
        let mut answer = String::new();
        match std::io::Read::take(&mut self.input, 4096).read_line(&mut answer) {
            Ok(n) if n > 0 => Some(answer),
            _ => None,
        }
    }
}

/// A typed answer to a field, if it fits it.
fn field_value(f: &ElicitField, text: &str) -> Option<serde_json::Value> {
    use serde_json::Value;
    match f.kind.as_str() {
        "integer" => text.trim().parse::<i64>().ok().map(Value::from),
        "number" => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        "boolean" => match text.trim() {
            "y" | "yes" | "true" => Some(Value::Bool(true)),
            "n" | "no" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ if !f.options.is_empty() => f
            .options
            .iter()
            .any(|o| o == text)
            .then(|| Value::String(text.to_string())),
        _ => Some(Value::String(text.to_string())),
    }
}

/// The controlling terminal as a prompter, if the process has one and standard error is a
/// terminal; `None` means non-interactive.
pub fn terminal() -> Option<Prompter<BufReader<std::fs::File>, std::fs::File>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let input = std::fs::File::open("/dev/tty").ok()?;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .ok()?;
    Some(Prompter::new(BufReader::new(input), out))
}

/// The most characters of one value a prompt shows; the rest is cut with a visible mark.
pub const SHOWN_CHARS: usize = 400;

/// The prompt text: every line escaped, values truncated visibly.
pub fn render_prompt(req: &ApprovalRequest) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "aivm: the program asks to call {}",
        escape(&req.tool, 128)
    );
    let _ = writeln!(s, "  arguments: {}", escape(&req.args, SHOWN_CHARS));
    for (name, label) in &req.labels {
        let _ = writeln!(
            s,
            "  label of {}: {}",
            escape(name, 128),
            escape(label, 200)
        );
    }
    let _ = writeln!(s, "  control flow: {}", escape(&req.control, 200));
    let _ = writeln!(
        s,
        "  rule {}: {}",
        escape(&req.rule, 128),
        escape(&req.reason, SHOWN_CHARS)
    );
    if req.label_violation {
        let _ = writeln!(
            s,
            "  WARNING: this call breaks a label condition of the policy"
        );
    }
    let _ = writeln!(s, "  approval {}", &req.hash.get(..16).unwrap_or(&req.hash));
    s.push_str("Allow this one call? [y/N] ");
    s
}

/// `text` with every character that could hide, reorder or fake text on a terminal written
/// as `\u{XXXX}` (backslashes doubled), cut after `max` characters with a mark saying how
/// much was left out.
pub fn escape(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, (i, c)) in text.char_indices().enumerate() {
        if shown == max {
            let _ = write!(out, "…[{} more bytes not shown]", text.len() - i);
            return out;
        }
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_hidden(c) {
            let _ = write!(out, "\\u{{{:04X}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters a prompt never shows as they are: controls (C0, DEL, C1, newlines included),
/// bidirectional formatting, zero-width and invisible characters, Unicode tags, and the
/// private-use and unassigned-looking specials that terminals render unpredictably.
fn is_hidden(c: char) -> bool {
    let u = c as u32;
    c.is_control()
        || matches!(u,
            0x00AD                  // soft hyphen
            | 0x034F                // combining grapheme joiner
            | 0x061C                // Arabic letter mark
            | 0x115F | 0x1160       // Hangul fillers
            | 0x17B4 | 0x17B5
            | 0x180B..=0x180F       // Mongolian selectors
            | 0x200B..=0x200F       // zero-width, LRM, RLM
            | 0x2028..=0x202E       // separators, bidi embeddings and overrides
            | 0x2060..=0x206F       // word joiner, invisible operators, bidi isolates
            | 0x3164                // Hangul filler
            | 0xFE00..=0xFE0F       // variation selectors
            | 0xFEFF                // BOM / zero-width no-break space
            | 0xFFA0
            | 0xFFF0..=0xFFFB       // specials, interlinear annotations
            | 0xE0000..=0xE0FFF     // tags and variation selectors supplement
            | 0xE000..=0xF8FF       // private use
            | 0xF0000..=0x10FFFF)
}

/// Approvals given and not yet used, by the nonce of the request they answer. The host
/// approves a request, then performs the effect only if the approval for that nonce is still
/// there and binds the same payload hash; using it removes it.
#[derive(Debug, Default)]
pub struct Approvals {
    given: HashMap<u64, String>,
    next_nonce: u64,
}

impl Approvals {
    /// A fresh nonce for the next request.
    pub fn nonce(&mut self) -> u64 {
        self.next_nonce += 1;
        self.next_nonce
    }

    /// Records that the request with `nonce` and payload `hash` was approved.
    pub fn grant(&mut self, nonce: u64, hash: &str) {
        self.given.insert(nonce, hash.to_string());
    }

    /// Uses the approval for `nonce` if it binds `hash`; an approval is used at most once, and
    /// one given for another payload is worthless.
    pub fn consume(&mut self, nonce: u64, hash: &str) -> bool {
        match self.given.remove(&nonce) {
            Some(h) => h == hash,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Elicitation {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "Your\u{202E} name", "default": "Jo"},
                "age": {"type": "integer"},
                "ok": {"type": "boolean", "default": true},
                "color": {"type": "string", "enum": ["red", "blue"]}
            },
            "required": ["age"]
        });
        Elicitation::from_schema("srv", "Tell me\u{1b}[2J", &schema).unwrap()
    }

    #[test]
    fn an_elicitation_reads_one_answer_per_field_with_defaults_and_escapes_the_server_text() {
        let mut out = Vec::new();
        let mut p = Prompter::new(&b"y\n\n42\n\nblue\n"[..], &mut out);
        let ElicitAnswer::Accept(v) = p.elicit(&form()) else {
            panic!("accepted")
        };
        assert_eq!(v["name"], "Jo");
        assert_eq!(v["age"], 42);
        assert_eq!(v["ok"], true);
        assert_eq!(v["color"], "blue");
        let shown = String::from_utf8(out).unwrap();
        assert!(shown.contains("Tell me\\u{001B}[2J"), "{shown}");
        assert!(shown.contains("Your\\u{202E} name"), "{shown}");
        assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202E}'));
    }

    #[test]
    fn an_elicitation_is_declined_by_no_a_bad_value_a_missing_required_one_or_nobody() {
        for input in [&b"n\n"[..], b"y\n\nold\n", b"y\n\n\n", b"y\n\n1\n\ngreen\n"] {
            let mut p = Prompter::new(input, Vec::new());
            assert_eq!(p.elicit(&form()), ElicitAnswer::Decline, "{input:?}");
        }
        assert_eq!(NoPrompt.elicit(&form()), ElicitAnswer::Decline);
        assert!(!NoPrompt.can_ask() && !AutoYes.can_ask());
        assert_eq!(AutoYes.elicit(&form()), ElicitAnswer::Decline);
    }

    fn request(args: &str) -> ApprovalRequest {
        ApprovalRequest {
            tool: "send_email".into(),
            args: args.into(),
            labels: vec![("body".into(), "untrusted".into())],
            control: "trusted".into(),
            rule: "mail-asks".into(),
            reason: "sending mail asks first".into(),
            label_violation: false,
            auto_approvable: true,
            hash: "0123456789abcdef0123".into(),
        }
    }

    #[test]
    fn hidden_characters_are_escaped_and_long_values_cut_visibly() {
        let evil = "ok\u{202E}gnp.exe\u{200B}\x1b[2J\n\u{E0041}done\\";
        let shown = escape(evil, 100);
        assert_eq!(
            shown,
            "ok\\u{202E}gnp.exe\\u{200B}\\u{001B}[2J\\u{000A}\\u{E0041}done\\\\"
        );
        let long = "a".repeat(10_000);
        let cut = escape(&long, 10);
        assert_eq!(
            cut,
            format!("{}…[9990 more bytes not shown]", "a".repeat(10))
        );
        let p = render_prompt(&request(&format!("{{\"to\":\"{}\"}}", "x".repeat(5000))));
        assert!(p.contains("more bytes not shown"), "{p}");
        assert!(!p.contains(&"x".repeat(SHOWN_CHARS + 1)));
    }

    #[test]
    fn the_prompt_has_no_raw_control_characters_whatever_the_arguments() {
        let args = "{\"a\":\"\r\u{1b}]0;title\u{7}\u{2066}x\u{2069}\u{feff}\"}";
        let p = render_prompt(&request(args));
        let body = p.trim_end_matches("Allow this one call? [y/N] ");
        assert!(body.chars().all(|c| c == '\n' || !is_hidden(c)), "{p:?}");
    }

    #[test]
    fn only_yes_approves_and_end_of_input_refuses() {
        let mut out = Vec::new();
        let mut p = Prompter::new("y\n".as_bytes(), &mut out);
        assert_eq!(p.approve(&request("{}")), Approval::Person);
        let mut p = Prompter::new("yes please\n".as_bytes(), Vec::new());
        assert_eq!(
            p.approve(&request("{}")),
            Approval::Refused(Refusal::Person)
        );
        let mut p = Prompter::new("".as_bytes(), Vec::new());
        assert_eq!(
            p.approve(&request("{}")),
            Approval::Refused(Refusal::NonInteractive)
        );
        assert!(String::from_utf8(out).unwrap().contains("send_email"));
    }

    #[test]
    fn yes_never_covers_what_the_rule_does_not_let_it() {
        let mut r = request("{}");
        assert_eq!(AutoYes.approve(&r), Approval::Auto);
        r.auto_approvable = false;
        r.label_violation = true;
        assert_eq!(
            AutoYes.approve(&r),
            Approval::Refused(Refusal::NotAutoApprovable)
        );
        assert_eq!(
            NoPrompt.approve(&r),
            Approval::Refused(Refusal::NonInteractive)
        );
    }

    #[test]
    fn an_approval_is_used_once_and_only_for_its_payload() {
        let mut a = Approvals::default();
        let n1 = a.nonce();
        let n2 = a.nonce();
        assert_ne!(n1, n2);
        a.grant(n1, "h1");
        assert!(!a.consume(n1, "h2"), "another payload");
        a.grant(n1, "h1");
        assert!(a.consume(n1, "h1"));
        assert!(!a.consume(n1, "h1"), "used twice");
        assert!(!a.consume(n2, "h1"), "never given");
    }
}
