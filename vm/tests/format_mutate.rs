//! Robustness of decode + verify on hostile bytes: more than 10,000 mutated encodings (bit
//! flips, truncations, insertions, deletions, splices, lying lengths) and random byte strings,
//! from fixed seeds. None may panic, and whatever the decoder accepts must re-encode to exactly
//! the same bytes (the encoding is canonical), also after a trip through assembly text.

mod common;

use aivm_vm::format::{assemble, decode, disassemble, encode, verify};
use common::{every_opcode_module, random_valid_module, Rng};

fn check(bytes: &[u8]) -> bool {
    match decode(bytes) {
        Ok(m) => {
            assert_eq!(
                encode(&m),
                bytes,
                "decoder accepted a non-canonical encoding"
            );
            let _ = verify(&m);
            let back = assemble(&disassemble(&m)).expect("disassembly always assembles");
            assert_eq!(
                encode(&back),
                bytes,
                "assembly round trip changed the bytes"
            );
            true
        }
        Err(e) => {
            // Every message names a place.
            assert!(e.to_string().contains("at offset 0x"), "{e}");
            false
        }
    }
}

fn mutate(rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        let len = b.len().max(1);
        match rng.below(7) {
            0 => {
                let i = rng.below(len);
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(8);
                }
            }
            1 => b.truncate(rng.below(len)),
            2 => {
                let i = rng.below(b.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(i..i, bytes);
            }
            3 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(8)).min(b.len());
                if i < j {
                    b.drain(i..j);
                }
            }
            4 => {
                // Splice a piece of another module in.
                let i = rng.below(b.len() + 1);
                let s = rng.below(donor.len());
                let e = (s + 1 + rng.below(32)).min(donor.len());
                b.splice(i..i, donor[s..e].iter().copied());
            }
            5 => {
                // Overwrite four bytes with an interesting u32 (a length or index that lies).
                let vals = [0u32, 1, 2, 0x7f, 0xff, 0xffff, 0x7fff_ffff, u32::MAX];
                let v = vals[rng.below(vals.len())].to_le_bytes();
                let i = rng.below(len);
                for (k, x) in v.iter().enumerate() {
                    if let Some(y) = b.get_mut(i + k) {
                        *y = *x;
                    }
                }
            }
            _ => {
                let i = rng.below(len);
                if let Some(x) = b.get_mut(i) {
                    *x = rng.next() as u8;
                }
            }
        }
    }
    b
}

#[test]
fn mutated_and_random_bytes_never_panic() {
    let mut rng = Rng(0x00a1_5eed);
    let mut seeds = vec![encode(&every_opcode_module())];
    for s in 0..20 {
        seeds.push(encode(&random_valid_module(&mut Rng(1000 + s))));
    }
    let mut total = 0;
    let mut accepted = 0;
    for k in 0..12_000 {
        let base = &seeds[k % seeds.len()];
        let donor = &seeds[(k * 7 + 3) % seeds.len()];
        accepted += check(&mutate(&mut rng, base, donor)) as usize;
        total += 1;
    }
    for _ in 0..2_000 {
        let n = rng.below(64);
        let mut b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if rng.chance(50) && b.len() >= 8 {
            // A valid header, so the section parser is reached.
            b[..8].copy_from_slice(b"AIVM\x01\x00\x00\x00");
        }
        accepted += check(&b) as usize;
        total += 1;
    }
    assert!(total >= 14_000);
    // Some mutations (e.g. of an immediate or a string byte) keep the bytes well-formed.
    assert!(
        accepted > 100,
        "only {accepted} accepted: the mutator breaks everything"
    );
}
