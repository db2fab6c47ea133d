//! `features`: what this runtime supports, in the runtime-spec features JSON format.

use anyhow::Result;
use serde_json::json;

/// Prints the features document.
pub fn run() -> Result<i32> {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let namespaces: Vec<&str> = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ]
    .into_iter()
    .filter(|n| {
        let proc = if *n == "mount" {
            "mnt"
        } else if *n == "network" {
            "net"
        } else {
            n
        };
        std::path::Path::new("/proc/self/ns").join(proc).exists()
    })
    .collect();
    let v = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "idmap", "noatime", "nodev", "nodiratime", "noexec", "nosuid", "private", "rbind",
            "relatime", "remount", "ridmap", "ro", "rprivate", "rshared", "rslave", "rw", "shared", "slave", "strictatime",
            "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": namespaces,
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}},
            "selinux": {"enabled": true}
        },
        "annotations": {"org.crust.runc.version": env!("CARGO_PKG_VERSION")}
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
