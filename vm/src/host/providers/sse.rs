//! Server-sent events: an incremental decoder for `text/event-stream` bodies, and the loop that
//! reads a streaming HTTP answer through it under a byte cap. Both HTTP providers use it.

use super::{excerpt, Limits};
use crate::host::llm::ProviderError;

/// One dispatched event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Why the bytes are not a usable event stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event is larger than {0} bytes")]
    EventTooLarge(usize),
    #[error("a line is not UTF-8: {0}")]
    NotUtf8(String),
}

/// Decodes an event stream fed in arbitrary pieces (a UTF-8 character or a `\r\n` may be split
/// between two pieces). Lines are split on `\n`, `\r\n` or `\r`; `:` lines are comments; `id:`
/// and `retry:` are ignored (a model answer is never resumed).
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous piece ended in `\r`: a `\n` starting the next piece belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    /// Bytes held for the current event (lines so far plus the unfinished line).
    held: usize,
    max_event_bytes: usize,
}

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: None,
            held: 0,
            max_event_bytes,
        }
    }

    /// Feeds the next piece of the body; returns the events it completed, in order.
    pub fn push(&mut self, piece: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        for &b in piece {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out)?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out)?;
                }
                _ => {
                    self.line.push(b);
                    self.held += 1;
                    if self.held > self.max_event_bytes {
                        return Err(SseError::EventTooLarge(self.max_event_bytes));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The body ended. An event whose closing blank line is missing is still dispatched: some
    /// servers end with `data: [DONE]\n` alone, and whether the stream was complete is decided
    /// by the protocol's final event, not by the framing.
    pub fn finish(mut self) -> Result<Option<SseEvent>, SseError> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out)?;
        }
        self.end_line(&mut out)?;
        Ok(out.pop())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let bytes = std::mem::take(&mut self.line);
        if bytes.is_empty() {
            // A blank line dispatches the event, if it has data.
            self.held = 0;
            let event = self.event.take();
            if let Some(data) = self.data.take() {
                out.push(SseEvent { event, data });
            }
            return Ok(());
        }
        let line = String::from_utf8(bytes)
            .map_err(|e| SseError::NotUtf8(excerpt(&String::from_utf8_lossy(e.as_bytes()))))?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        Ok(())
    }
}

/// What the event handler of [`read_events`] wants next.
pub enum Flow {
    Continue,
    /// The protocol's final event arrived: stop reading.
    Done,
}

/// Reads a streaming answer, handing each event to `on_event` until it says [`Flow::Done`].
/// Returns whether it did: `false` means the body ended first (the caller decides whether the
/// answer is complete). A broken connection mid-stream is a `Protocol` error (the answer began,
/// so it is not retried), more than `limits.max_body_bytes` in all is a `Protocol` error, and
/// the deadline running out is a `Timeout`.
pub async fn read_events(
    provider: &str,
    mut resp: reqwest::Response,
    limits: &Limits,
    mut on_event: impl FnMut(SseEvent) -> Result<Flow, ProviderError>,
) -> Result<bool, ProviderError> {
    let mut decoder = SseDecoder::new(limits.max_event_bytes);
    let mut total = 0usize;
    let bad = |message: String| ProviderError::Protocol {
        provider: provider.to_string(),
        message,
    };
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(super::body_error(provider, limits, e)),
        };
        total += chunk.len();
        if total > limits.max_body_bytes {
            return Err(bad(format!(
                "the stream is larger than {} bytes",
                limits.max_body_bytes
            )));
        }
        let events = decoder
            .push(&chunk)
            .map_err(|e| bad(format!("bad event stream: {e}")))?;
        for ev in events {
            if let Flow::Done = on_event(ev)? {
                return Ok(true);
            }
        }
    }
    if let Some(ev) = decoder
        .finish()
        .map_err(|e| bad(format!("bad event stream: {e}")))?
    {
        if let Flow::Done = on_event(ev)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new(1 << 20);
        let mut out = Vec::new();
        for p in pieces {
            out.extend(d.push(p).unwrap());
        }
        out.extend(d.finish().unwrap());
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn events_split_anywhere_decode_the_same() {
        let body =
            "event: a\ndata: {\"x\":\"é\"}\n\n: comment\ndata:1\ndata: 2\r\n\r\ndata: [DONE]\r\r";
        let whole = all(&[body.as_bytes()]);
        assert_eq!(
            whole,
            vec![
                ev(Some("a"), "{\"x\":\"é\"}"),
                ev(None, "1\n2"),
                ev(None, "[DONE]")
            ]
        );
        let bytes = body.as_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(all(&[&bytes[..cut], &bytes[cut..]]), whole, "cut at {cut}");
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(all(&single), whole);
    }

    #[test]
    fn last_event_without_blank_line_is_dispatched() {
        assert_eq!(all(&[b"data: [DONE]\n"]), vec![ev(None, "[DONE]")]);
        assert_eq!(all(&[b"data: x"]), vec![ev(None, "x")]);
        assert_eq!(all(&[b"event: ping\n\n"]), vec![]);
    }

    #[test]
    fn oversized_event_and_bad_utf8_are_errors() {
        let mut d = SseDecoder::new(8);
        assert_eq!(d.push(b"data: 0123456789"), Err(SseError::EventTooLarge(8)));
        let mut d = SseDecoder::new(64);
        assert!(matches!(
            d.push(b"data: \xff\xfe\n"),
            Err(SseError::NotUtf8(_))
        ));
    }
}
