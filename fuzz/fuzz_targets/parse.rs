//! Fuzz target: the parser (lexer, grammar, string interpolation, error recovery) and the
//! diagnostic renderer must not panic on any UTF-8 input.
#![no_main]

use aivm_compiler::diagnostic::Diagnostics;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    if let Err(items) = aivm_compiler::parse::parse_module(0, src) {
        let mut diags = Diagnostics::default();
        diags.sources.add("fuzz.ail", src);
        diags.items = items;
        let _ = aivm_compiler::render::render(&diags, false);
    }
});
