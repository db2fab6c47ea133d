//! Hooks: order, state on stdin, failure semantics.

use serde_json::json;

use super::common::*;
use crate::require_root;

fn hook(path: &str, script: &str) -> serde_json::Value {
    json!({"path": path, "args": ["sh", "-c", script]})
}

#[test]
fn all_hooks_run_in_order_with_state() {
    require_root!();
    let mut c = Ctr::new("hooks", &["sh", "-c", "echo process >> /hooks.log"]);
    let log = c.rootfs().join("hooks.log");
    let l = log.display().to_string();
    let host = |name: &str| {
        hook(
            "/bin/sh",
            &format!("read s; echo {name} >> {l}; echo \"$s\" > {l}.{name}"),
        )
    };
    c.config["hooks"] = json!({
        "prestart": [host("prestart")],
        "createRuntime": [host("createRuntime")],
        "createContainer": [host("createContainer")],
        // startContainer runs inside the container: its paths are the container's.
        "startContainer": [hook("/bin/sh", "echo startContainer >> /hooks.log")],
        "poststart": [host("poststart")],
        "poststop": [host("poststop")]
    });
    c.config["annotations"] = json!({"org.test": "yes"});
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let got = std::fs::read_to_string(&log).expect("log");
    let order: Vec<&str> = got.lines().collect();
    // poststart runs after start returns, concurrently with the process.
    let mut expected = vec![
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ];
    assert_eq!(&order[..4], &expected[..], "{got}");
    assert!(
        order.contains(&"process") && order.contains(&"poststart"),
        "{got}"
    );
    assert_eq!(order.last(), Some(&"poststop"), "{got}");
    expected.clear();
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{l}.createRuntime")).expect("state"),
    )
    .expect("json");
    assert_eq!(st["id"], c.id.as_str());
    assert!(st["pid"].as_i64().expect("pid") > 0);
    assert_eq!(st["annotations"]["org.test"], "yes");
    assert_eq!(st["bundle"], c.bundle().display().to_string());
    let status = |hook: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(format!("{l}.{hook}")).expect("state");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["status"].clone()
    };
    // runtime-spec 1.0 (and runtime-tools' hooks_stdin): prestart hooks see "created".
    assert_eq!(status("prestart"), "created");
    assert_eq!(status("createRuntime"), "creating");
    assert_eq!(status("poststart"), "running");
    assert_eq!(status("poststop"), "stopped");
}

#[test]
fn failing_prestart_hook_fails_create_and_cleans_up() {
    require_root!();
    let mut c = Ctr::new("hookfail", &["sleep", "100"]);
    c.config["hooks"] = json!({"prestart": [hook("/bin/sh", "echo broken >&2; exit 2")]});
    let o = c.create();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("prestart") && err.contains("broken"), "{err}");
    assert!(!c.state_dir_exists());
    assert!(!c.cgroup_exists());
}

#[test]
fn hook_timeout_fails_create() {
    require_root!();
    let mut c = Ctr::new("hooktimeout", &["sleep", "100"]);
    c.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]});
    let t = std::time::Instant::now();
    let o = c.create();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("timeout"),
        "{}",
        text(&o)
    );
    assert!(!c.state_dir_exists());
}

#[test]
fn failing_poststop_hook_is_only_a_warning() {
    require_root!();
    let mut c = Ctr::new("poststopfail", &["true"]);
    c.config["hooks"] = json!({"poststop": [hook("/bin/sh", "exit 1")]});
    let o = c.run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!c.state_dir_exists());
}
