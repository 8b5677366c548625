//! MCP servers as tools (spec/mcp.md): the `[mcp]` configuration, the lockfile of approved
//! tools, and [`McpHub`], the client that starts each configured server on first use (with
//! the official SDK, rmcp), calls its tools under deadlines and byte caps, and stops every
//! child at the end. The policy gate runs before any of this; the hub only adds the checks
//! that need the server's own answers (its tool list against the lock).

mod config;
mod hub;
mod lock;
mod names;
mod paths;
mod value;

pub use config::{
    McpConfig, PathAccess, ServerConfig, Transport, DEFAULT_MAX_RESULT_BYTES, DEFAULT_TIMEOUT,
};
pub use hub::{HubOptions, McpHub, ServerRequest, DEFAULT_START_TIMEOUT};
pub use lock::{tool_hash, Lock, LockError, LockStatus, LOCK_FILE};
pub use names::{check_server_name, check_tool_name, split_id};
pub use paths::check_paths;
pub use value::CallOutput;

use crate::host_value::{HostData, HostError, HostValue};
use crate::label::LabelInfo;
use crate::policy::Denial;

/// The error kind of a call that failed for any reason but the tool's own (`isError`).
pub const MCP_ERROR: &str = "McpError";
/// The error kind of a tool that answered `isError: true`.
pub const TOOL_ERROR: &str = "ToolError";
/// The policy rule of a call refused by the lockfile.
pub const LOCK_RULE: &str = "mcp-lock";

/// One tool a server lists, as the hub accepted it.
#[derive(Clone, Debug, PartialEq)]
pub struct McpTool {
    /// `SERVER.TOOL`.
    pub id: String,
    /// The tool's name as the server spells it.
    pub name: String,
    /// The server's description: untrusted text.
    pub description: String,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub annotations: Option<serde_json::Value>,
    /// See [`tool_hash`].
    pub hash: String,
    pub status: LockStatus,
}

impl McpTool {
    pub(crate) fn from_listed(server: &str, t: &rmcp::model::Tool, lock: &Lock) -> McpTool {
        let hash = tool_hash(t);
        McpTool {
            id: format!("{server}.{}", t.name),
            name: t.name.to_string(),
            description: t.description.as_deref().unwrap_or("").to_string(),
            input_schema: serde_json::Value::Object((*t.input_schema).clone()),
            output_schema: t
                .output_schema
                .as_ref()
                .map(|s| serde_json::Value::Object((**s).clone())),
            annotations: t
                .annotations
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok()),
            status: lock.status(server, &t.name, &hash),
            hash,
        }
    }
}

/// Why an MCP call did not give a result. Each names the server and the tool.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum McpError {
    #[error("{server}.{tool}: no MCP server `{server}` is configured (add [mcp.servers.{server}] to aivm.toml)")]
    NotConfigured { server: String, tool: String },
    /// The server could not be started, initialized or listed within the start deadline.
    #[error("{server}.{tool}: MCP server `{server}` did not start: {reason}")]
    Start {
        server: String,
        tool: String,
        reason: String,
    },
    /// The server does not list the tool (or its name breaks the naming rules).
    #[error("{server}.{tool}: {reason}")]
    NoSuchTool {
        server: String,
        tool: String,
        reason: String,
    },
    /// Refused by the lockfile: the program gets `PolicyDenied`, rule `mcp-lock`.
    #[error("{server}.{tool}: {reason}")]
    Locked {
        server: String,
        tool: String,
        reason: String,
    },
    /// No answer within the server's `timeout_secs` (the request was cancelled).
    #[error("{server}.{tool}: no answer within {secs} s (the call was cancelled)")]
    Deadline {
        server: String,
        tool: String,
        secs: u64,
    },
    /// A message bigger than `max_result_bytes` (the connection is closed).
    #[error("{server}.{tool}: the server sent a message over {limit} bytes (max_result_bytes); its connection is closed")]
    TooLarge {
        server: String,
        tool: String,
        limit: usize,
    },
    /// A JSON-RPC error, a closed connection, an answer that is not a tool result.
    #[error("{server}.{tool}: {reason}")]
    Call {
        server: String,
        tool: String,
        reason: String,
    },
    /// The tool answered `isError: true`; `content` is its content items, `message` their
    /// text joined.
    #[error("{server}.{tool}: {message}")]
    Tool {
        server: String,
        tool: String,
        content: Box<HostValue>,
        message: String,
    },
}

impl McpError {
    /// The server named.
    pub fn server(&self) -> &str {
        match self {
            McpError::NotConfigured { server, .. }
            | McpError::Start { server, .. }
            | McpError::NoSuchTool { server, .. }
            | McpError::Locked { server, .. }
            | McpError::Deadline { server, .. }
            | McpError::TooLarge { server, .. }
            | McpError::Call { server, .. }
            | McpError::Tool { server, .. } => server,
        }
    }

    /// The tool named (as the server spells it).
    pub fn tool(&self) -> &str {
        match self {
            McpError::NotConfigured { tool, .. }
            | McpError::Start { tool, .. }
            | McpError::NoSuchTool { tool, .. }
            | McpError::Locked { tool, .. }
            | McpError::Deadline { tool, .. }
            | McpError::TooLarge { tool, .. }
            | McpError::Call { tool, .. }
            | McpError::Tool { tool, .. } => tool,
        }
    }

    /// The `HostError` kind the program gets: `ToolError`, `PolicyDenied` (the lock) or
    /// `McpError`.
    pub fn kind(&self) -> &'static str {
        match self {
            McpError::Tool { .. } => TOOL_ERROR,
            McpError::Locked { .. } => "PolicyDenied",
            _ => MCP_ERROR,
        }
    }

    /// The catchable error of spec/mcp.md §Client: `ToolError {tool, content}`, `PolicyDenied
    /// {tool, rule: "mcp-lock", reason}`, or `McpError {server, tool, reason}`. `label` is
    /// the tool's output label: what the server said (its error text, its content) carries it.
    pub fn into_host_error(self, label: &LabelInfo) -> HostError {
        let message = self.to_string();
        let id = format!("{}.{}", self.server(), self.tool());
        let mut e = match self {
            McpError::Locked { reason, .. } => {
                return Denial::new(LOCK_RULE, reason).into_host_error(&id)
            }
            McpError::Tool { content, .. } => {
                HostError::new(TOOL_ERROR, message).with_payload(record(vec![
                    ("tool", HostValue::str(&id)),
                    ("content", *content),
                ]))
            }
            other => {
                let reason = match &other {
                    McpError::Start { reason, .. }
                    | McpError::NoSuchTool { reason, .. }
                    | McpError::Call { reason, .. } => reason.clone(),
                    _ => message.clone(),
                };
                HostError::new(MCP_ERROR, message).with_payload(record(vec![
                    ("server", HostValue::str(other.server())),
                    ("tool", HostValue::str(other.tool())),
                    ("reason", HostValue::str(reason)),
                ]))
            }
        };
        e.label = label.clone();
        e.payload = e.payload.map(|p| Box::new(p.labelled_deep(label)));
        e
    }
}

fn record(fields: Vec<(&str, HostValue)>) -> HostValue {
    HostValue::new(HostData::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_the_three_kinds() {
        let u = LabelInfo::untrusted();
        let e = McpError::Call {
            server: "s".into(),
            tool: "t".into(),
            reason: "JSON-RPC error -32602: tool not found".into(),
        }
        .into_host_error(&u);
        assert_eq!(e.kind, "McpError");
        assert_eq!(e.message, "s.t: JSON-RPC error -32602: tool not found");
        assert_eq!(
            e.payload.as_ref().unwrap().to_json(),
            serde_json::json!({"server": "s", "tool": "t", "reason": "JSON-RPC error -32602: tool not found"})
        );
        assert_eq!(e.label, u);
        assert_eq!(e.payload.unwrap().deep_label(), u);

        let content = Box::new(HostValue::new(HostData::List(vec![])));
        let e = McpError::Tool {
            server: "s".into(),
            tool: "t".into(),
            content,
            message: "ENOENT".into(),
        }
        .into_host_error(&u);
        assert_eq!(e.kind, "ToolError");
        assert_eq!(
            e.payload.unwrap().to_json(),
            serde_json::json!({"tool": "s.t", "content": []})
        );

        let e = McpError::Locked {
            server: "s".into(),
            tool: "t".into(),
            reason: "not pinned".into(),
        }
        .into_host_error(&u);
        assert_eq!(e.kind, "PolicyDenied");
        let p = e.payload.unwrap().to_json();
        assert_eq!(p["rule"], "mcp-lock");
        assert_eq!(p["tool"], "s.t");
    }
}
