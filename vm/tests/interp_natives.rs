//! The pure natives, called through `CallNative` with host-built arguments; and determinism
//! of printing (map insertion order, float forms).

mod interp_support;

use aivm_vm::format::Instr::*;
use aivm_vm::{HostData, HostValue, Key, Limits, Step, Vm, VmError};
use interp_support::*;

/// Calls native `name` on `args`; returns the result's text (as `str` shows it) or the error.
fn call(name: &str, args: Vec<HostValue>) -> Result<String, String> {
    let n = args.len() as u16;
    let mut b = Builder::new();
    let native = b.native(name);
    let text = b.native("core.str");
    let f = b.func(
        "f",
        n as usize,
        n + 2,
        vec![
            CallNative {
                dst: n,
                native,
                args: rr(0, n),
            },
            CallNative {
                dst: n + 1,
                native: text,
                args: rr(n, 1),
            },
            Return { src: n + 1 },
        ],
    );
    let mut vm = Vm::new(&b.build(), Limits::default()).unwrap();
    vm.start(f, args).unwrap();
    match vm.run() {
        Ok(Step::Done { value, .. }) => Ok(value.as_str().unwrap().to_string()),
        Ok(other) => panic!("{other:?}"),
        Err(VmError::Uncaught { kind, message, .. }) => Err(format!("{kind}: {message}")),
        Err(e) => panic!("{e}"),
    }
}

fn s(x: &str) -> HostValue {
    HostValue::str(x)
}
fn i(x: i64) -> HostValue {
    HostValue::int(x)
}
fn f(x: f64) -> HostValue {
    HostValue::new(HostData::Float(x))
}
fn list(items: Vec<HostValue>) -> HostValue {
    HostValue::new(HostData::List(items))
}

#[test]
fn core_natives() {
    assert_eq!(call("core.len", vec![s("héllo")]).unwrap(), "5");
    assert_eq!(call("core.len", vec![list(vec![i(1), i(2)])]).unwrap(), "2");
    assert_eq!(call("core.int", vec![f(-2.7)]).unwrap(), "-2");
    assert_eq!(call("core.int", vec![s(" 42 ")]).unwrap(), "42");
    assert_eq!(
        call("core.int", vec![s("4x")]).unwrap_err(),
        "ValueError: int: \"4x\" is not an integer"
    );
    assert_eq!(
        call("core.int", vec![f(f64::NAN)]).unwrap_err(),
        "ValueError: int: cannot convert NaN to an int"
    );
    assert_eq!(call("core.float", vec![i(3)]).unwrap(), "3.0");
    assert_eq!(call("core.type_of", vec![f(1.0)]).unwrap(), "float");
    assert_eq!(
        call("core.error", vec![s("KeyError"), s("nope")]).unwrap(),
        "KeyError: nope"
    );
    assert_eq!(
        call(
            "core.str",
            vec![list(vec![s("a"), f(0.1), HostValue::null()])]
        )
        .unwrap(),
        r#"["a", 0.1, null]"#
    );
    assert_eq!(
        call(
            "core.label_of",
            vec![s("x").labelled(aivm_vm::LabelInfo::untrusted())]
        )
        .unwrap(),
        "untrusted"
    );
}

#[test]
fn list_natives() {
    let nums = || list(vec![i(3), i(1), i(2), i(1)]);
    assert_eq!(call("list.sort", vec![nums()]).unwrap(), "[1, 1, 2, 3]");
    assert_eq!(
        call("list.sort", vec![list(vec![f(2.5), i(1), f(-1.0)])]).unwrap(),
        "[-1.0, 1, 2.5]"
    );
    assert_eq!(
        call("list.sort", vec![list(vec![s("b"), s("B"), s("a")])]).unwrap(),
        r#"["B", "a", "b"]"#
    );
    assert_eq!(
        call("list.sort", vec![list(vec![s("b"), i(1)])]).unwrap_err(),
        "TypeError: list.sort needs a list of all numbers or all strings"
    );
    assert_eq!(call("list.reverse", vec![nums()]).unwrap(), "[1, 2, 1, 3]");
    assert_eq!(call("list.pop", vec![nums()]).unwrap(), "1");
    assert_eq!(
        call("list.pop", vec![list(vec![])]).unwrap_err(),
        "IndexError: pop from an empty list"
    );
    assert_eq!(call("list.remove", vec![nums(), i(0)]).unwrap(), "3");
    assert_eq!(
        call("list.remove", vec![nums(), i(4)]).unwrap_err(),
        "IndexError: index 4 is out of range for a list of length 4"
    );
    assert_eq!(call("list.contains", vec![nums(), f(2.0)]).unwrap(), "true");
    assert_eq!(call("list.index_of", vec![nums(), i(1)]).unwrap(), "1");
    assert_eq!(call("list.index_of", vec![nums(), i(9)]).unwrap(), "-1");
    assert_eq!(
        call("list.join", vec![list(vec![s("a"), i(1)]), s(", ")]).unwrap(),
        "a, 1"
    );
    assert_eq!(
        call("list.concat", vec![nums(), list(vec![s("x")])]).unwrap(),
        r#"[3, 1, 2, 1, "x"]"#
    );
    assert_eq!(call("list.push", vec![nums(), i(1)]).unwrap(), "null");
}

#[test]
fn sort_is_stable_and_handles_a_large_list() {
    let big: Vec<HostValue> = (0..100_000).map(|k| i((k * 7919) % 100_003)).collect();
    let out = call("list.sort", vec![list(big)]).unwrap();
    let nums: Vec<i64> = out[1..out.len() - 1]
        .split(", ")
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(nums.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(nums.len(), 100_000);
}

#[test]
fn map_natives_keep_insertion_order() {
    let m = || {
        HostValue::new(HostData::Map(vec![
            (Key::Str("z".into()), i(1)),
            (Key::Str("a".into()), i(2)),
            (Key::Int(5), i(3)),
        ]))
    };
    assert_eq!(
        call("core.str", vec![m()]).unwrap(),
        r#"{"z": 1, "a": 2, 5: 3}"#
    );
    assert_eq!(call("map.keys", vec![m()]).unwrap(), r#"["z", "a", 5]"#);
    assert_eq!(call("map.values", vec![m()]).unwrap(), "[1, 2, 3]");
    assert_eq!(call("map.has", vec![m(), i(5)]).unwrap(), "true");
    assert_eq!(call("map.get", vec![m(), s("q"), i(0)]).unwrap(), "0");
    assert_eq!(call("map.remove", vec![m(), s("z")]).unwrap(), "1");
}

#[test]
fn string_natives() {
    assert_eq!(
        call("string.split", vec![s("a,b,,c"), s(",")]).unwrap(),
        r#"["a", "b", "", "c"]"#
    );
    assert_eq!(call("string.upper", vec![s("héllo")]).unwrap(), "HÉLLO");
    assert_eq!(call("string.trim", vec![s("  x \n")]).unwrap(), "x");
    assert_eq!(call("string.find", vec![s("héllo"), s("l")]).unwrap(), "2");
    assert_eq!(call("string.find", vec![s("abc"), s("z")]).unwrap(), "-1");
    assert_eq!(
        call("string.replace", vec![s("aXbX"), s("X"), s("--")]).unwrap(),
        "a--b--"
    );
    assert_eq!(
        call("string.chars", vec![s("hé")]).unwrap(),
        r#"["h", "é"]"#
    );
    assert_eq!(
        call("string.repeat", vec![s("ab"), i(3)]).unwrap(),
        "ababab"
    );
    assert_eq!(call("string.parse_int", vec![s("12")]).unwrap(), "12");
    assert_eq!(call("string.parse_int", vec![s("1.5")]).unwrap(), "null");
    assert_eq!(call("string.parse_float", vec![s("1.5")]).unwrap(), "1.5");
    assert_eq!(
        call("string.starts_with", vec![s("hello"), s("he")]).unwrap(),
        "true"
    );
}

#[test]
fn math_natives() {
    assert_eq!(call("math.abs", vec![i(-3)]).unwrap(), "3");
    assert_eq!(
        call("math.abs", vec![i(i64::MIN)]).unwrap_err(),
        "Overflow: integer overflow in abs"
    );
    assert_eq!(call("math.min", vec![i(3), f(2.5)]).unwrap(), "2.5");
    assert_eq!(call("math.max", vec![i(3), f(2.5)]).unwrap(), "3");
    assert_eq!(call("math.floor", vec![f(-1.5)]).unwrap(), "-2");
    assert_eq!(call("math.ceil", vec![f(1.2)]).unwrap(), "2");
    assert_eq!(call("math.round", vec![f(2.5)]).unwrap(), "3");
    assert_eq!(call("math.round", vec![f(-2.5)]).unwrap(), "-3");
    assert_eq!(call("math.sqrt", vec![i(16)]).unwrap(), "4.0");
    assert_eq!(call("math.pow", vec![i(2), i(10)]).unwrap(), "1024.0");
    assert_eq!(call("math.log", vec![i(0)]).unwrap(), "-inf");
}

#[test]
fn json_natives() {
    assert_eq!(
        call(
            "json.parse",
            vec![s(r#"{"b": [1, 2.5, "x", null, true], "a": {}}"#)]
        )
        .unwrap(),
        r#"{"b": [1, 2.5, "x", null, true], "a": {}}"#
    );
    let err = call("json.parse", vec![s("{\"a\": }")]).unwrap_err();
    assert!(
        err.starts_with("JsonError: invalid JSON at line 1 column 7"),
        "{err}"
    );
    // A key named twice is an error at any depth, never its last value (THREATS.md row 15).
    for doc in [r#"{"to": "a", "to": "b"}"#, r#"[{"x": {"k": 1, "k": 1}}]"#] {
        let err = call("json.parse", vec![s(doc)]).unwrap_err();
        assert!(err.contains("appears twice"), "{doc}: {err}");
    }
    assert_eq!(
        call("json.parse", vec![s(r#"[{"k": 1}, {"k": 2}]"#)]).unwrap(),
        r#"[{"k": 1}, {"k": 2}]"#,
        "the same key in two objects is fine"
    );
    let m = HostValue::new(HostData::Map(vec![(
        Key::Str("k".into()),
        list(vec![i(1), f(1.0), s("q\"")]),
    )]));
    assert_eq!(
        call("json.stringify", vec![m]).unwrap(),
        r#"{"k":[1,1.0,"q\""]}"#
    );
    assert!(call("json.stringify", vec![f(f64::NAN)])
        .unwrap_err()
        .starts_with("JsonError"));
}

#[test]
fn float_printing_is_shortest_round_trip() {
    let cases = [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (1e16, "1e16"),
        (1.5e-7, "1.5e-7"),
        (-0.0, "-0.0"),
        (f64::INFINITY, "inf"),
    ];
    for (x, want) in cases {
        assert_eq!(call("core.str", vec![f(x)]).unwrap(), want);
    }
}
