//! What a program embedding the host (such as `aivm serve`) may take over: performing some
//! inline effects itself (a served call's `io.ask` goes to the MCP client, its progress to a
//! notification) and stopping a run between steps (the call was cancelled).

use crate::host_value::{HostError, HostValue};
use crate::interp::EffectRequest;

/// An embedder's part in a run. Effects reach it only after the gate allowed them, and its
/// outcomes are journalled like the host's own.
pub trait Embedder {
    /// Performs the inline effect `req` in the host's place, or `None` to leave it to the
    /// host. Called on the VM's thread; it may block (a question waiting for its answer).
    fn perform(&mut self, req: &EffectRequest) -> Option<Result<HostValue, HostError>>;

    /// Whether the run must stop; checked between the VM's steps. The run then ends with
    /// [`super::RunError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}
