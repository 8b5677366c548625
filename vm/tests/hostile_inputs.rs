//! Whatever a server, a journal, a transcript or a configuration file contains, the host's
//! readers return a value or a typed error: never a panic. And a server's stream means the
//! same however the network cuts it into pieces.

use std::path::Path;

use aivm_vm::host::config::Config;
use aivm_vm::host::journal;
use aivm_vm::host::providers::scripted::ScriptedProvider;
use aivm_vm::host::providers::sse::{SseDecoder, SseEvent};
use proptest::prelude::*;

/// Bytes that look like an event stream often enough to reach every branch: field names,
/// separators, line ends of all three kinds, and anything else.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: error".to_vec()),
        Just(b": comment".to_vec()),
        Just(b"id: 7".to_vec()),
        Just(b"retry: 10".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"{\"choices\":[]}".to_vec()),
        Just(b"[DONE]".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(pieces, 0..40).prop_map(|p| p.concat())
}

/// Every event of `bytes` fed in pieces cut at `cuts` (positions modulo the length).
fn decode(bytes: &[u8], cuts: &[usize], max: usize) -> Result<Vec<SseEvent>, String> {
    let mut d = SseDecoder::new(max);
    let mut out = Vec::new();
    let mut at = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain([bytes.len()]) {
        if c < at {
            continue;
        }
        out.extend(d.push(&bytes[at..c]).map_err(|e| e.to_string())?);
        at = c;
    }
    out.extend(d.finish().map_err(|e| e.to_string())?);
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_stream_means_the_same_however_it_is_cut(
        bytes in sse_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = decode(&bytes, &[], 1 << 20);
        let pieces = decode(&bytes, &cuts, 1 << 20);
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn an_event_over_the_cap_is_an_error_not_a_hang(bytes in sse_bytes()) {
        // A tiny cap: either the events fit, or the decoder says they do not.
        if let Ok(events) = decode(&bytes, &[], 16) {
            for e in events {
                prop_assert!(e.data.len() <= 16 + 1, "{:?}", e);
            }
        }
    }

    #[test]
    fn journals_transcripts_and_configs_never_panic(text in any::<String>()) {
        let _ = journal::parse(&text);
        let _ = ScriptedProvider::from_json(&text, "fuzz.script.json");
        let _ = Config::parse(&text, Path::new("aivm.toml"));
    }

    #[test]
    fn near_miss_journals_and_transcripts_never_panic(
        keys in proptest::collection::vec(
            prop_oneof![
                Just("event"), Just("run_start"), Just("effect"), Just("run_end"), Just("task"),
                Just("seq"), Just("args"), Just("result"), Just("llm"), Just("turns"),
                Just("when"), Just("json"), Just("tool_calls"), Just("error"), Just("usage"),
                Just("version"), Just("models"),
            ],
            0..6,
        ),
        values in proptest::collection::vec(
            prop_oneof![
                Just("null".to_string()), Just("1".to_string()), Just("-1".to_string()),
                Just("\"x\"".to_string()), Just("[]".to_string()), Just("{}".to_string()),
                Just("[{}]".to_string()), Just("1e400".to_string()), Just("true".to_string()),
            ],
            0..6,
        ),
    ) {
        let fields: Vec<String> = keys
            .iter()
            .zip(values.iter().cycle())
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        let object = format!("{{{}}}", fields.join(", "));
        let _ = journal::parse(&format!("{object}\n{object}\n"));
        let _ = ScriptedProvider::from_json(&format!("{{\"turns\": [{object}]}}"), "fuzz.script.json");
    }
}
