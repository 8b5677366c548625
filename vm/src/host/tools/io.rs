//! The user's terminal: `io.read_line` and `io.ask`. The host decides whether its input is
//! interactive; these only read a line from the reader they are given, capped.
//!
//! `io.ask(question)` shows the question and returns the answer (the user's words: trusted).
//! The question may carry text a model wrote, so control characters, bidi overrides,
//! zero-width and tag characters are shown escaped (`\u{202e}`): it cannot redraw the
//! terminal or hide words from the person answering. The end of input is an `IoError` (an
//! answer is a string; there was none).

use std::io::{BufRead, Read, Write};

use super::io_error;
use crate::host_value::{HostError, HostValue};

/// `io.read_line()`: the next line without its line ending, null at the end of input, an
/// `IoError` for a line longer than `cap` bytes.
pub fn read_line(input: &mut dyn BufRead, cap: u64) -> Result<HostValue, HostError> {
    Ok(match read_capped_line(input, cap)? {
        Some(line) => HostValue::str(line),
        None => HostValue::null(),
    })
}

/// `io.ask(question)`: writes the question (escaped, no newline added) to `out`, flushes,
/// and reads the answer line from `input`. The outer error is `out` failing (the host's
/// own output went away); the inner one is what the program sees.
pub fn ask(
    out: &mut dyn Write,
    input: &mut dyn BufRead,
    question: &str,
    cap: u64,
) -> std::io::Result<Result<HostValue, HostError>> {
    write!(out, "{}", escape_for_terminal(question))?;
    out.flush()?;
    Ok(match read_capped_line(input, cap) {
        Ok(Some(answer)) => Ok(HostValue::str(answer)),
        Ok(None) => Err(io_error("io.ask", "no answer: the input ended")),
        Err(e) => Err(e),
    })
}

fn read_capped_line(input: &mut dyn BufRead, cap: u64) -> Result<Option<String>, HostError> {
    let mut line = String::new();
    match input.take(cap).read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(n) if n as u64 >= cap && !line.ends_with('\n') => Err(HostError::new(
            "IoError",
            format!("an input line longer than {cap} bytes"),
        )),
        Ok(_) => {
            if line.ends_with('\n') {
                line.pop();
                if line.ends_with('\r') {
                    line.pop();
                }
            }
            Ok(Some(line))
        }
        Err(e) => Err(HostError::new("IoError", format!("reading input: {e}"))),
    }
}

/// `text` with every character that could change what a terminal shows, other than the
/// text itself, written as `\u{...}`: C0 and C1 controls (newline and tab kept), DEL, bidi
/// controls, zero-width characters and Unicode tags. A backslash is kept as it is: the
/// escapes are for the person reading, not a format to parse back.
pub fn escape_for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi marks, embeddings, overrides and isolates (Trojan Source).
        '\u{061c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' => true,
        // Zero-width and invisible formatting characters.
        '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}' => true,
        // Tag characters: invisible text some models read.
        '\u{e0000}'..='\u{e007f}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_redraw_or_hide() {
        assert_eq!(escape_for_terminal("ok?\n"), "ok?\n");
        assert_eq!(escape_for_terminal("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(
            escape_for_terminal("x\u{202e}y\u{200b}z"),
            "x\\u{202e}y\\u{200b}z"
        );
        assert_eq!(escape_for_terminal("\r\u{e0041}"), "\\u{d}\\u{e0041}");
        assert_eq!(escape_for_terminal("grüße"), "grüße");
    }

    #[test]
    fn ask_shows_the_question_and_reads_one_line() {
        let mut out = Vec::new();
        let mut input: &[u8] = b"yes\r\nno\n";
        let got = ask(&mut out, &mut input, "Go?\u{7} ", 100).unwrap();
        assert_eq!(got.unwrap(), HostValue::str("yes"));
        assert_eq!(String::from_utf8(out).unwrap(), "Go?\\u{7} ");
        let mut empty: &[u8] = b"";
        let err = ask(&mut Vec::new(), &mut empty, "?", 100)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind, "IoError");
        let mut long: &[u8] = b"0123456789";
        let err = ask(&mut Vec::new(), &mut long, "?", 4)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind, "IoError");
    }
}
