//! Many runs of one program at once: each input gets its own VM and host, at most
//! `concurrency` of them run together on the current tokio runtime, and each outcome is
//! handed back as its run ends. Suspended runs cost their heaps and nothing else.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::budget::Spent;
use super::{Host, RunError};
use crate::host_value::HostValue;
use crate::interp::Vm;

/// How one of many runs ended.
#[derive(Debug)]
pub struct ManyRun {
    /// The input's position, from 0.
    pub index: usize,
    /// `main`'s value, or why the run stopped.
    pub result: Result<HostValue, RunError>,
    /// What the run printed.
    pub output: String,
    pub spent: Spent,
}

/// Runs the `main` of `template`'s module once per input (passed as its one argument; a `main`
/// without parameters gets none), at most `concurrency` at a time, each in a fresh VM with the
/// template's limits and JIT mode ([`Vm::fresh`]: the module's tables are derived once). `make_host(index, stdout)` builds
/// each run's host around the writer that captures its output; `on_done` gets each outcome
/// as its run ends (not in input order).
pub async fn run_many(
    template: &Vm,
    inputs: impl IntoIterator<Item = HostValue>,
    concurrency: usize,
    mut make_host: impl FnMut(usize, Box<dyn Write>) -> Host,
    mut on_done: impl FnMut(ManyRun),
) {
    let mut inputs = inputs.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut start = |index: usize, input: HostValue| {
        let out = Capture::default();
        let host = make_host(index, Box::new(out.clone()));
        one(template, index, input, host, out)
    };
    for (i, input) in inputs.by_ref().take(concurrency.max(1)) {
        running.push(start(i, input));
    }
    while let Some(done) = running.next().await {
        on_done(done);
        if let Some((i, input)) = inputs.next() {
            running.push(start(i, input));
        }
    }
}

async fn one(
    template: &Vm,
    index: usize,
    input: HostValue,
    mut host: Host,
    out: Capture,
) -> ManyRun {
    let result = async {
        let mut vm = template.fresh();
        let module = vm.module().clone();
        let entry = module
            .entry
            .ok_or_else(|| crate::VmError::InvalidModule("the module has no main".into()))?;
        let takes_input = module
            .functions
            .get(entry as usize)
            .is_some_and(|f| !f.params.is_empty());
        vm.start(entry, if takes_input { vec![input] } else { vec![] })?;
        host.run(&mut vm).await
    }
    .await;
    let output = String::from_utf8_lossy(&out.0.borrow()).into_owned();
    ManyRun {
        index,
        result,
        output,
        spent: host.spent(),
    }
}

/// A writer whose bytes stay readable after the host that wrote them is done.
#[derive(Clone, Default)]
struct Capture(Rc<RefCell<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
