//! Fuzz target: what reaches the host from outside — a server's event stream, a journal to
//! replay, a scripted transcript, an `aivm.toml` — must give a value or a typed error, never
//! a panic; and a stream decodes the same whether it arrives whole or in two pieces.
#![no_main]

use std::path::Path;

use aivm_vm::host::config::Config;
use aivm_vm::host::journal;
use aivm_vm::host::providers::scripted::ScriptedProvider;
use aivm_vm::host::providers::sse::SseDecoder;
use libfuzzer_sys::fuzz_target;

fn events(pieces: &[&[u8]]) -> Option<Vec<(Option<String>, String)>> {
    let mut d = SseDecoder::new(1 << 16);
    let mut out = Vec::new();
    for p in pieces {
        out.extend(d.push(p).ok()?);
    }
    out.extend(d.finish().ok()?);
    Some(out.into_iter().map(|e| (e.event, e.data)).collect())
}

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| b as usize) % (data.len() + 1);
    assert_eq!(events(&[data]), events(&[&data[..cut], &data[cut..]]));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = journal::parse(text);
        let _ = ScriptedProvider::from_json(text, "fuzz.script.json");
        let _ = Config::parse(text, Path::new("aivm.toml"));
    }
});
