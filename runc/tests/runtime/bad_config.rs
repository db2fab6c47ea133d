//! Bad config.json: exit 1, an error naming the field, and nothing left behind.

use serde_json::json;

use super::common::*;
use crate::require_root;

fn expect_rejected(name: &str, edit: impl FnOnce(&mut Ctr), field: &str) {
    let mut c = Ctr::new(name, &["true"]);
    edit(&mut c);
    let o = c.create();
    assert_create_failed(&c, &o, field);
}

#[test]
fn unknown_namespace() {
    require_root!();
    expect_rejected(
        "badns",
        |c| c.config["linux"]["namespaces"][2] = json!({"type": "bogus"}),
        "linux.namespaces[2].type",
    );
}

#[test]
fn bad_mappings() {
    require_root!();
    expect_rejected(
        "badmap",
        |c| {
            c.config["linux"]["namespaces"]
                .as_array_mut()
                .expect("a")
                .push(json!({"type": "user"}));
            c.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 1000, "size": 0}]);
            c.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        },
        "linux.uidMappings[0].size",
    );
    expect_rejected(
        "nomap",
        |c| {
            c.config["linux"]["namespaces"]
                .as_array_mut()
                .expect("a")
                .push(json!({"type": "user"}));
        },
        "linux.uidMappings",
    );
}

#[test]
fn missing_rootfs() {
    require_root!();
    expect_rejected(
        "norootfs",
        |c| c.config["root"]["path"] = json!("nope"),
        "root.path",
    );
}

#[test]
fn invalid_seccomp_action() {
    require_root!();
    expect_rejected(
        "badseccomp",
        |c| c.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        "linux.seccomp",
    );
}

#[test]
fn bad_namespace_path_and_hostname() {
    require_root!();
    expect_rejected(
        "badnspath",
        |c| {
            c.config["linux"]["namespaces"][1] =
                json!({"type": "network", "path": "/proc/nope/ns/net"})
        },
        "linux.namespaces[1].path",
    );
    expect_rejected(
        "badhost",
        |c| c.config["linux"]["namespaces"] = json!([{"type": "mount"}]),
        "hostname",
    );
}

#[test]
fn bad_cgroup_resource() {
    require_root!();
    expect_rejected(
        "badres",
        |c| c.config["linux"]["resources"] = json!({"memory": {"limit": "lots"}}),
        "linux.resources.memory.limit",
    );
}
