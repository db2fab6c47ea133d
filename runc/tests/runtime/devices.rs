//! `linux.devices` and the device cgroup: a listed node is created (fifos too), but only
//! `linux.resources.devices` grants access to it (as runc and crun).

use serde_json::json;

use super::common::*;
use crate::require_root;

/// /dev/kmsg (c 1:11): on every host, not among the devices every container may use.
fn kmsg() -> serde_json::Value {
    json!({"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o644,
           "uid": 0, "gid": 0})
}

/// Adds CAP_SYSLOG (reading /dev/kmsg needs it when dmesg is restricted).
fn with_syslog(c: &mut Ctr) {
    for set in ["bounding", "effective", "permitted"] {
        c.config["process"]["capabilities"][set]
            .as_array_mut()
            .expect("caps")
            .push(json!("CAP_SYSLOG"));
    }
}

/// A container that opens /dev/kmsg for reading (CAP_SYSLOG so only the device cgroup
/// can say no), with `rules` as its device cgroup rules.
fn open_kmsg(name: &str, rules: serde_json::Value) -> std::process::Output {
    let mut c = Ctr::new(name, &["sh", "-c", "dd if=/dev/kmsg of=/dev/null count=0"]);
    c.config["linux"]["devices"] = json!([kmsg()]);
    c.config["linux"]["resources"] = json!({"devices": rules});
    with_syslog(&mut c);
    c.run()
}

#[test]
fn a_listed_device_is_denied_unless_the_cgroup_rules_allow_it() {
    require_root!();
    let deny_all = json!([{"allow": false, "access": "rwm"}]);
    let o = open_kmsg("devdeny", deny_all.clone());
    assert!(
        !o.status.success(),
        "listed but denied device opened: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Operation not permitted"),
        "{}",
        text(&o)
    );
    // The same node with a rule for it opens: the EPERM above came from the cgroup.
    let mut allow = deny_all;
    allow
        .as_array_mut()
        .expect("rules")
        .push(json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}));
    let o = open_kmsg("devallow", allow);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn without_rules_only_the_default_devices_are_usable() {
    require_root!();
    // No linux.resources at all: the default whitelist, never the parent's access.
    let mut c = Ctr::new(
        "devnorules",
        &[
            "sh",
            "-c",
            "dd if=/dev/kmsg of=/dev/null count=0 && echo kmsg; echo hi > /dev/null && echo null",
        ],
    );
    c.config["linux"]["devices"] = json!([kmsg()]);
    with_syslog(&mut c);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o), "null\n", "{}", text(&o));
}

#[test]
fn a_fifo_in_linux_devices_is_created() {
    require_root!();
    let mut c = Ctr::new(
        "devfifo",
        &[
            "sh",
            "-c",
            "test -p /dev/myfifo && stat -c '%a %u:%g' /dev/myfifo",
        ],
    );
    c.config["linux"]["devices"] = json!([{"path": "/dev/myfifo", "type": "p", "major": 0,
        "minor": 0, "fileMode": 0o640, "uid": 1000, "gid": 1000}]);
    c.config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o), "640 1000:1000\n");
}
