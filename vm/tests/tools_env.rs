//! `env.get`: granted variables only, by exact name; an unset granted variable is null.

use aivm_vm::host::tools::{EnvGrants, ToolSetupError};
use aivm_vm::{HostData, HostValue};

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn only_granted_variables_are_read_and_unset_ones_are_null() {
    // One test function: it alone sets variables in this process.
    std::env::set_var("AIVM_ENV_TOKEN", "s3cret");
    std::env::set_var("AIVM_ENV_OTHER", "other");
    let g = EnvGrants::only(&names(&["AIVM_ENV_TOKEN", "AIVM_ENV_UNSET"])).unwrap();
    assert_eq!(g.get("AIVM_ENV_TOKEN").unwrap(), HostValue::str("s3cret"));
    assert_eq!(g.get("AIVM_ENV_UNSET").unwrap(), HostValue::null());
    for other in [
        "AIVM_ENV_OTHER",
        "aivm_env_token",
        "AIVM_ENV_TOKEN ",
        "PATH",
        "HOME",
    ] {
        let e = g.get(other).expect_err("not granted");
        assert_eq!(e.kind, "PolicyDenied", "{other}");
        let Some(HostData::Record(fields)) = e.payload.as_deref().map(|p| &p.data) else {
            panic!("a payload")
        };
        assert!(fields.contains(&("rule".to_string(), HostValue::str("grant:env"))));
        assert!(
            !e.message.contains("other"),
            "the value never shows: {}",
            e.message
        );
        assert!(e.message.contains("--allow-env="), "{}", e.message);
    }
    for bad in ["", "A=B", "A\0B"] {
        assert_eq!(
            g.get(bad).expect_err("bad name").kind,
            "ValueError",
            "{bad:?}"
        );
    }
    assert_eq!(
        EnvGrants::none().get("AIVM_ENV_TOKEN").unwrap_err().kind,
        "PolicyDenied"
    );
    assert_eq!(
        EnvGrants::all().get("AIVM_ENV_OTHER").unwrap(),
        HostValue::str("other")
    );
    assert!(matches!(
        EnvGrants::only(&names(&["OK", "BAD=NAME"])),
        Err(ToolSetupError::EnvName { .. })
    ));
}
