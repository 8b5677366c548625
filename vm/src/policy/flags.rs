//! The permission flags of `aivm run` as plain data: the CLI maps its parsed arguments onto
//! [`GrantFlags`], and the policy builder reads them like a `[policy]` table.

/// One run's permission flags. For each `Option<Vec<String>>`: `None` = the flag was not
/// given; `Some(vec![])` = given without a value, meaning everything of its kind
/// (`--allow-net`); otherwise the values, already split at commas (`--allow-net=a.com,b.com`
/// gives two). An empty value (`--allow-read=`) is an error, never "everything".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantFlags {
    /// `--allow-read[=PATH,...]`: files and folders (and everything beneath) to read.
    pub allow_read: Option<Vec<String>>,
    pub deny_read: Option<Vec<String>>,
    /// `--allow-write[=PATH,...]`.
    pub allow_write: Option<Vec<String>>,
    pub deny_write: Option<Vec<String>>,
    /// `--allow-net[=HOST[:PORT],...]`.
    pub allow_net: Option<Vec<String>>,
    pub deny_net: Option<Vec<String>>,
    /// `--allow-run[=CMD,...]`: commands by exact name.
    pub allow_run: Option<Vec<String>>,
    pub deny_run: Option<Vec<String>>,
    /// `--allow-env[=VAR,...]`.
    pub allow_env: Option<Vec<String>>,
    pub deny_env: Option<Vec<String>>,
    /// `--allow-tool[=ID|GLOB,...]`.
    pub allow_tool: Option<Vec<String>>,
    pub deny_tool: Option<Vec<String>>,
    /// `--allow-model[=NAME,...]`: logical model names.
    pub allow_model: Option<Vec<String>>,
    pub deny_model: Option<Vec<String>>,
    /// `--ask=ID|GLOB,...`: granted tools that still ask a person first.
    pub ask: Vec<String>,
    /// `-A` / `--allow-all`: every kind granted (every `--deny-*` still applies).
    pub allow_all: bool,
    /// `--no-prompt`: never ask a person; an ask is a denial.
    pub no_prompt: bool,
    /// `--yes`: approve the asks that are auto-approvable (never a label violation unless
    /// its rule says `auto_approve = true`).
    pub yes: bool,
}
