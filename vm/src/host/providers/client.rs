//! `mcp-client:HINT`: a model answered by the MCP client that called a served tool. The
//! binding made from configuration reaches nobody; `aivm serve` replaces it, for each call,
//! with a provider that sends `sampling/createMessage` to that call's client. Anywhere else
//! (`aivm run`) a call fails with a `ModelError` saying so.

use crate::host::llm::{BoxFuture, ModelRequest, ModelResponse, Provider, ProviderError};

/// The name every `mcp-client` provider's name starts with (`mcp-client:HINT`).
pub const PREFIX: &str = "mcp-client:";

/// Whether a provider's name says it is the client's model (to be attached per call).
pub fn is_client_model(provider_name: &str) -> bool {
    provider_name.starts_with(PREFIX)
}

/// An `mcp-client` binding with no client attached.
#[derive(Debug)]
pub struct Unattached {
    name: String,
}

impl Unattached {
    pub fn new(name: String) -> Unattached {
        Unattached { name }
    }
}

impl Provider for Unattached {
    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a>(
        &'a self,
        _req: &'a ModelRequest,
    ) -> BoxFuture<'a, Result<ModelResponse, ProviderError>> {
        let message =
            "only the MCP client of a tool served by `aivm serve --mcp` answers this model"
                .to_string();
        Box::pin(async move { Err(ProviderError::Config(message)) })
    }
}
