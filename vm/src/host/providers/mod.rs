//! Model providers: the OpenAI-compatible and Anthropic HTTP clients, the scripted provider,
//! and what they share — byte caps and deadlines ([`Limits`]), API keys that never print
//! ([`ApiKey`]), HTTP error mapping, `Retry-After` parsing and token estimates. Retries are in
//! [`retry`]; building a provider from configuration is `host::config::build_provider`.

pub mod anthropic;
pub mod client;
pub mod openai;
pub mod retry;
pub mod scripted;
pub mod sse;

use std::time::{Duration, SystemTime};

use crate::host::llm::{Message, ModelRequest, ModelResponse, ProviderError, ToolCall, Usage};

/// How much a provider reads and how long it waits: every answer is bounded, so a server that
/// streams forever or sends a huge body ends in a typed error, never in a hang or an OOM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of one answer body (a whole stream included).
    pub max_body_bytes: usize,
    /// The most bytes of one server-sent event.
    pub max_event_bytes: usize,
    /// The deadline of one request, from sending it to the end of the answer.
    pub timeout: Duration,
    /// The deadline for making the connection.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    /// 16 MiB answers, 4 MiB events, 300 s per request (long generations stream for minutes),
    /// 10 s to connect.
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_event_bytes: 4 << 20,
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// How to reach an HTTP model endpoint (OpenAI-compatible or Anthropic).
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// The provider's name in messages, e.g. `openai:gpt-4o-mini`.
    pub name: String,
    /// The API root. OpenAI-compatible: with its `/v1` (requests go to
    /// `{base_url}/chat/completions`); Anthropic: without it (`{base_url}/v1/messages`).
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` (OpenAI) or `x-api-key` (Anthropic) when present;
    /// local servers need none.
    pub api_key: Option<ApiKey>,
    /// Ask for a streamed answer (SSE) rather than one JSON body.
    pub stream: bool,
    pub limits: Limits,
}

/// An API key. It is never printed: `Debug` shows `ApiKey(***)`, and there is no `Display`
/// or `Serialize`, so a key cannot reach a message, a trace or the journal by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the one header that carries it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// The first 200 characters of `text`, on one line, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    format!("{:?}", out.trim())
}

/// A reqwest error with its causes, which hold the useful part ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn timeout_error(provider: &str, limits: &Limits) -> ProviderError {
    ProviderError::Timeout {
        provider: provider.to_string(),
        secs: limits.timeout.as_secs(),
    }
}

/// The URL of `path` under `base_url`, parsed once when the provider is built (so that a bad
/// base URL is a configuration error before any call, and no request parses it again).
pub(crate) fn endpoint(
    name: &str,
    base_url: &str,
    path: &str,
) -> Result<reqwest::Url, ProviderError> {
    let text = format!("{}{path}", base_url.trim_end_matches('/'));
    reqwest::Url::parse(&text).map_err(|e| {
        ProviderError::Config(format!(
            "{name}: the base URL {base_url:?} is not a URL: {e}"
        ))
    })
}

/// A reqwest client bounded by `limits`.
pub(crate) fn http_client(
    provider: &str,
    limits: &Limits,
) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .timeout(limits.timeout)
        .connect_timeout(limits.connect_timeout)
        .build()
        .map_err(|e| {
            ProviderError::Config(format!(
                "{provider}: cannot build an HTTP client: {}",
                describe(&e)
            ))
        })
}

/// Sends a request; a failure before any answer is `Connect` (or `Timeout`).
pub(crate) async fn send(
    provider: &str,
    limits: &Limits,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    req.send().await.map_err(|e| {
        if e.is_timeout() {
            timeout_error(provider, limits)
        } else {
            ProviderError::Connect {
                provider: provider.to_string(),
                message: describe(&e),
            }
        }
    })
}

/// A failure while reading an answer that had begun: `Timeout` when the deadline ran out,
/// else `Protocol` (the connection broke mid-answer).
pub(crate) fn body_error(provider: &str, limits: &Limits, e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        timeout_error(provider, limits)
    } else {
        ProviderError::Protocol {
            provider: provider.to_string(),
            message: format!("the connection broke mid-answer: {}", describe(&e)),
        }
    }
}

/// Reads a whole body, at most `max` bytes (more is a `Protocol` error).
pub(crate) async fn read_body(
    provider: &str,
    limits: &Limits,
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| body_error(provider, limits, e))?
    {
        if body.len() + chunk.len() > max {
            return Err(ProviderError::Protocol {
                provider: provider.to_string(),
                message: format!("the answer is larger than {max} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Passes a successful response through; turns an HTTP error status into
/// `ProviderError::Http` with the server's message and `Retry-After`.
pub(crate) async fn check_status(
    provider: &str,
    limits: &Limits,
    resp: reqwest::Response,
) -> Result<reqwest::Response, ProviderError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = retry_after(resp.headers(), SystemTime::now());
    // An error body is read only so far: its message is all we want.
    let message = match read_body(provider, limits, resp, 64 << 10).await {
        Ok(body) => error_message(&body),
        Err(_) => "(the error body could not be read)".to_string(),
    };
    Err(ProviderError::Http {
        provider: provider.to_string(),
        status: status.as_u16(),
        message,
        retry_after,
    })
}

/// The message of an error body: `{"error": {"message", "type"}}` (OpenAI, Anthropic,
/// llama.cpp), `{"error": "text"}`, `{"message": …}`, or an excerpt of whatever else it is.
pub(crate) fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(m) = json_error_message(&v) {
            return m;
        }
    }
    if text.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        excerpt(&text)
    }
}

/// The message of a JSON error object, if `v` looks like one.
pub(crate) fn json_error_message(v: &serde_json::Value) -> Option<String> {
    let err = v.get("error").unwrap_or(v);
    if let Some(s) = err.as_str() {
        return Some(s.to_string());
    }
    let message = err.get("message").and_then(|m| m.as_str())?;
    match err.get("type").and_then(|t| t.as_str()) {
        Some(t) => Some(format!("{message} ({t})")),
        None => Some(message.to_string()),
    }
}

/// How long the server asks us to wait: `retry-after-ms` (OpenAI), else `Retry-After` in
/// seconds or as an HTTP date (RFC 9110 §10.2.3), relative to `now`.
pub(crate) fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = get("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT` (the form servers send).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = u64::try_from(days).ok()? * 86400 + h * 3600 + m * 60 + sec;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// A rough token count (a quarter of the characters, rounded up), for providers that report
/// no usage: budgets must count something rather than nothing.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Estimated usage of a turn: the request's messages and tools in, the answer out.
pub fn estimate_usage(req: &ModelRequest, content: &str, tool_calls: &[ToolCall]) -> Usage {
    let msg = |m: &Message| {
        4 + estimate_tokens(&m.content)
            + m.tool_calls
                .iter()
                .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments))
                .sum::<u64>()
    };
    let tools: u64 = req
        .tools
        .iter()
        .map(|t| {
            estimate_tokens(&t.name)
                + estimate_tokens(&t.description)
                + estimate_tokens(&t.parameters.to_string())
        })
        .sum();
    let schema = req
        .output
        .as_ref()
        .map_or(0, |o| estimate_tokens(&o.schema.to_string()));
    let output = estimate_tokens(content)
        + tool_calls
            .iter()
            .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments))
            .sum::<u64>();
    Usage {
        input_tokens: req.messages.iter().map(msg).sum::<u64>() + tools + schema,
        output_tokens: output.max(1),
    }
}

/// The text of a JSON body that failed to parse, for the error message.
pub(crate) fn invalid_json(
    provider: &str,
    what: &str,
    err: &serde_json::Error,
    body: &[u8],
) -> ProviderError {
    ProviderError::Protocol {
        provider: provider.to_string(),
        message: format!(
            "{what} is not valid: {err}; the body starts {}",
            excerpt(&String::from_utf8_lossy(body))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:47 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn error_messages_from_bodies() {
        assert_eq!(
            error_message(br#"{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}"#),
            "Invalid API Key (authentication_error)"
        );
        assert_eq!(
            error_message(br#"{"message":"Invalid grammar"}"#),
            "Invalid grammar"
        );
        assert_eq!(error_message(b"Bad Gateway\n"), "\"Bad Gateway\"");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[test]
    fn api_key_debug_hides_the_key() {
        let k = ApiKey::new("sk-secret-123");
        assert_eq!(format!("{k:?}"), "ApiKey(***)");
        assert!(!format!("{:?}", Some(k)).contains("secret"));
    }

    #[test]
    fn excerpt_is_short_and_one_line() {
        let long = "x\n".repeat(500);
        let e = excerpt(&long);
        assert!(e.chars().count() < 210, "{e}");
        assert!(!e.contains('\n'));
    }
}

/// An output schema as the wire protocols take it. Both OpenAI's `response_format` and an
/// Anthropic tool's `input_schema` must be an object at the top, so any other type (a list, a
/// string enum, an int) is wrapped as `{"answer": T}` and the answer unwrapped again by
/// [`unwrap_answer`]; and OpenAI's strict mode accepts only closed objects whose every property
/// is required, so `strict` is set only for schemas that are (an open map or an `any` would
/// make the server reject the request).
pub(crate) struct WireOutput {
    pub schema: serde_json::Value,
    pub strict: bool,
    pub wrapped: bool,
}

/// The name of the property a non-object answer is wrapped in.
const ANSWER: &str = "answer";

pub(crate) fn wire_output(out: &crate::host::llm::OutputSchema) -> WireOutput {
    let is_object = out.schema.get("type").and_then(serde_json::Value::as_str) == Some("object");
    let schema = if is_object {
        out.schema.clone()
    } else {
        serde_json::json!({
            "type": "object",
            "properties": {ANSWER: out.schema},
            "required": [ANSWER],
            "additionalProperties": false,
        })
    };
    let strict = strict_compatible(&schema, 0);
    WireOutput {
        schema,
        strict,
        wrapped: !is_object,
    }
}

/// `resp` with its content unwrapped when `req`'s output schema was sent wrapped.
pub(crate) fn unwrap_output(req: &ModelRequest, mut resp: ModelResponse) -> ModelResponse {
    if req.output.as_ref().is_some_and(|o| wire_output(o).wrapped) {
        resp.content = unwrap_answer(resp.content, true);
    }
    resp
}

/// The program's answer from a wrapped one: the JSON text of its `answer` property. An answer
/// that is not such an object is passed on as it is, for the agent loop's validation to report
/// (and feed back to the model).
pub(crate) fn unwrap_answer(content: String, wrapped: bool) -> String {
    if !wrapped {
        return content;
    }
    match serde_json::from_str::<serde_json::Value>(&content) {
        Ok(serde_json::Value::Object(mut o)) if o.len() == 1 => match o.remove(ANSWER) {
            Some(v) => v.to_string(),
            None => content,
        },
        _ => content,
    }
}

/// Whether OpenAI's strict structured-output mode accepts `schema`: every object closed, with
/// every property required, and no schema left open (`{}`). Depth-bounded, as schemas come
/// from programs.
fn strict_compatible(schema: &serde_json::Value, depth: usize) -> bool {
    use serde_json::Value;
    let Value::Object(o) = schema else {
        return false;
    };
    if depth > 64 || o.is_empty() {
        return false;
    }
    if let Some(Value::Array(branches)) = o.get("anyOf") {
        return branches.iter().all(|b| strict_compatible(b, depth + 1));
    }
    match o.get("type").and_then(Value::as_str) {
        Some("object") => {
            let props = match o.get("properties") {
                Some(Value::Object(p)) => p,
                _ => return false,
            };
            let required: Vec<&str> = match o.get("required") {
                Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            o.get("additionalProperties") == Some(&Value::Bool(false))
                && props.keys().all(|k| required.contains(&k.as_str()))
                && props.values().all(|p| strict_compatible(p, depth + 1))
        }
        Some("array") => o
            .get("items")
            .is_some_and(|i| strict_compatible(i, depth + 1)),
        Some(_) => true,
        None => o.contains_key("enum") || o.contains_key("const"),
    }
}

#[cfg(test)]
mod wire_output_tests {
    use super::*;
    use crate::host::llm::OutputSchema;
    use serde_json::json;

    fn out(schema: serde_json::Value) -> OutputSchema {
        OutputSchema {
            name: "T".into(),
            schema,
        }
    }

    #[test]
    fn closed_records_stay_as_they_are_and_are_strict() {
        let s = json!({"type": "object", "properties": {"n": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["n", "tags"], "additionalProperties": false});
        let w = wire_output(&out(s.clone()));
        assert_eq!((w.schema, w.strict, w.wrapped), (s, true, false));
    }

    #[test]
    fn other_types_are_wrapped_and_unwrapped() {
        let w = wire_output(&out(json!({"type": "string", "enum": ["low", "high"]})));
        assert!(w.wrapped && w.strict);
        assert_eq!(w.schema["required"], json!(["answer"]));
        assert_eq!(
            unwrap_answer(r#"{"answer":"low"}"#.into(), true),
            r#""low""#
        );
        // Not the wrapped shape: passed on for the agent loop to report.
        assert_eq!(unwrap_answer("low".into(), true), "low");
        assert_eq!(unwrap_answer(r#"{"x":1}"#.into(), true), r#"{"x":1}"#);
        assert_eq!(
            unwrap_answer(r#"{"answer":1}"#.into(), false),
            r#"{"answer":1}"#
        );
    }

    #[test]
    fn open_schemas_are_not_strict() {
        let map = json!({"type": "object", "additionalProperties": {"type": "integer"}});
        assert!(!wire_output(&out(map)).strict);
        let any_field = json!({"type": "object", "properties": {"x": {}},
            "required": ["x"], "additionalProperties": false});
        assert!(!wire_output(&out(any_field)).strict);
        let optional_missing = json!({"type": "object", "properties": {"x": {"type": "string"}},
            "required": [], "additionalProperties": false});
        assert!(!wire_output(&out(optional_missing)).strict);
    }
}

/// Answers a server might send, built from the words both wire protocols use, for the
/// property tests that feed them to the parsers (which must answer or fail typed, never
/// panic).
#[cfg(test)]
pub(crate) mod hostile {
    use proptest::prelude::*;
    use serde_json::Value;

    const WORDS: &[&str] = &[
        "choices",
        "message",
        "delta",
        "content",
        "role",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "id",
        "index",
        "finish_reason",
        "usage",
        "prompt_tokens",
        "completion_tokens",
        "error",
        "type",
        "text",
        "tool_use",
        "input",
        "stop_reason",
        "input_tokens",
        "output_tokens",
        "model",
        "refusal",
        "message_start",
        "content_block",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            proptest::sample::select(WORDS).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ]
    }

    fn tree() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                object(inner),
            ]
        })
    }

    fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        proptest::collection::vec((proptest::sample::select(WORDS), inner), 0..6)
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    /// A JSON answer: an object keyed by the protocols' own words, nested a few levels.
    pub(crate) fn answer() -> impl Strategy<Value = Vec<u8>> {
        object(tree()).prop_map(|v| v.to_string().into_bytes())
    }
}
