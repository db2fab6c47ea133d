//! Process settings: capabilities, rlimits, user/groups, env, cwd, umask, oom_score_adj.

use serde_json::json;

use super::common::*;
use crate::require_root;

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn capabilities_five_sets() {
    require_root!();
    let mut c = Ctr::new("caps", &["cat", "/proc/self/status"]);
    let kill_only = json!(["CAP_KILL"]);
    c.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": kill_only, "permitted": kill_only,
        "inheritable": kill_only, "ambient": kill_only
    });
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    // CAP_KILL = bit 5 (0x20), CAP_CHOWN = bit 0.
    assert_eq!(status_field(&out, "CapEff:"), "0000000000000020", "{out}");
    assert_eq!(status_field(&out, "CapPrm:"), "0000000000000020");
    assert_eq!(status_field(&out, "CapInh:"), "0000000000000020");
    assert_eq!(status_field(&out, "CapAmb:"), "0000000000000020");
    assert_eq!(status_field(&out, "CapBnd:"), "0000000000000021");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1");
}

#[test]
fn rlimits_are_applied() {
    require_root!();
    let mut c = Ctr::new("rlimit", &["sh", "-c", "ulimit -n; ulimit -Hn"]);
    c.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o), "123\n456\n");
}

#[test]
fn user_groups_env_cwd_umask() {
    require_root!();
    let mut c = Ctr::new("user", &["sh", "-c", "id; pwd; echo $FOO $HOME; umask"]);
    c.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001], "umask": 63});
    c.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
    c.config["process"]["cwd"] = json!("/tmp");
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("uid=1000(user) gid=1001 groups=2000,2001"),
        "{out}"
    );
    assert!(out.contains("\n/tmp\n"), "{out}");
    assert!(out.contains("bar /tmp\n"), "{out}");
    assert!(out.ends_with("0077\n"), "{out}");
}

#[test]
fn non_root_user_has_no_effective_caps_unless_ambient() {
    require_root!();
    let mut c = Ctr::new("usercaps", &["cat", "/proc/self/status"]);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.config["process"]["capabilities"]["ambient"] = json!([]);
    c.config["process"]["capabilities"]["inheritable"] = json!([]);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(status_field(&stdout(&o), "CapEff:"), "0000000000000000");
}

#[test]
fn oom_score_adj_positive_and_clamped_negative() {
    require_root!();
    let mut c = Ctr::new("oomadj", &["cat", "/proc/self/oom_score_adj"]);
    c.config["process"]["oomScoreAdj"] = json!(500);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o).trim(), "500");
    // A negative value may be refused here (no CAP_SYS_RESOURCE): the container still runs.
    let mut c = Ctr::new("oomneg", &["cat", "/proc/self/oom_score_adj"]);
    c.config["process"]["oomScoreAdj"] = json!(-500);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let v: i32 = stdout(&o).trim().parse().expect("number");
    assert!(v == -500 || v >= 0, "{v}");
}

#[test]
fn missing_executable_fails_create() {
    require_root!();
    let c = Ctr::new("noexe", &["/bin/does-not-exist"]);
    let o = c.create();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let c2 = Ctr::new("noexe2", &["nosuchcmd"]);
    let o = c2.create();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("executable file not found"),
        "{}",
        text(&o)
    );
    assert!(!c2.state_dir_exists());
    assert!(!c2.cgroup_exists());
}

#[test]
fn no_signal_is_ignored_or_blocked_in_the_container() {
    require_root!();
    let c = Ctr::new("sigs", &["cat", "/proc/self/status"]);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    assert_eq!(status_field(&out, "SigIgn:"), "0000000000000000", "{out}");
    assert_eq!(status_field(&out, "SigBlk:"), "0000000000000000", "{out}");
    let c = Ctr::new("sigs-exec", &["sleep", "1000"]);
    c.run_detached();
    let o = c.exec(&["cat", "/proc/self/status"]);
    assert_eq!(
        status_field(&stdout(&o), "SigIgn:"),
        "0000000000000000",
        "{}",
        text(&o)
    );
}
