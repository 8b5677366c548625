//! What a served call asks of the MCP client that made it: its model (`sampling/createMessage`
//! for a model bound to `mcp-client:`) and its user (`elicitation/create` for `io.ask`). The
//! requests are built and read as JSON (the wire format is the contract, spec/mcp.md).

use aivm_vm::host::llm::{
    BoxFuture, Finish, ModelRequest, ModelResponse, Provider, ProviderError, Role, Usage,
};
use aivm_vm::host::providers::client::PREFIX;
use aivm_vm::{HostError, HostValue, LabelInfo};
use rmcp::model::{ClientResult, ServerRequest};
use rmcp::service::{Peer, ServiceError};
use rmcp::RoleServer;
use serde_json::{json, Value as Json};

/// The `max_tokens` of a sampling request whose model call sets none (MCP requires one).
const DEFAULT_MAX_TOKENS: u64 = 1024;

/// Whether the client said it can answer `sampling/createMessage`.
pub fn can_sample(peer: &Peer<RoleServer>) -> bool {
    peer.peer_info()
        .is_some_and(|i| i.capabilities.sampling.is_some())
}

/// Whether the client said it can answer `elicitation/create`.
pub fn can_elicit(peer: &Peer<RoleServer>) -> bool {
    peer.peer_info()
        .is_some_and(|i| i.capabilities.elicitation.is_some())
}

/// Sends `method` with `params` to the client and returns its result as JSON.
async fn request(peer: &Peer<RoleServer>, method: &str, params: Json) -> Result<Json, String> {
    let req: ServerRequest = serde_json::from_value(json!({"method": method, "params": params}))
        .map_err(|e| format!("cannot build {method}: {e}"))?;
    match peer.send_request(req).await {
        Ok(ClientResult::EmptyResult(_)) => Err(format!("{method}: an empty result")),
        Ok(r) => serde_json::to_value(r).map_err(|e| e.to_string()),
        Err(ServiceError::McpError(e)) => Err(format!("the client refused: {}", e.message)),
        Err(e) => Err(e.to_string()),
    }
}

/// The model of the client of one call: a model bound to `mcp-client:HINT`.
pub struct ClientModel {
    name: String,
    /// The model the server would like, as a hint to the client (may be empty).
    hint: String,
    peer: Peer<RoleServer>,
}

impl ClientModel {
    /// The client model for the provider named `name` (`mcp-client:HINT`), through `peer`.
    pub fn new(name: &str, peer: Peer<RoleServer>) -> ClientModel {
        ClientModel {
            name: name.to_string(),
            hint: name.strip_prefix(PREFIX).unwrap_or("").to_string(),
            peer,
        }
    }

    fn protocol(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Protocol {
            provider: self.name.clone(),
            message: message.into(),
        }
    }

    /// The `sampling/createMessage` params of a model request.
    fn params(&self, req: &ModelRequest) -> Result<Json, ProviderError> {
        if !req.tools.is_empty() {
            return Err(ProviderError::Config(
                "the client's model cannot be offered tools".into(),
            ));
        }
        let mut system: Vec<&str> = Vec::new();
        let mut messages = Vec::new();
        for m in &req.messages {
            let role = match m.role {
                Role::System => {
                    system.push(&m.content);
                    continue;
                }
                Role::User => "user",
                Role::Assistant if m.tool_calls.is_empty() => "assistant",
                Role::Assistant | Role::Tool => {
                    return Err(ProviderError::Config(
                        "the client's model cannot take tool calls or results".into(),
                    ))
                }
            };
            messages.push(json!({"role": role, "content": {"type": "text", "text": m.content}}));
        }
        let mut system = system.join("\n\n");
        if let Some(out) = &req.output {
            // Sampling has no structured output: the schema is asked for in words, and the
            // host checks the answer against it as for any model.
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str(&format!(
                "Answer with only a JSON value valid against this JSON Schema:\n{}",
                out.schema
            ));
        }
        let mut p = json!({
            "messages": messages,
            "maxTokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        });
        if let Json::Object(o) = &mut p {
            if !system.is_empty() {
                o.insert("systemPrompt".into(), json!(system));
            }
            if let Some(t) = req.temperature {
                o.insert("temperature".into(), json!(t));
            }
            if !req.stop.is_empty() {
                o.insert("stopSequences".into(), json!(req.stop));
            }
            if !self.hint.is_empty() {
                o.insert(
                    "modelPreferences".into(),
                    json!({"hints": [{"name": self.hint}]}),
                );
            }
        }
        Ok(p)
    }

    /// The client's `CreateMessageResult` as a model response.
    fn response(&self, r: &Json) -> Result<ModelResponse, ProviderError> {
        if r["role"] != "assistant" {
            return Err(self.protocol("the answer's role is not `assistant`"));
        }
        // One content block, or (newer clients) a list of them: the text blocks are the answer.
        let blocks = match &r["content"] {
            Json::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        let texts: Vec<&str> = blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect();
        if texts.is_empty() {
            return Err(self.protocol("the answer has no text"));
        }
        Ok(ModelResponse {
            content: texts.join(""),
            tool_calls: Vec::new(),
            finish: if r["stopReason"] == "maxTokens" {
                Finish::Length
            } else {
                Finish::Stop
            },
            // Sampling reports no token counts: the call counts, its tokens do not.
            usage: Usage::default(),
            model: r["model"].as_str().unwrap_or_default().to_string(),
        })
    }
}

impl Provider for ClientModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a>(
        &'a self,
        req: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ProviderError>> {
        Box::pin(async move {
            if !can_sample(&self.peer) {
                return Err(ProviderError::Config(
                    "the MCP client did not declare the sampling capability".into(),
                ));
            }
            let params = self.params(req)?;
            let r = request(&self.peer, "sampling/createMessage", params)
                .await
                .map_err(|m| self.protocol(m))?;
            self.response(&r)
        })
    }
}

/// Puts `question` to the client's user with `elicitation/create`: one string field
/// `answer`. Accepted, the answer (labelled untrusted: the client is not the server's
/// word); declined, dismissed or refused, an `IoError` saying so.
pub async fn elicit(peer: &Peer<RoleServer>, question: &str) -> Result<HostValue, HostError> {
    let params = json!({
        "message": question,
        "requestedSchema": {
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "Your answer"}},
            "required": ["answer"],
        },
    });
    let r = request(peer, "elicitation/create", params)
        .await
        .map_err(|m| io_error(format!("no answer: {m}")))?;
    match r["action"].as_str() {
        Some("accept") => match r["content"]["answer"].as_str() {
            Some(a) => Ok(HostValue::str(a).labelled_deep(&LabelInfo::untrusted())),
            None => Err(io_error(
                "no answer: the client accepted without an `answer` text".into(),
            )),
        },
        Some("decline") => Err(io_error("no answer: the user declined".into())),
        Some("cancel") => Err(io_error(
            "no answer: the user dismissed the question".into(),
        )),
        _ => Err(io_error(
            "no answer: the client's reply has no valid action".into(),
        )),
    }
}

fn io_error(message: String) -> HostError {
    HostError::new("IoError", format!("io.ask: {message}"))
}
