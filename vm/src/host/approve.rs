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

/// Decides `ask` verdicts.
pub trait Approver {
    fn approve(&mut self, req: &ApprovalRequest) -> Approval;
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
