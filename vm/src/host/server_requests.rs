//! What MCP servers ask of the run (spec/mcp.md §Client): `sampling/createMessage` is served
//! by a model of the run, judged by the policy as `llm.call` with audience `model:MODEL` and
//! charged to the budget; `elicitation/create` goes to the person at the terminal, if there
//! is one. The hub forwards the requests here so that the policy, the budget, the journal and
//! the approver keep their one owner, the driver.

use std::time::{Duration, Instant};

use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::approve::{ElicitAnswer, Elicitation};
use super::config::Price;
use super::journal::{Event, LlmRecord, McpElicitation, McpSampling};
use super::llm::{Finish, ModelResponse, ProviderError};
use super::mcp::ServerRequest;
use super::{llm_value, providers, Host, RunError};
use crate::host_value::HostValue;
use crate::interp::{EffectRequest, TaskId};
use crate::label::LabelInfo;

/// A sampling request's model call in flight.
pub(super) type Sampling = LocalBoxFuture<'static, Sampled>;

/// A finished sampling model call, to be charged, journalled and answered.
pub(super) struct Sampled {
    event: McpSampling,
    provider: String,
    price: Option<Price>,
    result: Result<ModelResponse, ProviderError>,
    attempts: u32,
    latency: Duration,
    reply: oneshot::Sender<Result<Value, String>>,
}

/// The task number decisions about server requests carry: no task of the program asked.
const NO_TASK: u32 = u32::MAX;

impl Host {
    /// Serves one server request: an elicitation at once, a sampling request up to its model
    /// call (returned, to run beside the program's effects).
    pub(super) fn serve_request(&mut self, r: ServerRequest) -> Result<Option<Sampling>, RunError> {
        match r {
            ServerRequest::Elicitation {
                server,
                params,
                reply,
            } => {
                let answer = self.elicit(&server, &params)?;
                let _ = reply.send(answer);
                Ok(None)
            }
            ServerRequest::Sampling {
                server,
                model,
                params,
                reply,
            } => self.start_sampling(server, model, params, reply),
        }
    }

    fn elicit(&mut self, server: &str, params: &Value) -> Result<Value, RunError> {
        let message = params.get("message").and_then(Value::as_str).unwrap_or("");
        let form = params
            .get("requestedSchema")
            .and_then(|s| Elicitation::from_schema(server, message, s));
        // URL mode and forms that are not flat objects of primitives: declined.
        let answer = match &form {
            Some(f) if self.gate.can_ask() => self.gate.elicit(f),
            _ => ElicitAnswer::Decline,
        };
        self.journal(Event::McpElicitation(McpElicitation {
            server: server.to_string(),
            message: message.to_string(),
            fields: form
                .map(|f| f.fields.into_iter().map(|x| x.name).collect())
                .unwrap_or_default(),
            action: answer.action().to_string(),
        }))?;
        Ok(match answer {
            ElicitAnswer::Accept(values) => json!({"action": "accept", "content": values}),
            other => json!({"action": other.action()}),
        })
    }

    /// The checks of a sampling request, in order: text only; the model granted by name
    /// (even a scripted one: the server, not the program, chose to spend it); the gate on
    /// `llm.call(MODEL, request)`; a provider bound; the budget. A refusal answers the
    /// server with a JSON-RPC error and is journalled.
    fn start_sampling(
        &mut self,
        server: String,
        model: String,
        params: Value,
        reply: oneshot::Sender<Result<Value, String>>,
    ) -> Result<Option<Sampling>, RunError> {
        let untrusted = LabelInfo::untrusted();
        let mut event = McpSampling {
            server: server.clone(),
            model: model.clone(),
            request: Value::Null,
            request_label: untrusted.to_string(),
            verdict: "deny".into(),
            rule: String::new(),
            reason: String::new(),
            approval: None,
            outcome: "ok".into(),
            error: None,
            llm: None,
            result_label: untrusted.to_string(),
        };
        let request = match sampling_request(&params) {
            Ok(r) => r,
            Err(why) => {
                event.rule = "mcp-sampling".into();
                return self.refuse_sampling(event, reply, "TypeError", why);
            }
        };
        event.request = request.clone();
        if let Err(d) = self.gate.policy.check_model(&model) {
            event.rule = d.rule.clone();
            event.reason = d.reason.clone();
            let why = format!("sampling by {model} is not granted: {}", d.reason);
            return self.refuse_sampling(event, reply, crate::policy::POLICY_DENIED, why);
        }
        let value = llm_value::value_from_json(&request).labelled_deep(&untrusted);
        let mut req = EffectRequest {
            task: TaskId(NO_TASK),
            native: crate::format::LLM_CALL.into(),
            args: vec![HostValue::str(&model), value.clone()],
            // The server, not the program, caused the call.
            control: untrusted.clone(),
        };
        self.sampled += 1;
        let judged = self.gate.judge(&mut req, self.sampled, None, true);
        if let Some(d) = &judged.event {
            event.verdict = d.verdict.clone();
            event.rule = d.rule.clone();
            event.reason = d.reason.clone();
            event.approval = d.approval.clone();
        }
        if let Err(e) = judged.outcome {
            if let Some(b) = super::gate::blocked(&e) {
                self.blocked.push(b);
            }
            return self.refuse_sampling(event, reply, &e.kind, e.message);
        }
        let Some(binding) = self.models.get(&model).cloned() else {
            let why = format!("no provider is configured for model {model:?}");
            return self.refuse_sampling(event, reply, super::MODEL_ERROR, why);
        };
        let mut mreq = match llm_value::request_from_value(&binding.model, &value) {
            Ok(r) => r,
            Err(e) => return self.refuse_sampling(event, reply, &e.kind, e.message),
        };
        if mreq.max_tokens.is_none() {
            mreq.max_tokens = binding.max_tokens;
        }
        if let Err(e) = self.budget.check_time().and_then(|()| {
            self.budget
                .admit_llm(&mut mreq, binding.price.as_ref(), &model)
        }) {
            let e = e.to_host_error();
            return self.refuse_sampling(event, reply, &e.kind, e.message);
        }
        Ok(Some(Box::pin(async move {
            let t0 = Instant::now();
            let (result, attempts) =
                providers::retry::call_with_retries(&*binding.provider, &mreq, &binding.retry)
                    .await;
            Sampled {
                event,
                provider: binding.provider.name().to_string(),
                price: binding.price,
                result,
                attempts,
                latency: t0.elapsed(),
                reply,
            }
        })))
    }

    fn refuse_sampling(
        &mut self,
        mut event: McpSampling,
        reply: oneshot::Sender<Result<Value, String>>,
        kind: &str,
        why: String,
    ) -> Result<Option<Sampling>, RunError> {
        event.outcome = kind.to_string();
        event.error = Some(why.clone());
        self.journal(Event::McpSampling(Box::new(event)))?;
        let _ = reply.send(Err(format!("{kind}: {why}")));
        Ok(None)
    }

    /// Charges a finished sampling call, journals it and answers the server.
    pub(super) fn finish_sampling(&mut self, s: Sampled) -> Result<(), RunError> {
        let mut event = s.event;
        let (answer, response, usage, cost) = match s.result {
            Ok(resp) => {
                let cost = s.price.map(|p| p.cost(&resp.usage));
                self.budget.charge_llm(&resp.usage, cost);
                let stop = match resp.finish {
                    Finish::Stop => "endTurn",
                    Finish::Length => "maxTokens",
                    Finish::ToolCalls => "toolUse",
                };
                let answer = json!({
                    "role": "assistant",
                    "content": {"type": "text", "text": resp.content},
                    "model": event.model,
                    "stopReason": stop,
                });
                (Ok(answer), Some(resp.clone()), resp.usage, cost)
            }
            Err(e) => {
                let why = format!("model {} ({}): {e}", event.model, s.provider);
                event.outcome = super::MODEL_ERROR.into();
                event.error = Some(why.clone());
                (
                    Err(format!("{}: {why}", super::MODEL_ERROR)),
                    None,
                    super::llm::Usage::default(),
                    None,
                )
            }
        };
        event.llm = Some(LlmRecord {
            model: event.model.clone(),
            provider: s.provider,
            response,
            usage,
            cost,
            attempts: s.attempts,
            latency_ms: s.latency.as_millis().min(u64::MAX as u128) as u64,
        });
        self.journal(Event::McpSampling(Box::new(event)))?;
        let _ = s.reply.send(answer);
        Ok(())
    }
}

/// The `llm.call` request (as JSON) a sampling request makes: its system prompt, its
/// messages (text only), `maxTokens`, `temperature` and `stopSequences`.
fn sampling_request(params: &Value) -> Result<Value, String> {
    let mut messages = Vec::new();
    if let Some(system) = params.get("systemPrompt").and_then(Value::as_str) {
        messages.push(json!({"role": "system", "content": system}));
    }
    let listed = params
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("the request has no messages")?;
    for (i, m) in listed.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some(r @ ("user" | "assistant")) => r,
            _ => return Err(format!("messages[{i}]: the role must be user or assistant")),
        };
        let blocks = match m.get("content") {
            Some(Value::Array(a)) => a.clone(),
            Some(one) => vec![one.clone()],
            None => Vec::new(),
        };
        let mut text = Vec::new();
        for b in &blocks {
            match (b.get("type").and_then(Value::as_str), b.get("text")) {
                (Some("text"), Some(Value::String(t))) => text.push(t.as_str()),
                (kind, _) => {
                    return Err(format!(
                        "messages[{i}]: only text content can be sampled, not {}",
                        kind.unwrap_or("untyped content")
                    ))
                }
            }
        }
        messages.push(json!({"role": role, "content": text.join("\n")}));
    }
    let mut options = serde_json::Map::new();
    if let Some(n) = params
        .get("maxTokens")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
    {
        options.insert("max_tokens".into(), json!(n));
    }
    if let Some(t) = params.get("temperature").and_then(Value::as_f64) {
        options.insert("temperature".into(), json!(t));
    }
    if let Some(s) = params.get("stopSequences").filter(|s| s.is_array()) {
        options.insert("stop".into(), s.clone());
    }
    Ok(json!({"messages": messages, "options": options}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sampling_request_becomes_a_text_model_request() {
        let params = json!({
            "systemPrompt": "be brief",
            "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
            "maxTokens": 20,
        });
        let r = sampling_request(&params).unwrap();
        assert_eq!(
            r["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(r["messages"][1], json!({"role": "user", "content": "hi"}));
        assert_eq!(r["options"]["max_tokens"], json!(20));
        let image = json!({"messages": [{"role": "user", "content": {"type": "image", "data": "", "mimeType": "image/png"}}]});
        assert!(sampling_request(&image).unwrap_err().contains("image"));
        let system =
            json!({"messages": [{"role": "system", "content": {"type": "text", "text": "x"}}]});
        assert!(sampling_request(&system).is_err());
    }
}
