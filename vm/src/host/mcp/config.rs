//! `[mcp.servers.NAME]` in `aivm.toml` (spec/mcp.md §Configuration): how to reach each MCP
//! server (a child over stdio, or Streamable HTTP), its deadline, result cap, the arguments
//! that name files, and whether its label hints are trusted. Checked as it is read, so a
//! mistake is reported with its line and column.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::names::{check_server_name, check_tool_name};

/// The per-call deadline when a server sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest message a server may send when it sets no `max_result_bytes`: 16 MiB.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 16 << 20;

/// The `[mcp]` section: the configured servers, in file order.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    #[serde(default, deserialize_with = "servers")]
    pub servers: IndexMap<String, ServerConfig>,
}

/// One server.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawServer")]
pub struct ServerConfig {
    pub transport: Transport,
    /// The deadline of one `tools/call`.
    pub timeout: Duration,
    /// The deadline of the start (spawn or connect, `initialize`, `tools/list`); `None`: the
    /// hub's ([`super::DEFAULT_START_TIMEOUT`] in a run).
    pub start_timeout: Option<Duration>,
    /// The largest message (one stdio line, one HTTP body or SSE event) accepted from it.
    pub max_result_bytes: usize,
    /// `"TOOL.ARG"` → the access the argument's path needs, checked against the file grants
    /// before the call is sent (the key splits at its last dot).
    pub paths: IndexMap<String, PathAccess>,
    /// Whether the server's `_meta["aivm/label"]` hints may lower a label (else they can only
    /// make it stricter).
    pub trust_label_hints: bool,
    /// The logical model (of the run's models) that answers the server's
    /// `sampling/createMessage` requests; without it the client does not offer sampling.
    pub sampling: Option<String>,
}

/// How to reach a server.
#[derive(Clone, PartialEq)]
pub enum Transport {
    /// A child process speaking JSON-RPC lines on stdin/stdout. Its environment is `env` plus
    /// the host's `PATH`, nothing else; `cwd` is relative to the config file's folder.
    Stdio {
        command: String,
        args: Vec<String>,
        env: IndexMap<String, String>,
        cwd: Option<PathBuf>,
    },
    /// Streamable HTTP. `${VAR}` in header values is read from the host environment when the
    /// server starts; the values are never journalled nor shown by `Debug`.
    Http {
        url: String,
        headers: IndexMap<String, String>,
    },
}

// Values of `env` and `headers` may hold secrets: only their names are shown.
impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.keys().collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            Transport::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The access a path argument needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathAccess {
    Read,
    Write,
}

impl ServerConfig {
    /// The arguments of `tool` that name files, with the access each needs.
    pub fn path_args<'a>(&'a self, tool: &'a str) -> impl Iterator<Item = (&'a str, PathAccess)> {
        self.paths.iter().filter_map(move |(key, access)| {
            let (t, arg) = key.rsplit_once('.')?;
            (t == tool).then_some((arg, *access))
        })
    }
}

fn servers<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, ServerConfig>, D::Error> {
    let raw: IndexMap<ServerName, ServerConfig> = IndexMap::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// A server name, checked as the key is read (so the error points at it).
#[derive(PartialEq, Eq, Hash)]
struct ServerName(String);

impl<'de> Deserialize<'de> for ServerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_server_name(&s).map_err(de::Error::custom)?;
        Ok(ServerName(s))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    // Options, so that a key given empty still counts as given for the wrong transport.
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<IndexMap<String, String>>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    headers: Option<IndexMap<String, String>>,
    timeout_secs: Option<u64>,
    start_timeout_secs: Option<u64>,
    max_result_bytes: Option<u64>,
    #[serde(default)]
    paths: IndexMap<String, PathAccess>,
    #[serde(default)]
    trust_label_hints: bool,
    sampling: Option<String>,
}

impl TryFrom<RawServer> for ServerConfig {
    type Error = String;

    fn try_from(r: RawServer) -> Result<Self, String> {
        let stdio_only = r.args.is_some() || r.env.is_some() || r.cwd.is_some();
        let transport = match (r.command, r.url) {
            (Some(_), Some(_)) => return Err("give either `command` or `url`, not both".into()),
            (None, None) => {
                return Err("give `command` (a stdio server) or `url` (Streamable HTTP)".into())
            }
            (Some(command), None) => {
                if command.trim().is_empty() {
                    return Err("`command` must not be empty".into());
                }
                if r.headers.is_some() {
                    return Err("`headers` is for a server with a `url`".into());
                }
                let env = r.env.unwrap_or_default();
                for k in env.keys() {
                    if k.is_empty() || k.contains('=') || k.contains('\0') {
                        return Err(format!("`env` has an invalid variable name {k:?}"));
                    }
                }
                Transport::Stdio {
                    command,
                    args: r.args.unwrap_or_default(),
                    env,
                    cwd: r.cwd,
                }
            }
            (None, Some(url)) => {
                if stdio_only {
                    return Err("`args`, `env` and `cwd` are for a server with a `command`".into());
                }
                let parsed =
                    url::Url::parse(&url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("url {url:?}: expected http:// or https://"));
                }
                let headers = r.headers.unwrap_or_default();
                for k in headers.keys() {
                    reqwest::header::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("`headers` has an invalid header name {k:?}"))?;
                }
                Transport::Http { url, headers }
            }
        };
        let timeout = match r.timeout_secs {
            Some(0) => return Err("timeout_secs must be at least 1".into()),
            Some(s) => Duration::from_secs(s),
            None => DEFAULT_TIMEOUT,
        };
        let start_timeout = match r.start_timeout_secs {
            Some(0) => return Err("start_timeout_secs must be at least 1".into()),
            s => s.map(Duration::from_secs),
        };
        let max_result_bytes = match r.max_result_bytes {
            Some(0) => return Err("max_result_bytes must be at least 1".into()),
            Some(n) => usize::try_from(n).map_err(|_| "max_result_bytes is too large")?,
            None => DEFAULT_MAX_RESULT_BYTES,
        };
        for key in r.paths.keys() {
            let Some((tool, arg)) = key.rsplit_once('.') else {
                return Err(format!("paths: {key:?} must be \"TOOL.ARGUMENT\""));
            };
            check_tool_name(tool).map_err(|m| format!("paths: {key:?}: {m}"))?;
            if arg.is_empty() {
                return Err(format!("paths: {key:?} names no argument"));
            }
        }
        Ok(ServerConfig {
            transport,
            timeout,
            start_timeout,
            max_result_bytes,
            paths: r.paths,
            trust_label_hints: r.trust_label_hints,
            sampling: r.sampling,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        mcp: McpConfig,
    }

    fn parse(text: &str) -> Result<McpConfig, String> {
        toml::from_str::<Doc>(text)
            .map(|d| d.mcp)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_transports_with_defaults() {
        let c = parse(
            r#"
[mcp.servers.files]
command = "node"
args = ["fs.js", "data"]
env = { MEMORY_FILE_PATH = "/tmp/m.jsonl" }
paths = { "read_text_file.path" = "read", "a.b.c" = "write" }

[mcp.servers.web]
url = "http://127.0.0.1:3001/mcp"
headers = { Authorization = "Bearer ${WEB_TOKEN}" }
timeout_secs = 5
max_result_bytes = 1024
trust_label_hints = true
"#,
        )
        .unwrap();
        assert_eq!(c.servers.keys().collect::<Vec<_>>(), ["files", "web"]);
        let files = &c.servers["files"];
        assert_eq!(files.timeout, DEFAULT_TIMEOUT);
        assert_eq!(files.max_result_bytes, 16 << 20);
        assert!(!files.trust_label_hints);
        assert_eq!(
            files.path_args("read_text_file").collect::<Vec<_>>(),
            [("path", PathAccess::Read)]
        );
        assert_eq!(
            files.path_args("a.b").collect::<Vec<_>>(),
            [("c", PathAccess::Write)]
        );
        let web = &c.servers["web"];
        assert_eq!(web.timeout, Duration::from_secs(5));
        assert_eq!(web.max_result_bytes, 1024);
        let shown = format!("{web:?}{files:?}");
        assert!(
            !shown.contains("WEB_TOKEN") && !shown.contains("Bearer"),
            "{shown}"
        );
        assert!(!shown.contains("m.jsonl"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
    }

    #[test]
    fn mistakes_say_where() {
        let cases = [
            (
                "[mcp.servers.a]\ncommand = \"x\"\ncolour = 1\n",
                "colour",
                3,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\nurl = \"http://h/\"\n",
                "not both",
                1,
            ),
            ("[mcp.servers.a]\nargs = []\n", "give `command`", 1),
            ("[mcp.servers.io]\ncommand = \"x\"\n", "native", 1),
            ("[mcp.servers.\"a.b\"]\ncommand = \"x\"\n", "server name", 1),
            (
                "[mcp.servers.a]\ncommand = \"x\"\npaths = { \"p\" = \"read\" }\n",
                "TOOL.ARGUMENT",
                1,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\npaths = { \"t.p\" = \"exec\" }\n",
                "exec",
                3,
            ),
            ("[mcp.servers.a]\nurl = \"ftp://h/\"\n", "http://", 1),
            (
                "[mcp.servers.a]\nurl = \"http://h/\"\ncwd = \"x\"\n",
                "`command`",
                1,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\ntimeout_secs = 0\n",
                "at least 1",
                1,
            ),
            ("[mcp.server.a]\ncommand = \"x\"\n", "server", 1),
            (
                "[mcp.servers.a]\nurl = \"http://h/\"\nargs = []\n",
                "`command`",
                1,
            ),
            (
                "[mcp.servers.a]\ncommand = \"x\"\nheaders = {}\n",
                "`url`",
                1,
            ),
            (
                "[mcp.servers.a]\nurl = \"http://h/\"\nheaders = { \"a b\" = \"v\" }\n",
                "header name",
                1,
            ),
        ];
        for (text, want, line) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains(&format!("line {line}")), "{text}: {e}");
        }
    }
}
