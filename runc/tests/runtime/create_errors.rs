//! Everything fallible in the init happens before it tells `create` it is ready: a bad cwd,
//! user, rlimit, capability or seccomp profile fails `create` (exit 1, the reason on stderr,
//! nothing left behind), as runc, instead of a container that starts and exits 1.

use std::os::unix::process::CommandExt;

use serde_json::json;

use super::common::*;
use crate::require_root;

/// `create` must fail naming `what`, leaving no state dir and no cgroup.
fn create_fails(c: &Ctr, what: &str) {
    assert_create_failed(c, &c.create(), what);
}

#[test]
fn missing_cwd_fails_create() {
    require_root!();
    let mut c = Ctr::new("errcwd", &["true"]);
    c.config["process"]["cwd"] = json!("/does/not/exist");
    create_fails(&c, "/does/not/exist");
}

#[test]
fn rlimit_the_kernel_refuses_fails_create() {
    require_root!();
    // Even root cannot raise RLIMIT_NOFILE above fs.nr_open.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .expect("nr_open")
        .trim()
        .parse()
        .expect("number");
    let mut c = Ctr::new("errrlimit", &["true"]);
    c.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": nr_open + 1, "hard": nr_open + 1}]);
    create_fails(&c, "RLIMIT_NOFILE");
}

#[test]
fn unmapped_user_fails_create() {
    require_root!();
    // In a user namespace that maps only root, uid 1000 does not exist.
    let mut c = Ctr::new("erruser", &["true"]);
    c.add_user_ns(300000, 1);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 0});
    create_fails(&c, "set user 1000:0");
}

#[test]
fn capability_the_runtime_lacks_fails_create() {
    require_root!();
    let mut c = Ctr::new("errcaps", &["true"]);
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set]
            .as_array_mut()
            .expect("caps")
            .push(json!("CAP_SYS_TIME"));
    }
    c.write_config();
    // crust-runc runs without CAP_SYS_TIME (dropped from the bounding set before exec, so
    // root's permitted set lacks it), as root lacks CAP_SYS_RESOURCE on some hosts.
    let mut cmd = c.cmd(&[
        "create",
        "--bundle",
        c.bundle().to_str().expect("utf8"),
        &c.id,
    ]);
    /// CAP_SYS_TIME (linux/capability.h).
    const CAP_SYS_TIME: libc::c_ulong = 25;
    // SAFETY: the closure only calls prctl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_TIME, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = output(cmd, c.tmp.path());
    assert_create_failed(
        &c,
        &o,
        "process.capabilities.permitted: CAP_SYS_TIME not held",
    );
}

#[test]
fn seccomp_profile_errors_fail_create() {
    require_root!();
    let mut c = Ctr::new("errseccomp", &["true"]);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]
    });
    create_fails(&c, "linux.seccomp.syscalls[0].action");
}

#[test]
fn a_created_container_has_its_final_credentials() {
    require_root!();
    // The user and capabilities are applied at create: the waiting init already runs as
    // the container's user with its capability sets, only the execve is left.
    let mut c = Ctr::new("errcreds", &["sleep", "1000"]);
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
    });
    let o = c.create();
    assert!(o.status.success(), "{}", text(&o));
    let pid = c.state()["pid"].as_i64().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), "1000 1000 1000 1000", "{status}");
    assert_eq!(field("CapEff:"), "0000000000000020", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000000020", "{status}");
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    c.ok(&["start", &c.id]);
}
