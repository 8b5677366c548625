//! The scripted provider: answers from a transcript file (spec/scripted.md), for examples,
//! tests and conformance runs without a model. Answers are chosen deterministically from the
//! request alone, so a program's run on a transcript is reproducible.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;

use super::estimate_usage;
use crate::host::llm::{
    BoxFuture, Finish, ModelRequest, ModelResponse, Provider, ProviderError, Role, ToolCall, Usage,
};

/// The transcript a program ships beside itself: `dir/x.ail` or `dir/x.aib` → `dir/x.script.json`.
pub fn transcript_path(program: &Path) -> PathBuf {
    program.with_extension("script.json")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transcript {
    turns: Vec<Turn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    /// Only for requests whose conversation contains this text.
    #[serde(default)]
    when: Option<String>,
    /// Only for requests to this model (the logical name).
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    json: Option<serde_json::Value>,
    #[serde(default)]
    tool_calls: Option<Vec<ScriptedCall>>,
    #[serde(default)]
    error: Option<ScriptedError>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    finish: Option<Finish>,
    #[serde(default)]
    delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedCall {
    name: String,
    #[serde(default)]
    arguments: serde_json::Value,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedError {
    status: u16,
    message: String,
}

/// A provider answering from a transcript. Each turn answers at most once; the state is
/// shared by every model name bound to the same transcript.
#[derive(Debug)]
pub struct ScriptedProvider {
    name: String,
    origin: String,
    turns: Vec<Turn>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    used: Vec<bool>,
    calls: u64,
}

fn config_error(origin: &str, message: impl std::fmt::Display) -> ProviderError {
    ProviderError::Config(format!("scripted transcript {origin}: {message}"))
}

impl ScriptedProvider {
    /// Reads a transcript file.
    pub fn load(path: &Path) -> Result<Self, ProviderError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_error(&origin, format!("cannot read it: {e}")))?;
        Self::from_json(&text, &origin)
    }

    /// Parses a transcript; `origin` names it in messages (usually its path).
    pub fn from_json(text: &str, origin: &str) -> Result<Self, ProviderError> {
        let t: Transcript = serde_json::from_str(text).map_err(|e| config_error(origin, e))?;
        for (i, turn) in t.turns.iter().enumerate() {
            let n = i + 1;
            let answers = [
                turn.content.is_some() || turn.tool_calls.is_some(),
                turn.json.is_some(),
                turn.error.is_some(),
            ];
            match answers.iter().filter(|a| **a).count() {
                1 => {}
                0 => return Err(config_error(origin, format!("turn {n} gives no answer (content, json, tool_calls or error)"))),
                _ => {
                    return Err(config_error(
                        origin,
                        format!("turn {n} gives more than one kind of answer (json, error and content/tool_calls exclude each other)"),
                    ))
                }
            }
            for call in turn.tool_calls.iter().flatten() {
                if !call.arguments.is_object() && !call.arguments.is_null() {
                    return Err(config_error(
                        origin,
                        format!(
                            "turn {n}: the arguments of `{}` must be an object",
                            call.name
                        ),
                    ));
                }
            }
        }
        Ok(ScriptedProvider {
            name: format!("scripted:{origin}"),
            origin: origin.to_string(),
            state: Mutex::new(State {
                used: vec![false; t.turns.len()],
                calls: 0,
            }),
            turns: t.turns,
        })
    }

    /// The index of the turn answering `req`, marked used; or why there is none.
    fn select(&self, req: &ModelRequest) -> Result<usize, ProviderError> {
        // A poisoned lock only means another call panicked mid-selection; the flags are
        // still consistent (each is set in one store), so carry on with them.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.calls += 1;
        let for_model = |t: &Turn| t.model.as_deref().is_none_or(|m| m == req.model);
        let matches = |when: &str| req.messages.iter().any(|m| m.content.contains(when));
        let unused = |i: &usize| !state.used.get(*i).copied().unwrap_or(true);
        let chosen = (0..self.turns.len())
            .filter(unused)
            .find(|&i| {
                let t = &self.turns[i];
                for_model(t) && t.when.as_deref().is_some_and(matches)
            })
            .or_else(|| {
                (0..self.turns.len())
                    .filter(unused)
                    .find(|&i| for_model(&self.turns[i]) && self.turns[i].when.is_none())
            });
        match chosen {
            Some(i) => {
                if let Some(flag) = state.used.get_mut(i) {
                    *flag = true;
                }
                Ok(i)
            }
            None => {
                let left = (0..self.turns.len()).filter(unused).count();
                let why = if left == 0 {
                    format!("all {} turns are used", self.turns.len())
                } else {
                    format!("none of the {left} unused turns is for this model without a `when`, or has a `when` the conversation contains")
                };
                let last_user = req
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.role == Role::User)
                    .map(|m| format!("; the last user message is {}", super::excerpt(&m.content)))
                    .unwrap_or_default();
                Err(ProviderError::Exhausted(format!(
                    "scripted transcript {} has no answer for call {} (model \"{}\"): {why}{last_user}",
                    self.origin, state.calls, req.model
                )))
            }
        }
    }

    fn answer(&self, index: usize, req: &ModelRequest) -> Result<ModelResponse, ProviderError> {
        let turn = &self.turns[index];
        if let Some(e) = &turn.error {
            return Err(ProviderError::Http {
                provider: self.name.clone(),
                status: e.status,
                message: e.message.clone(),
                retry_after: None,
            });
        }
        let content = match (&turn.json, &turn.content) {
            (Some(v), _) => v.to_string(),
            (None, Some(c)) => c.clone(),
            (None, None) => String::new(),
        };
        let tool_calls: Vec<ToolCall> = turn
            .tool_calls
            .iter()
            .flatten()
            .enumerate()
            .map(|(k, c)| ToolCall {
                id: c
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("call_{}_{k}", index + 1)),
                name: c.name.clone(),
                arguments: if c.arguments.is_null() {
                    "{}".to_string()
                } else {
                    c.arguments.to_string()
                },
            })
            .collect();
        let finish = turn.finish.unwrap_or(if tool_calls.is_empty() {
            Finish::Stop
        } else {
            Finish::ToolCalls
        });
        Ok(ModelResponse {
            usage: turn
                .usage
                .unwrap_or_else(|| estimate_usage(req, &content, &tool_calls)),
            content,
            tool_calls,
            finish,
            model: req.model.clone(),
        })
    }
}

impl Provider for ScriptedProvider {
    fn needs_grant(&self) -> bool {
        false
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a>(
        &'a self,
        req: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ProviderError>> {
        // Selection happens at the call, not when the future is first polled or after the
        // delay, so that the choice depends only on the order in which the host makes calls.
        let selected = self.select(req);
        Box::pin(async move {
            let index = selected?;
            if let Some(ms) = self.turns[index].delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            self.answer(index, req)
        })
    }
}
