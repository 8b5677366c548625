//! One model turn as the host and its providers see it: the request `CALL_LLM` yields, the
//! assistant message a provider answers with, and the typed errors a provider can fail with
//! (spec/llm.md). Providers translate these to and from their wire formats; nothing here
//! knows about HTTP.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// Who wrote a message of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, answering the assistant's call `tool_call_id`.
    Tool,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// The text; empty for an assistant message that only calls tools.
    #[serde(default)]
    pub content: String,
    /// The tools an assistant message calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a `tool` message: the tool's name (Anthropic does not need it; some servers do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A plain text message: no tool calls, not the result of one.
    pub fn text(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
}

/// A tool call an assistant message asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call (any string; some servers omit the `call_` prefix).
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: JSON text, not yet parsed or validated (the
    /// agent loop does that, and feeds errors back to the model).
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
    /// The MCP tool (`SERVER.TOOL`) this one calls, if any: the host sends the server's
    /// input schema, and its description when the program gives none (spec/mcp.md §Language).
    /// Not part of the provider contract.
    #[serde(skip)]
    pub mcp: Option<String>,
}

/// The structured output asked for: the answer's content must be JSON valid against `schema`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// A name for the schema (`[A-Za-z0-9_-]`, as OpenAI requires), e.g. the type's name.
    pub name: String,
    pub schema: serde_json::Value,
}

/// One model turn, as the host hands it to a provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The provider's model id (`gpt-4o-mini`), after configuration mapped the logical name.
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSchema>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

impl ModelRequest {
    /// A request to `model` with these messages and nothing else: no tools, no output
    /// schema, and the provider's defaults for temperature, token limit and stop sequences.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> ModelRequest {
        ModelRequest {
            model: model.into(),
            messages,
            tools: Vec::new(),
            output: None,
            temperature: None,
            max_tokens: None,
            stop: Vec::new(),
        }
    }
}

/// Why the model stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// A final answer.
    Stop,
    /// The token limit cut the answer short (its JSON may be truncated).
    Length,
    /// The answer calls tools.
    ToolCalls,
}

/// Tokens a turn consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The assistant message a provider answered with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The text (empty, never absent, when the model only calls tools: providers normalise
    /// `null` and a missing field to "").
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    pub finish: Finish,
    pub usage: Usage,
    /// The model that answered, as the provider reports it.
    pub model: String,
}

/// Why a provider could not produce a [`ModelResponse`]. Every variant says which provider
/// failed; the host turns them into catchable program errors (`ModelError`) after retries.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The endpoint answered with an HTTP error status. `retry_after` is the server's
    /// `Retry-After`, when it sent one.
    #[error("{provider} answered HTTP {status}: {message}")]
    Http {
        provider: String,
        status: u16,
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    /// No connection could be made, or it broke before an answer began.
    #[error("cannot reach {provider}: {message}")]
    Connect { provider: String, message: String },
    /// No complete answer within the deadline.
    #[error("{provider} did not answer within {secs} s")]
    Timeout { provider: String, secs: u64 },
    /// The answer is not what the protocol says: invalid JSON, a missing field, an `error`
    /// event inside a stream, a stream that ends without its final event.
    #[error("{provider} sent an invalid answer: {message}")]
    Protocol { provider: String, message: String },
    /// The configuration cannot work (no key, unknown provider kind); found before any call.
    #[error("{0}")]
    Config(String),
    /// A scripted or replayed transcript has no answer for this request.
    #[error("{0}")]
    Exhausted(String),
}

impl ProviderError {
    /// Whether trying again may succeed: 408, 409, 429 and 5xx, broken connections and
    /// timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Http { status, .. } => {
                matches!(status, 408 | 409 | 429) || (500..=599).contains(status)
            }
            ProviderError::Connect { .. } | ProviderError::Timeout { .. } => true,
            ProviderError::Protocol { .. }
            | ProviderError::Config(_)
            | ProviderError::Exhausted(_) => false,
        }
    }
}

/// A boxed future, so that providers can live behind `dyn Provider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A model provider: performs one turn. Implementations are cheap to share (`Arc`) and safe to
/// call concurrently; retries are the caller's business (see `providers::retry`).
pub trait Provider: Send + Sync {
    /// A short name for messages and the journal, e.g. `openai:gpt-4o-mini`.
    fn name(&self) -> &str;
    /// Whether calling it needs a model grant (`--allow-model`): true for anything that
    /// sends a request out of the process; a scripted transcript reaches nobody.
    fn needs_grant(&self) -> bool {
        true
    }
    fn call<'a>(
        &'a self,
        req: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ProviderError>>;
}
