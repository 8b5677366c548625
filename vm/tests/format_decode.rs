//! The decoder's rejections: one test per kind of malformed input, each checking that the
//! message names the section and the byte offset of the fault.

use aivm_vm::format::{
    decode, encode, Constant, DecodeErrorKind, Function, Instr, Manifest, ModelSlot, Module,
    TypeDesc,
};

fn sample() -> Module {
    Module {
        strings: vec!["main".into(), "héllo".into()],
        constants: vec![Constant::Int(1), Constant::Str(1)],
        types: vec![
            TypeDesc::Any,
            TypeDesc::Named {
                name: 0,
                ty: 0,
                doc: None,
            },
        ],
        natives: vec![],
        functions: vec![Function {
            name: 0,
            params: vec![],
            ret: 0,
            nregs: 1,
            ncaps: 0,
            code: vec![
                Instr::LoadTrue { dst: 0 },
                Instr::JumpIf { cond: 0, target: 2 },
                Instr::Return { src: 0 },
            ],
            lines: vec![],
            file: None,
            doc: None,
        }],
        exports: vec![],
        entry: Some(0),
        files: vec![],
        models: vec![ModelSlot {
            name: 0,
            logical: 1,
        }],
        manifest: Manifest {
            read: vec![1],
            declassify: true,
            ..Manifest::default()
        },
    }
}

/// The sections of an encoding: (id, offset of the section header, payload start, payload end).
fn sections(bytes: &[u8]) -> Vec<(u8, usize, usize, usize)> {
    let mut out = vec![];
    let mut at = 8;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((bytes[at], at, at + 5, at + 5 + len));
        at += 5 + len;
    }
    out
}

fn section(bytes: &[u8], id: u8) -> (usize, usize, usize) {
    let (_, h, s, e) = sections(bytes).into_iter().find(|s| s.0 == id).unwrap();
    (h, s, e)
}

/// Decodes, expecting an error whose message contains every one of `parts`.
fn rejects(bytes: &[u8], parts: &[&str]) -> DecodeErrorKind {
    let err = decode(bytes).expect_err("must be rejected");
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
    err.kind
}

fn set_len(bytes: &mut [u8], header: usize, len: usize) {
    bytes[header + 1..header + 5].copy_from_slice(&(len as u32).to_le_bytes());
}

#[test]
fn sample_decodes() {
    let m = sample();
    assert_eq!(decode(&encode(&m)).unwrap(), m);
}

#[test]
fn bad_magic() {
    let mut b = encode(&sample());
    b[0] = b'X';
    let k = rejects(
        &b,
        &["bad magic in header at offset 0x0", "found 58 49 56 4d"],
    );
    assert!(matches!(k, DecodeErrorKind::BadMagic { .. }));
    rejects(
        b"AI",
        &["truncated container at offset 0x0: expected 4 bytes, found 2"],
    );
    rejects(b"", &["truncated"]);
}

#[test]
fn version_mismatch_and_flags() {
    let mut b = encode(&sample());
    b[4] = 1;
    rejects(
        &b,
        &[
            "unsupported version in header at offset 0x4",
            "this VM reads format version 3, the file is version 1",
        ],
    );
    let mut b = encode(&sample());
    b[6] = 1;
    rejects(&b, &["unknown flags in header at offset 0x6"]);
}

#[test]
fn truncated_everywhere() {
    let b = encode(&sample());
    // Every proper prefix is rejected, never accepted or panicking.
    for n in 0..b.len() {
        assert!(decode(&b[..n]).is_err(), "prefix of {n} bytes accepted");
    }
    let (h, s, _) = section(&b, 11);
    let cut = &b[..b.len() - 1];
    rejects(
        cut,
        &[&format!(
            "truncated section `manifest` at offset {h:#x}: expected 29 bytes, found 28"
        )],
    );
    assert_eq!(s, h + 5);
}

#[test]
fn truncated_inside_a_function() {
    let mut b = encode(&sample());
    let (h, s, e) = section(&b, 5);
    // Claim more code than the function holds: code length is after name, params, ret,
    // nregs, ncaps, file and doc (4 + 4 + 4 + 2 + 2 + 1 + 1 bytes) and the count.
    let code_len_at = s + 4 + 4 + 4 + 4 + 2 + 2 + 1 + 1;
    b[code_len_at] = 200;
    let remaining = e - code_len_at - 4;
    rejects(
        &b,
        &[
            "truncated section `functions` (function #0)",
            &format!("at offset {code_len_at:#x}: expected 200 bytes, found {remaining}"),
        ],
    );
    let _ = h;
}

#[test]
fn oversized_section() {
    let b = encode(&sample());
    let (h, s, e) = section(&b, 1);
    let mut v = b[..e].to_vec();
    v.push(0);
    v.extend_from_slice(&b[e..]);
    set_len(&mut v, h, e - s + 1);
    rejects(
        &v,
        &[
            &format!("oversized section `strings` at offset {h:#x}"),
            "declares 23 bytes",
            "after 22",
        ],
    );
}

#[test]
fn section_longer_than_file() {
    let mut b = encode(&sample());
    let (h, _, _) = section(&b, 8);
    set_len(&mut b, h, 1000);
    rejects(
        &b,
        &[&format!(
            "truncated section `files` at offset {h:#x}: expected 1000 bytes"
        )],
    );
}

#[test]
fn trailing_bytes() {
    let mut b = encode(&sample());
    let n = b.len();
    b.extend_from_slice(&[0xee, 1, 2]);
    rejects(
        &b,
        &[&format!(
            "trailing bytes after container at offset {n:#x}: 3 bytes"
        )],
    );
}

#[test]
fn unknown_reserved_duplicate_and_misplaced_sections() {
    let b = encode(&sample());
    let mut v = b.clone();
    v[8] = 0x42;
    rejects(
        &v,
        &["unknown section id in container at offset 0x8: no section has id 66"],
    );

    let mut v = b.clone();
    let n = v.len();
    v.extend_from_slice(&[10, 0, 0, 0, 0]);
    rejects(
        &v,
        &[
            &format!("reserved section id in container at offset {n:#x}"),
            "id 10",
        ],
    );

    let (h, _, e) = section(&b, 11);
    let mut v = b.clone();
    v.extend_from_slice(&b[h..e]);
    rejects(
        &v,
        &[&format!(
            "duplicate section `manifest` at offset {:#x}",
            b.len()
        )],
    );

    let (h, _, e) = section(&b, 3);
    let mut v = b.clone();
    v.extend_from_slice(&b[h..e]);
    rejects(
        &v,
        &["misplaced section `types`", "must come before `manifest`"],
    );

    // Swap the strings and constants sections.
    let (h1, _, e1) = section(&b, 1);
    let (_, _, e2) = section(&b, 2);
    let mut v = b[..h1].to_vec();
    v.extend_from_slice(&b[e1..e2]);
    v.extend_from_slice(&b[h1..e1]);
    v.extend_from_slice(&b[e2..]);
    rejects(
        &v,
        &[
            "missing section in container at offset 0x8",
            "expected section `strings`, found `constants`",
        ],
    );

    // Drop the models section, then the files section too.
    let (h, _, _) = section(&b, 9);
    rejects(&b[..h], &["the input ends where section `models` must be"]);
    let (h, _, _) = section(&b, 8);
    let mut v = b[..h].to_vec();
    v.extend_from_slice(&b[section(&b, 9).0..]);
    rejects(&v, &["expected section `files`, found `models`"]);
}

#[test]
fn models_section_lengths_are_checked() {
    let b = encode(&sample());
    let (h, s, e) = section(&b, 9);
    assert_eq!(e - s, 4 + 8, "a count and one (name, logical) pair");
    // A count of two slots with the bytes of one.
    let mut v = b.clone();
    v[s] = 2;
    rejects(
        &v,
        &[&format!(
            "truncated section `models` at offset {s:#x}: expected 16 bytes, found 8"
        )],
    );
    // A declared length longer than the slots.
    let mut v = b.clone();
    set_len(&mut v, h, 13);
    v.push(0);
    rejects(
        &v,
        &[
            "oversized section `models`",
            "declares 13 bytes but its contents end after 12",
        ],
    );
}

#[test]
fn bad_utf8() {
    let mut b = encode(&sample());
    let (_, s, _) = section(&b, 1);
    // String #1 "héllo": count(4) + len(4) + "main"(4) + len(4), then h, then é's first byte.
    let e_at = s + 4 + 4 + 4 + 4 + 1;
    b[e_at] = 0xff;
    rejects(
        &b,
        &[&format!(
            "bad UTF-8 in section `strings` at offset {e_at:#x}: string #1"
        )],
    );
}

#[test]
fn unknown_opcode() {
    let mut b = encode(&sample());
    let (_, s, _) = section(&b, 5);
    let code_at = s + 4 + 4 + 4 + 4 + 2 + 2 + 1 + 1 + 4;
    assert_eq!(b[code_at], 0x03, "LoadTrue starts the code");
    b[code_at] = 0xff;
    rejects(
        &b,
        &[&format!("unknown opcode in section `functions` (function #0) at offset {code_at:#x}: no instruction has opcode 0xff")],
    );
}

#[test]
fn jump_into_the_middle_of_an_instruction() {
    let mut b = encode(&sample());
    let (_, s, _) = section(&b, 5);
    let code_at = s + 4 + 4 + 4 + 4 + 2 + 2 + 1 + 1 + 4;
    // JumpIf is at byte 3 of the code: opcode, cond (2), then the target (4).
    let target_at = code_at + 3 + 1 + 2;
    assert_eq!(b[target_at], 10, "the target is the byte offset of Return");
    b[target_at] = 4;
    rejects(
        &b,
        &[&format!("bad jump target in section `functions` (function #0) at offset {target_at:#x}: jump to byte 0x4")],
    );
}

#[test]
fn unknown_tags() {
    let b = encode(&sample());
    let (_, s, _) = section(&b, 2);
    let mut v = b.clone();
    v[s + 4] = 7;
    rejects(
        &v,
        &[&format!(
            "unknown tag in section `constants` at offset {:#x}: 7 is not a valid constant tag",
            s + 4
        )],
    );

    let (_, s, _) = section(&b, 3);
    let mut v = b.clone();
    v[s + 4] = 99;
    rejects(
        &v,
        &[
            "unknown tag in section `types`",
            "99 is not a valid type tag",
        ],
    );

    let (_, s, _) = section(&b, 7);
    let mut v = b.clone();
    v[s] = 2;
    rejects(
        &v,
        &[&format!(
            "unknown tag in section `entry` at offset {s:#x}: 2 is not a valid entry tag"
        )],
    );
}

#[test]
fn lying_counts_do_not_allocate() {
    let b = encode(&sample());
    for id in 1..=8u8 {
        let (_, s, _) = section(&b, id);
        if id == 7 {
            continue;
        }
        let mut v = b.clone();
        v[s..s + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let msg = decode(&v).unwrap_err().to_string();
        assert!(msg.starts_with("truncated section"), "{msg}");
        assert!(msg.contains(&format!("at offset {s:#x}")), "{msg}");
    }
}

#[test]
fn manifest_flags_and_readers_tags_are_checked() {
    let mut m = sample();
    m.constants.push(Constant::Readers(Some(vec![0, 1])));
    m.constants.push(Constant::Readers(None));
    m.manifest.endorse = true;
    m.manifest.tools = vec![0];
    let b = encode(&m);
    assert_eq!(
        decode(&b).unwrap(),
        m,
        "readers constants and the manifest round-trip"
    );

    // The flags byte is the manifest's last; an unknown bit is rejected, not ignored.
    let (_, _, e) = section(&b, 11);
    assert_eq!(b[e - 1], 3, "declassify and endorse bits");
    let mut v = b.clone();
    v[e - 1] = 0x83;
    let k = rejects(
        &v,
        &[
            "section `manifest`",
            "131 is not a valid manifest flags tag",
        ],
    );
    assert!(matches!(k, DecodeErrorKind::UnknownTag { .. }));

    // A readers constant's optional-list tag: 2 means nothing.
    let (_, s, _) = section(&b, 2);
    let mut v = b.clone();
    // Constants: count, Int (1 + 8), Str (1 + 4), then Readers: tag 4 and its list tag.
    let at = s + 4 + 9 + 5 + 1;
    assert_eq!(v[at - 1], 4);
    v[at] = 2;
    rejects(&v, &["section `constants`", "2 is not a valid readers tag"]);

    // A manifest shorter than its fixed part is truncated, however its length says so.
    let (h, _, _) = section(&b, 11);
    let mut v = b[..h].to_vec();
    v.extend_from_slice(&[11, 3, 0, 0, 0, 0, 0, 0]);
    rejects(
        &v,
        &["truncated section `manifest`", "expected 25 bytes, found 3"],
    );
}
