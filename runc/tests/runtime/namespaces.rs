//! Each namespace, joining by path, hostname, user namespace mappings, sysctl.

use serde_json::json;

use super::common::*;
use crate::require_root;

fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .expect("readlink")
        .display()
        .to_string()
}

#[test]
fn every_namespace_is_new() {
    require_root!();
    let names = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let script = names
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .collect::<Vec<_>>()
        .join("; ");
    let c = Ctr::new(
        "ns",
        &["sh", "-c", &format!("{script}; echo pid=$$; hostname")],
    );
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in names.iter().enumerate() {
        assert!(lines[i].starts_with(&format!("{n}:[")), "{out}");
        assert_ne!(lines[i], host_ns(n), "{n} namespace is the host's");
    }
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.ends_with("crust-test\n"), "{out}");
}

#[test]
fn without_a_namespace_the_host_one_is_kept() {
    require_root!();
    let mut c = Ctr::new("nsshared", &["readlink", "/proc/self/ns/net"]);
    c.config["linux"]["namespaces"] = json!([{"type": "mount"}]);
    c.config["hostname"] = json!(null);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o).trim(), host_ns("net"));
}

#[test]
fn join_namespace_by_path() {
    require_root!();
    let a = Ctr::new("nsjoin-a", &["sleep", "1000"]);
    a.run_detached();
    let pid = a.state()["pid"].as_i64().expect("pid");
    let a_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("ns");
    let mut b = Ctr::new("nsjoin-b", &["readlink", "/proc/self/ns/net"]);
    b.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "uts"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")}
    ]);
    let o = b.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o).trim(), a_net.display().to_string());
}

#[test]
fn user_namespace_mappings() {
    require_root!();
    let mut c = Ctr::new(
        "userns",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        ],
    );
    c.add_user_ns(100000, 65536);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "100000", "65536", "0"],
        "{out}"
    );
}

#[test]
fn namespaced_sysctl_is_set() {
    require_root!();
    let mut c = Ctr::new("sysctl", &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("host");
    let want = if host.trim() == "1" { "0" } else { "1" };
    c.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want});
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o).trim(), want);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("host"),
        host
    );
}

#[test]
fn exec_joins_a_user_namespace_container() {
    require_root!();
    let mut c = Ctr::new("usernsexec", &["sleep", "1000"]);
    c.add_user_ns(200000, 65536);
    c.run_detached();
    let o = c.exec(&["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert!(o.status.success(), "{}", text(&o));
    let words: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    assert_eq!(words, ["0", "0", "200000", "65536"], "{}", text(&o));
    let pid = c.state()["pid"].as_i64().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("200000")),
        "{status}"
    );
}

#[test]
fn time_namespace_with_offsets() {
    require_root!();
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: kernel without time namespaces");
        return;
    }
    let mut c = Ctr::new(
        "timens",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/time; cat /proc/self/timens_offsets",
        ],
    );
    c.config["linux"]["namespaces"]
        .as_array_mut()
        .expect("a")
        .push(json!({"type": "time"}));
    c.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}});
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.starts_with("time:["), "{out}");
    assert!(!out.starts_with(&host_ns("time")), "{out}");
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
}

#[test]
fn without_a_mount_namespace_the_runtimes_is_inherited() {
    require_root!();
    // runtime-spec: a namespace type not listed is the runtime's. The container is then
    // chrooted into its rootfs; its mounts are made there and removed by delete.
    let mut c = Ctr::new(
        "nomntns",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; cat /marker; ls /proc/self/status",
        ],
    );
    c.config["linux"]["namespaces"] = json!([{"type": "pid"}]);
    c.config["hostname"] = json!(null);
    std::fs::write(c.rootfs().join("marker"), "in the rootfs\n").expect("marker");
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        stdout(&o),
        format!("{}\nin the rootfs\n/proc/self/status\n", host_ns("mnt"))
    );
    let rootfs = c.rootfs().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&format!("{rootfs}/")),
        "mounts left under the rootfs: {mounts}"
    );
    // exec enters the same root.
    let mut c = Ctr::new("nomntns-exec", &["sleep", "1000"]);
    c.config["linux"]["namespaces"] = json!([{"type": "pid"}]);
    c.config["hostname"] = json!(null);
    std::fs::write(c.rootfs().join("marker"), "exec in the rootfs\n").expect("marker");
    c.run_detached();
    let o = c.exec(&["cat", "/marker"]);
    assert_eq!(stdout(&o), "exec in the rootfs\n", "{}", text(&o));
    // Settings that would reach the runtime's mounts outside the rootfs are refused.
    for (name, section, key, value) in [
        ("nomntns-ro", "root", "readonly", json!(true)),
        (
            "nomntns-prop",
            "linux",
            "rootfsPropagation",
            json!("shared"),
        ),
    ] {
        let mut c = Ctr::new(name, &["true"]);
        c.config["linux"]["namespaces"] = json!([{"type": "pid"}]);
        c.config["hostname"] = json!(null);
        c.config[section][key] = value;
        let o = c.create();
        assert_eq!(o.status.code(), Some(1), "{key}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("needs a mount namespace"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn rootfs_propagation_unbindable() {
    require_root!();
    let mut c = Ctr::new(
        "unbindable",
        &[
            "sh",
            "-c",
            "grep -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' /proc/self/mountinfo",
        ],
    );
    c.config["linux"]["rootfsPropagation"] = json!("unbindable");
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).contains(" unbindable "), "{}", text(&o));
}
