//! Encoder/decoder round trips: hand-built and random valid modules survive
//! encode -> decode -> encode unchanged, and decoding is the exact inverse of encoding.

mod common;

use aivm_vm::format::{decode, encode, verify, Instr, Opcode, OPCODES};
use common::{every_opcode_module, random_valid_module, same, Rng};
use proptest::prelude::*;

#[test]
fn every_opcode_round_trips() {
    let m = every_opcode_module();
    let used: std::collections::HashSet<Opcode> =
        m.functions[0].code.iter().map(Instr::opcode).collect();
    assert_eq!(
        used.len(),
        OPCODES.len(),
        "the sample must use every opcode"
    );
    verify(&m).expect("the every-opcode sample is valid");
    let bytes = encode(&m);
    let back = decode(&bytes).expect("decodes");
    assert_eq!(back, m);
    assert_eq!(encode(&back), bytes);
}

#[test]
fn nan_payloads_and_negative_zero_are_bit_exact() {
    let mut m = every_opcode_module();
    for bits in [
        0x7ff8_0000_0000_0001u64,
        0xfff8_dead_beef_0000,
        0x8000_0000_0000_0000,
    ] {
        m.constants
            .push(aivm_vm::format::Constant::Float(f64::from_bits(bits)));
    }
    let back = decode(&encode(&m)).expect("decodes");
    for (a, b) in m.constants.iter().zip(&back.constants) {
        if let (aivm_vm::format::Constant::Float(a), aivm_vm::format::Constant::Float(b)) = (a, b) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn encode_decode_encode_is_identity(seed in any::<u64>()) {
        let m = random_valid_module(&mut Rng(seed));
        if let Err(e) = verify(&m) {
            return Err(TestCaseError::fail(format!("generated module rejected: {e}")));
        }
        let bytes = encode(&m);
        let back = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(same(&back, &m));
        prop_assert_eq!(encode(&back), bytes);
    }
}
