//! Fuzz target: arbitrary bytes through the decoder and, when they decode, the verifier and
//! the assembly round trip. Neither may panic; an accepted file must re-encode to itself.
#![no_main]

use aivm_vm::format::{assemble, decode, disassemble, encode, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        assert_eq!(encode(&m), data, "the encoding is canonical");
        let _ = verify(&m);
        let back = assemble(&disassemble(&m)).expect("disassembly always assembles");
        assert_eq!(encode(&back), data, "assembly round-trips");
    }
});
