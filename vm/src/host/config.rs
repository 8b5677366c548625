//! `aivm.toml`: which provider and model answers each logical model name, their prices, the
//! run's budgets; `--model NAME=KIND:ID` overrides; and binding a program's model names to
//! ready providers (keys from the environment, never printed). spec/providers.md has the format.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::llm::{Provider, ProviderError, Usage};
use super::mcp::McpConfig;
use super::providers::anthropic::{self, AnthropicProvider};
use super::providers::client;
use super::providers::openai::{self, OpenAiProvider};
use super::providers::retry::RetryRule;
use super::providers::scripted::{transcript_path, ScriptedProvider};
use super::providers::HttpSettings;
use super::providers::{ApiKey, Limits};
use crate::policy::{LabelConfig, PolicyConfig, PolicySection};

/// The file name looked for beside the program and in the working directory.
pub const CONFIG_FILE: &str = "aivm.toml";

/// Why a configuration cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    /// The file is not valid: the message says where (line, column) and what.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("--model {spec}: {message}")]
    Override { spec: String, message: String },
}

impl From<ConfigError> for ProviderError {
    fn from(e: ConfigError) -> Self {
        ProviderError::Config(e.to_string())
    }
}

/// The kinds of provider a model name can be bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// An OpenAI-compatible chat-completions endpoint.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// A transcript file (the model id is its path).
    Scripted,
    /// The model of the MCP client that called a served tool (`aivm serve`), reached by
    /// `sampling/createMessage`; the id, which may be empty, is a hint of which model.
    #[serde(rename = "mcp-client")]
    McpClient,
}

impl ProviderKind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            "scripted" => Some(ProviderKind::Scripted),
            "mcp-client" => Some(ProviderKind::McpClient),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Scripted => "scripted",
            ProviderKind::McpClient => "mcp-client",
        }
    }
}

/// USD per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    /// The cost in USD of a turn that used `usage`.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.input + usage.output_tokens as f64 * self.output) / 1e6
    }
}

/// What one logical model name is bound to.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: ProviderKind,
    /// The provider's model id (`gpt-4o-mini`); for `scripted`, the transcript's path.
    pub model: String,
    /// The API root (OpenAI-compatible: with `/v1`); default: the provider's own, or
    /// `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the key; default `OPENAI_API_KEY` /
    /// `ANTHROPIC_API_KEY`.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The default `max_tokens` of a request that sets none.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Ask for streamed answers.
    #[serde(default)]
    pub stream: bool,
    /// Per-request deadline in seconds (default 300).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Retries after the first attempt (default 3).
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub price: Option<Price>,
}

impl ModelConfig {
    /// A binding with every option at its default.
    pub fn new(provider: ProviderKind, model: impl Into<String>) -> Self {
        ModelConfig {
            provider,
            model: model.into(),
            base_url: None,
            api_key_env: None,
            max_tokens: None,
            stream: false,
            timeout_secs: None,
            retries: None,
            price: None,
        }
    }

    /// Parses `KIND:ID`, e.g. `openai:gpt-4o-mini`.
    pub fn parse_short(s: &str) -> Result<Self, String> {
        let Some((kind, id)) = s.split_once(':') else {
            return Err(format!(
                "expected KIND:ID (e.g. openai:gpt-4o-mini), found {s:?}"
            ));
        };
        let provider = ProviderKind::parse(kind).ok_or_else(|| {
            format!(
                "unknown provider kind `{kind}` (expected openai, anthropic, scripted or mcp-client)"
            )
        })?;
        // The client's model needs no id: which model answers is the client's choice.
        if id.is_empty() && provider != ProviderKind::McpClient {
            return Err(format!("no model id after `{kind}:`"));
        }
        Ok(ModelConfig::new(provider, id))
    }
}

// A `[models]` entry is either the short string form or a table.
impl<'de> Deserialize<'de> for ModelEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ModelEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"KIND:ID\" or a table {provider, model, ...}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ModelEntry, E> {
                ModelConfig::parse_short(s)
                    .map(ModelEntry)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ModelEntry, A::Error> {
                ModelConfig::deserialize(de::value::MapAccessDeserializer::new(map)).map(ModelEntry)
            }
        }
        d.deserialize_any(V)
    }
}

struct ModelEntry(ModelConfig);

/// The `[budget]` section: limits of one run (the host enforces them; flags override them).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    #[serde(default)]
    pub max_tool_calls: Option<u64>,
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// Input and output tokens together.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// USD.
    #[serde(default)]
    pub max_cost: Option<f64>,
    /// Wall time of the run.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    models: IndexMap<String, ModelEntry>,
    #[serde(default)]
    prices: IndexMap<String, Price>,
    #[serde(default)]
    budget: BudgetConfig,
    // The permissions (spec/security-policy.md); checked entry by entry as they are read.
    #[serde(default)]
    policy: PolicySection,
    #[serde(default)]
    permissions: IndexMap<String, PolicySection>,
    #[serde(default)]
    labels: Vec<LabelConfig>,
    // `[mcp.servers.NAME]` (spec/mcp.md); checked as it is read.
    #[serde(default)]
    mcp: McpConfig,
}

/// A parsed `aivm.toml` plus `--model` overrides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Logical model name → binding, in file order.
    pub models: IndexMap<String, ModelConfig>,
    /// `KIND:ID` → price, for bindings without their own `price`.
    pub prices: IndexMap<String, Price>,
    pub budget: BudgetConfig,
    /// `[policy]`, `[permissions.NAME]` and `[[labels]]`: the policy builder reads them.
    pub policy: PolicyConfig,
    /// The config file's folder: relative transcript paths are taken from here (else from
    /// the working directory).
    pub base_dir: Option<PathBuf>,
    /// `[mcp.servers.NAME]`: the MCP servers a program may call.
    pub mcp: McpConfig,
}

impl Config {
    /// Parses the text of a config file; `path` is where it came from, for messages and
    /// relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| parse_err(e.to_string().trim_end().to_string()))?;
        let mut models = IndexMap::new();
        for (name, ModelEntry(m)) in raw.models {
            check_model(&name, &m).map_err(|m| parse_err(format!("[models] {name}: {m}")))?;
            models.insert(name, m);
        }
        for (key, price) in &raw.prices {
            check_price(price).map_err(|m| parse_err(format!("[prices] {key}: {m}")))?;
        }
        if let Some(c) = raw.budget.max_cost {
            if !(c.is_finite() && c >= 0.0) {
                return Err(parse_err(format!(
                    "[budget] max_cost must be a non-negative number, found {c}"
                )));
            }
        }
        Ok(Config {
            models,
            prices: raw.prices,
            budget: raw.budget,
            policy: PolicyConfig {
                policy: raw.policy,
                permissions: raw.permissions,
                labels: raw.labels,
            },
            base_dir: path.parent().map(Path::to_path_buf),
            mcp: raw.mcp,
        })
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Config::parse(&text, path)
    }

    /// Applies `--model NAME=KIND:ID`: the name is bound to that model alone (its entry in
    /// the file, if any, is replaced whole: a price or base URL set for another model would
    /// be wrong for this one).
    pub fn apply_override(&mut self, spec: &str) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError::Override {
            spec: spec.to_string(),
            message,
        };
        let Some((name, rest)) = spec.split_once('=') else {
            return Err(err(
                "expected NAME=KIND:ID, e.g. smart=openai:gpt-4o-mini".into()
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(err("no model name before `=`".into()));
        }
        let mut m = ModelConfig::parse_short(rest.trim()).map_err(err)?;
        // A transcript path on the command line is relative to the working directory, not
        // to the config file's folder.
        if m.provider == ProviderKind::Scripted && Path::new(&m.model).is_relative() {
            if let Ok(cwd) = std::env::current_dir() {
                m.model = cwd.join(&m.model).display().to_string();
            }
        }
        self.models.insert(name.to_string(), m);
        Ok(())
    }

    /// The price of a binding: its own, else the `[prices]` entry of its `KIND:ID`;
    /// transcripts cost nothing.
    pub fn price(&self, logical: &str) -> Option<Price> {
        let m = self.models.get(logical)?;
        if m.provider == ProviderKind::Scripted {
            return Some(Price {
                input: 0.0,
                output: 0.0,
            });
        }
        m.price.or_else(|| {
            self.prices
                .get(&format!("{}:{}", m.provider.as_str(), m.model))
                .copied()
        })
    }

    /// The cost in USD of a turn of `logical`, or `None` when its price is unknown.
    pub fn cost(&self, logical: &str, usage: &Usage) -> Option<f64> {
        self.price(logical).map(|p| p.cost(usage))
    }
}

fn check_price(p: &Price) -> Result<(), String> {
    if [p.input, p.output]
        .iter()
        .all(|x| x.is_finite() && *x >= 0.0)
    {
        Ok(())
    } else {
        Err("prices must be non-negative numbers (USD per million tokens)".into())
    }
}

fn check_model(name: &str, m: &ModelConfig) -> Result<(), String> {
    if name.is_empty() {
        return Err("a model name must not be empty".into());
    }
    // The client's model may go without an id (which model answers is the client's choice).
    if m.model.is_empty() && m.provider != ProviderKind::McpClient {
        return Err("`model` must not be empty".into());
    }
    if let Some(p) = &m.price {
        check_price(p)?;
    }
    if let Some(url) = &m.base_url {
        reqwest::Url::parse(url).map_err(|e| format!("base_url {url:?} is not a URL: {e}"))?;
    }
    if m.timeout_secs == Some(0) {
        return Err("timeout_secs must be at least 1".into());
    }
    Ok(())
}

/// The config file for a program: `aivm.toml` beside the program, else in `cwd`.
pub fn find_config(program_path: &Path, cwd: &Path) -> Option<PathBuf> {
    let beside = program_path.parent().map(|d| d.join(CONFIG_FILE));
    beside
        .into_iter()
        .chain(std::iter::once(cwd.join(CONFIG_FILE)))
        .find(|p| p.is_file())
}

/// Reads the process environment (the default source of keys and base URLs).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A logical model name bound to a ready provider, with what the host needs per call.
#[derive(Clone)]
pub struct ModelBinding {
    pub logical: String,
    pub provider: Arc<dyn Provider>,
    /// The id to put in `ModelRequest.model` (for transcripts: the logical name, which
    /// turns can select on).
    pub model: String,
    pub retry: RetryRule,
    /// The default `max_tokens` of a request that sets none.
    pub max_tokens: Option<u64>,
    pub price: Option<Price>,
}

impl ModelBinding {
    /// The cost in USD of a turn, or `None` when the price is unknown.
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        self.price.map(|p| p.cost(usage))
    }
}

impl fmt::Debug for ModelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelBinding")
            .field("logical", &self.logical)
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .field("retry", &self.retry)
            .field("max_tokens", &self.max_tokens)
            .field("price", &self.price)
            .finish()
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Builds the provider of one configured model. `env` reads environment variables (keys,
/// base URLs); `base_dir` resolves a relative transcript path. A key is required only for
/// the provider's own endpoint: a local server with a custom base URL may need none.
pub fn build_provider(
    logical: &str,
    m: &ModelConfig,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Provider>, ProviderError> {
    let limits = Limits {
        timeout: Duration::from_secs(
            m.timeout_secs
                .unwrap_or(Limits::default().timeout.as_secs()),
        ),
        ..Limits::default()
    };
    let name = format!("{}:{}", m.provider.as_str(), m.model);
    Ok(match m.provider {
        ProviderKind::Scripted => {
            let path = Path::new(&m.model);
            let path = match base_dir {
                Some(dir) if path.is_relative() => dir.join(path),
                _ => path.to_path_buf(),
            };
            Arc::new(ScriptedProvider::load(&path)?)
        }
        ProviderKind::McpClient => Arc::new(client::Unattached::new(name)),
        ProviderKind::OpenAi => {
            let (base_url, api_key) = endpoint(
                logical,
                m,
                env,
                openai::DEFAULT_BASE_URL,
                "OPENAI_BASE_URL",
                "OPENAI_API_KEY",
            )?;
            Arc::new(OpenAiProvider::new(HttpSettings {
                name,
                base_url,
                api_key,
                stream: m.stream,
                limits,
            })?)
        }
        ProviderKind::Anthropic => {
            let (base_url, api_key) = endpoint(
                logical,
                m,
                env,
                anthropic::DEFAULT_BASE_URL,
                "ANTHROPIC_BASE_URL",
                "ANTHROPIC_API_KEY",
            )?;
            Arc::new(AnthropicProvider::new(HttpSettings {
                name,
                base_url,
                api_key,
                stream: m.stream,
                limits,
            })?)
        }
    })
}

/// The base URL and key of an HTTP binding: the configured URL, else `url_env`, else the
/// provider's own; the key from `api_key_env` (which must then be set), else `key_env`.
fn endpoint(
    logical: &str,
    m: &ModelConfig,
    env: &dyn Fn(&str) -> Option<String>,
    default_url: &str,
    url_env: &str,
    key_env: &str,
) -> Result<(String, Option<ApiKey>), ProviderError> {
    let cfg_err = |msg: String| {
        ProviderError::Config(format!(
            "model `{logical}` ({}:{}): {msg}",
            m.provider.as_str(),
            m.model
        ))
    };
    let base_url = m
        .base_url
        .clone()
        .or_else(|| non_empty(env(url_env)))
        .unwrap_or_else(|| default_url.to_string());
    reqwest::Url::parse(&base_url)
        .map_err(|e| cfg_err(format!("base URL {base_url:?} is not a URL: {e}")))?;
    let api_key = match &m.api_key_env {
        Some(var) => Some(
            non_empty(env(var))
                .ok_or_else(|| cfg_err(format!("api_key_env names {var}, which is not set")))?,
        ),
        None => non_empty(env(key_env)),
    };
    if api_key.is_none() && base_url.trim_end_matches('/') == default_url {
        return Err(cfg_err(format!(
            "no API key: set {} (or api_key_env in {CONFIG_FILE})",
            m.api_key_env.as_deref().unwrap_or(key_env)
        )));
    }
    Ok((base_url, api_key.map(ApiKey::new)))
}

/// The retry rule of a binding: `retries` after the first attempt (default 3). Transcripts
/// are retried by the same count but without waiting: there is no server to spare, and a
/// scripted `error` turn followed by an answer then tests a program's retries at full speed.
fn retry_rule(m: Option<&ModelConfig>) -> RetryRule {
    let mut rule = RetryRule::default();
    if let Some(r) = m.and_then(|m| m.retries) {
        rule.max_attempts = r.saturating_add(1);
    }
    if m.is_none_or(|m| m.provider == ProviderKind::Scripted) {
        rule.base_delay = Duration::ZERO;
        rule.max_retry_after = Duration::ZERO;
    }
    rule
}

/// Binds every logical name a program declares, before its first instruction: configured
/// names to their providers; the others to the transcript beside `program` (one provider
/// shared by all of them), if it exists. Any name left unbound, a missing key or an
/// unreadable transcript is a `Config` error saying how to fix it.
pub fn bind_models(
    config: &Config,
    logical_names: &[&str],
    program: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, ModelBinding>, ProviderError> {
    let mut out = IndexMap::new();
    let mut transcript: Option<Arc<dyn Provider>> = None;
    for &logical in logical_names {
        if out.contains_key(logical) {
            continue;
        }
        let binding = match config.models.get(logical) {
            Some(m) => ModelBinding {
                logical: logical.to_string(),
                provider: build_provider(logical, m, config.base_dir.as_deref(), env)?,
                model: if m.provider == ProviderKind::Scripted {
                    logical.to_string()
                } else {
                    m.model.clone()
                },
                retry: retry_rule(Some(m)),
                max_tokens: m.max_tokens,
                price: config.price(logical),
            },
            None => {
                let script = program.map(transcript_path);
                let provider = match (&transcript, &script) {
                    (Some(p), _) => p.clone(),
                    (None, Some(path)) if path.is_file() => {
                        let p: Arc<dyn Provider> = Arc::new(ScriptedProvider::load(path)?);
                        transcript = Some(p.clone());
                        p
                    }
                    _ => return Err(unbound(logical, script.as_deref())),
                };
                ModelBinding {
                    logical: logical.to_string(),
                    provider,
                    model: logical.to_string(),
                    retry: retry_rule(None),
                    max_tokens: None,
                    price: Some(Price {
                        input: 0.0,
                        output: 0.0,
                    }),
                }
            }
        };
        out.insert(logical.to_string(), binding);
    }
    Ok(out)
}

fn unbound(logical: &str, script: Option<&Path>) -> ProviderError {
    let script = script
        .map(|p| format!(", or ship a scripted transcript at {}", p.display()))
        .unwrap_or_default();
    ProviderError::Config(format!(
        "no provider for model \"{logical}\": add `{logical} = \"openai:gpt-4o-mini\"` under [models] in {CONFIG_FILE} \
         (beside the program or in the working directory), or pass --model {logical}=openai:gpt-4o-mini{script}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/p/aivm.toml"))
    }

    #[test]
    fn both_entry_forms_and_sections() {
        let c = parse(
            r#"
[models]
small = "openai:gpt-4o-mini"
large = { provider = "anthropic", model = "claude-x", max_tokens = 2048, price = { input = 3.0, output = 15.0 } }

[models.local]
provider = "openai"
model = "smollm2"
base_url = "http://127.0.0.1:8201/v1"
stream = true
retries = 0

[prices]
"openai:gpt-4o-mini" = { input = 0.15, output = 0.6 }

[budget]
max_llm_calls = 10
max_cost = 0.5
"#,
        )
        .unwrap();
        assert_eq!(
            c.models["small"],
            ModelConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
        );
        assert_eq!(c.models["large"].max_tokens, Some(2048));
        assert!(c.models["local"].stream);
        assert_eq!(
            c.models.keys().collect::<Vec<_>>(),
            ["small", "large", "local"]
        );
        assert_eq!(c.budget.max_llm_calls, Some(10));
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 2_000_000,
        };
        assert!((c.cost("small", &u).unwrap() - 1.35).abs() < 1e-9);
        assert_eq!(c.cost("large", &u), Some(33.0));
        assert_eq!(c.cost("local", &u), None);
        assert_eq!(c.base_dir.as_deref(), Some(Path::new("/p")));
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("[models]\nsmall = { provider = \"openai\", model = \"m\", colour = 1 }\n", "colour"),
            ("[models]\nsmall = \"gemini:pro\"\n", "unknown provider kind `gemini`"),
            ("[models]\nsmall = \"gpt-4o\"\n", "expected KIND:ID"),
            ("[budget]\nmax_calls = 3\n", "max_calls"),
            ("[model]\n", "model"),
            ("[models]\nx = { provider = \"openai\", model = \"m\", base_url = \"not a url\" }\n", "not a URL"),
            ("[models]\nx = { provider = \"openai\", model = \"m\", price = { input = -1.0, output = 1.0 } }\n", "non-negative"),
            ("[mcp.servers.files]\ncommand = \"node\"\ncolour = 1\n", "colour"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want), "{text}: {msg}");
            assert!(msg.starts_with("/p/aivm.toml"), "{msg}");
        }
        // toml's errors carry the line.
        let e = parse("[models]\n\nsmall = \"gemini:pro\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = parse("[mcp.servers.files]\nurl = \"http://127.0.0.1:9/mcp\"\nenv = {}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("`command`"), "{e}");
        let ok = parse("[mcp.servers.files]\ncommand = \"node\"\n").unwrap();
        assert_eq!(ok.mcp.servers.keys().collect::<Vec<_>>(), ["files"]);
    }

    #[test]
    fn overrides_replace_entries() {
        let mut c =
            parse("[models]\nsmart = { provider = \"openai\", model = \"a\", max_tokens = 5 }\n")
                .unwrap();
        c.apply_override("smart=anthropic:claude-x").unwrap();
        c.apply_override("fast = openai:llama3:8b").unwrap();
        assert_eq!(
            c.models["smart"],
            ModelConfig::new(ProviderKind::Anthropic, "claude-x")
        );
        assert_eq!(c.models["fast"].model, "llama3:8b");
        for bad in [
            "smart",
            "=openai:x",
            "smart=openai",
            "smart=openai:",
            "smart=foo:bar",
        ] {
            assert!(
                matches!(c.apply_override(bad), Err(ConfigError::Override { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_are_required_only_for_the_real_endpoints() {
        let none = |_: &str| None;
        let m = ModelConfig::new(ProviderKind::OpenAi, "gpt-4o-mini");
        let e = build_provider("small", &m, None, &none).err().unwrap();
        assert!(e.to_string().contains("set OPENAI_API_KEY"), "{e}");
        let e = build_provider(
            "big",
            &ModelConfig::new(ProviderKind::Anthropic, "c"),
            None,
            &none,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("ANTHROPIC_API_KEY"), "{e}");

        let local = ModelConfig {
            base_url: Some("http://127.0.0.1:9/v1".into()),
            ..m.clone()
        };
        assert!(build_provider("small", &local, None, &none).is_ok());
        let env_url =
            |k: &str| (k == "OPENAI_BASE_URL").then(|| "http://127.0.0.1:9/v1".to_string());
        assert!(build_provider("small", &m, None, &env_url).is_ok());

        let custom = ModelConfig {
            api_key_env: Some("MY_KEY".into()),
            ..local
        };
        let e = build_provider("small", &custom, None, &none).err().unwrap();
        assert!(e.to_string().contains("MY_KEY"), "{e}");
        let with_key = |k: &str| (k == "MY_KEY").then(|| "sk-very-secret".to_string());
        let p = build_provider("small", &custom, None, &with_key).unwrap();
        assert_eq!(p.name(), "openai:gpt-4o-mini");
    }

    #[test]
    fn bind_falls_back_to_the_transcript_and_says_how_to_configure() {
        let dir = std::env::temp_dir().join(format!("aivm-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("triage.ail");
        let none = |_: &str| None;
        let e = bind_models(&Config::default(), &["large"], Some(&program), &none).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("no provider for model \"large\"") && msg.contains("--model large="),
            "{msg}"
        );
        assert!(msg.contains("triage.script.json"), "{msg}");

        std::fs::write(
            dir.join("triage.script.json"),
            r#"{"turns": [{"content": "hi"}]}"#,
        )
        .unwrap();
        let b = bind_models(
            &Config::default(),
            &["large", "small", "large"],
            Some(&program),
            &none,
        )
        .unwrap();
        assert_eq!(b.len(), 2);
        assert!(
            Arc::ptr_eq(&b["large"].provider, &b["small"].provider),
            "one shared transcript"
        );
        assert_eq!(b["small"].model, "small");
        assert_eq!(
            b["small"].cost(&Usage {
                input_tokens: 5,
                output_tokens: 5
            }),
            Some(0.0)
        );
        assert!(!format!("{:?}", b["small"]).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn find_config_prefers_the_program_folder() {
        let root = std::env::temp_dir().join(format!("aivm-find-config-{}", std::process::id()));
        let (prog_dir, cwd) = (root.join("prog"), root.join("cwd"));
        std::fs::create_dir_all(&prog_dir).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        let program = prog_dir.join("x.ail");
        assert_eq!(find_config(&program, &cwd), None);
        std::fs::write(cwd.join(CONFIG_FILE), "").unwrap();
        assert_eq!(find_config(&program, &cwd), Some(cwd.join(CONFIG_FILE)));
        std::fs::write(prog_dir.join(CONFIG_FILE), "").unwrap();
        assert_eq!(
            find_config(&program, &cwd),
            Some(prog_dir.join(CONFIG_FILE))
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
