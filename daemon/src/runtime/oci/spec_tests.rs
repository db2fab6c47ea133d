//! Table-driven tests of the OCI spec builder: each row edits a baseline input (a plain
//! container in a pod with its own namespaces, an image with a passwd and group file) and
//! checks the parts of `config.json` that the edit decides, or the error it is refused with.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::runtime::error::RuntimeError;
use crate::runtime::types::{DeviceSpec, MountSpec, PodSpec, PodState, Propagation, Seccomp};

/// Everything a [`SpecInput`] borrows, owned.
struct Case {
    pod: PodRecord,
    spec: ContainerSpec,
    image: ImageConfig,
    layers: Vec<PathBuf>,
    pid_ns: Option<PathBuf>,
    min_oom: i64,
    volumes: Vec<ImageVolume>,
    unified_cgroups: bool,
}

impl Case {
    fn new(layer: &Path) -> Case {
        Case {
            pod: PodRecord {
                version: 1,
                id: "pod1".into(),
                spec: PodSpec {
                    name: "web".into(),
                    uid: "u1".into(),
                    namespace: "default".into(),
                    ..PodSpec::default()
                },
                state: PodState::Ready,
                created_at: 0,
                ips: vec![],
                netns: Some("/run/crust/ns/pod1/net".into()),
                ipcns: Some("/run/crust/ns/pod1/ipc".into()),
                utsns: Some("/run/crust/ns/pod1/uts".into()),
                dir: "/run/crust/pods/pod1".into(),
                cgroup_parent: String::new(),
                shim_address: None,
                pidns: None,
                pod_init_pid: 0,
                cgroup_driver: Default::default(),
                userns: None,
            },
            spec: ContainerSpec {
                name: "app".into(),
                ..ContainerSpec::default()
            },
            image: ImageConfig {
                env: vec!["PATH=/image/bin".into(), "A=image".into()],
                entrypoint: vec!["/entry".into()],
                cmd: vec!["default-arg".into()],
                ..ImageConfig::default()
            },
            layers: vec![layer.to_path_buf()],
            pid_ns: None,
            min_oom: -1000,
            volumes: Vec::new(),
            unified_cgroups: false,
        }
    }

    fn build(&self) -> Result<Value> {
        let user_files = UserFiles::read(&self.layers)?;
        build(&SpecInput {
            id: "c1",
            pod: &self.pod,
            spec: &self.spec,
            image: &self.image,
            image_name: "busybox:1",
            user_files: &user_files,
            cgroup_path: "/crust/pod1/c1",
            pid_ns: self.pid_ns.clone(),
            min_oom_score_adj: self.min_oom,
            volumes: &self.volumes,
            unified_cgroups: self.unified_cgroups,
        })
    }
}

/// An image layer with `etc/passwd` and `etc/group`.
fn layer() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("etc/group"),
        "root:x:0:\nalice:x:1000:\nwheel:x:10:alice\nstaff:x:50:alice,bob\n",
    )
    .unwrap();
    d
}

type Edit = fn(&mut Case);
type Check = fn(&Value);

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn mount<'a>(v: &'a Value, dst: &str) -> Option<&'a Value> {
    v["mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["destination"] == dst))
}

fn ns_types(v: &Value) -> Vec<(String, Option<String>)> {
    v["linux"]["namespaces"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    (
                        n["type"].as_str().unwrap_or_default().to_string(),
                        n["path"].as_str().map(String::from),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn builds_as_each_row_says() {
    let l = layer();
    let rows: Vec<(&str, Edit, Check)> = vec![
        (
            "baseline",
            |_| {},
            |v| {
                assert_eq!(v["ociVersion"], "1.1.0");
                assert_eq!(strs(&v["process"]["args"]), ["/entry", "default-arg"]);
                assert_eq!(v["process"]["cwd"], "/");
                assert_eq!(
                    v["process"]["user"],
                    json!({"uid": 0, "gid": 0, "additionalGids": [0]})
                );
                assert_eq!(v["root"], json!({"path": "rootfs", "readonly": false}));
                assert_eq!(v["linux"]["cgroupsPath"], "/crust/pod1/c1");
                assert_eq!(v["process"]["terminal"], false);
                let env = strs(&v["process"]["env"]);
                // No hostname asked: the node's, not the pod name (issue 13).
                let node = nix::unistd::gethostname().unwrap().into_string().unwrap();
                assert_eq!(
                    env,
                    [
                        format!("HOSTNAME={node}").as_str(),
                        "PATH=/image/bin",
                        "A=image"
                    ]
                );
                let caps = strs(&v["process"]["capabilities"]["bounding"]);
                let mut want: Vec<&str> = crate::runtime::oci::caps::DEFAULT_CAPS.to_vec();
                want.sort();
                let mut got: Vec<&str> = caps.iter().map(String::as_str).collect();
                got.sort();
                assert_eq!(got, want);
                assert_eq!(strs(&v["linux"]["maskedPaths"]), MASKED_PATHS);
                assert_eq!(strs(&v["linux"]["readonlyPaths"]), READONLY_PATHS);
                assert!(v["linux"].get("seccomp").is_none());
                let a = &v["annotations"];
                assert_eq!(a["io.kubernetes.cri.sandbox-id"], "pod1");
                assert_eq!(a["io.kubernetes.cri.container-type"], "container");
                assert_eq!(a["io.kubernetes.cri.container-name"], "app");
                assert_eq!(a["io.kubernetes.cri.sandbox-name"], "web");
                assert_eq!(a["io.kubernetes.cri.sandbox-namespace"], "default");
                assert_eq!(a["io.kubernetes.cri.sandbox-uid"], "u1");
                assert_eq!(a["io.kubernetes.cri.image-name"], "busybox:1");
                assert_eq!(
                    ns_types(v),
                    [
                        ("mount".to_string(), None),
                        ("network".into(), Some("/run/crust/ns/pod1/net".into())),
                        ("uts".into(), Some("/run/crust/ns/pod1/uts".into())),
                        ("ipc".into(), Some("/run/crust/ns/pod1/ipc".into())),
                        ("pid".into(), None),
                    ]
                );
                let hosts = mount(v, "/etc/hosts").unwrap();
                assert_eq!(hosts["source"], "/run/crust/pods/pod1/hosts");
                assert_eq!(strs(&hosts["options"]), ["rbind", "rprivate", "rw"]);
                assert_eq!(
                    mount(v, "/dev/shm").unwrap()["source"],
                    "/run/crust/pods/pod1/shm"
                );
                assert!(v["linux"].get("rootfsPropagation").is_none());
                assert_eq!(
                    v["linux"]["resources"]["devices"],
                    json!([{"allow": false, "access": "rwm"}])
                );
            },
        ),
        (
            "command replaces entrypoint and cmd",
            |c| {
                c.spec.command = vec!["/bin/sh".into()];
                c.spec.args = vec!["-c".into(), "x".into()];
            },
            |v| assert_eq!(strs(&v["process"]["args"]), ["/bin/sh", "-c", "x"]),
        ),
        (
            "args alone replace cmd",
            |c| c.spec.args = vec!["other".into()],
            |v| assert_eq!(strs(&v["process"]["args"]), ["/entry", "other"]),
        ),
        (
            "request env overrides the image's key by key",
            |c| {
                c.spec.envs = vec![("A".into(), "req".into()), ("HOSTNAME".into(), "h".into())];
            },
            |v| {
                assert_eq!(
                    strs(&v["process"]["env"]),
                    ["PATH=/image/bin", "A=req", "HOSTNAME=h"]
                )
            },
        ),
        (
            "a default PATH when neither sets one",
            |c| c.image.env.clear(),
            |v| {
                let node = nix::unistd::gethostname().unwrap().into_string().unwrap();
                assert_eq!(
                    strs(&v["process"]["env"]),
                    [
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        format!("HOSTNAME={node}").as_str()
                    ]
                );
            },
        ),
        (
            "the pod's hostname",
            |c| c.pod.spec.hostname = "h1".into(),
            |v| assert!(strs(&v["process"]["env"]).contains(&"HOSTNAME=h1".to_string())),
        ),
        (
            "working dir: request over image",
            |c| {
                c.image.working_dir = "/img".into();
                c.spec.working_dir = "/req".into();
            },
            |v| assert_eq!(v["process"]["cwd"], "/req"),
        ),
        (
            "working dir: image's",
            |c| c.image.working_dir = "/img".into(),
            |v| assert_eq!(v["process"]["cwd"], "/img"),
        ),
        (
            "runAsUser names its passwd entry's groups",
            |c| c.spec.security.run_as_user = Some(1000),
            |v| {
                assert_eq!(
                    v["process"]["user"],
                    json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 50]})
                )
            },
        ),
        (
            "runAsUsername and runAsGroup and supplemental groups",
            |c| {
                c.spec.security.run_as_username = "bob".into();
                c.spec.security.run_as_group = Some(7);
                c.spec.security.supplemental_groups = vec![50, 99];
            },
            |v| {
                assert_eq!(
                    v["process"]["user"],
                    json!({"uid": 1001, "gid": 7, "additionalGids": [7, 50, 99]})
                )
            },
        ),
        (
            "image user name:group",
            |c| c.image.user = "alice:staff".into(),
            |v| {
                assert_eq!(
                    v["process"]["user"],
                    json!({"uid": 1000, "gid": 50, "additionalGids": [10, 50]})
                )
            },
        ),
        (
            "image user uid not in passwd",
            |c| c.image.user = "4242".into(),
            |v| {
                assert_eq!(
                    v["process"]["user"],
                    json!({"uid": 4242, "gid": 0, "additionalGids": [0]})
                )
            },
        ),
        (
            "capabilities added and dropped",
            |c| {
                c.spec.security.add_capabilities = vec!["SYS_ADMIN".into()];
                c.spec.security.drop_capabilities = vec!["CAP_KILL".into()];
            },
            |v| {
                let caps = strs(&v["process"]["capabilities"]["effective"]);
                assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
                assert!(!caps.contains(&"CAP_KILL".to_string()));
            },
        ),
        (
            "read-only rootfs makes the pod files read-only too",
            |c| c.spec.security.readonly_rootfs = true,
            |v| {
                assert_eq!(v["root"]["readonly"], true);
                assert_eq!(
                    strs(&mount(v, "/etc/resolv.conf").unwrap()["options"]),
                    ["rbind", "rprivate", "ro"]
                );
            },
        ),
        (
            "a user mount over /etc/hosts replaces the pod's",
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/etc/hosts".into(),
                    host_path: "/etc/hosts".into(),
                    readonly: true,
                    propagation: Propagation::Private,
                    ..Default::default()
                }];
            },
            |v| {
                let m = mount(v, "/etc/hosts").unwrap();
                assert_eq!(m["source"], "/etc/hosts");
                assert_eq!(strs(&m["options"]), ["rbind", "rprivate", "ro"]);
            },
        ),
        (
            "mount propagation sets the rootfs propagation",
            |c| {
                c.spec.mounts = vec![
                    MountSpec {
                        container_path: "/a".into(),
                        host_path: "/tmp".into(),
                        readonly: false,
                        propagation: Propagation::HostToContainer,
                        ..Default::default()
                    },
                    MountSpec {
                        container_path: "/b".into(),
                        host_path: "/tmp".into(),
                        readonly: false,
                        propagation: Propagation::Bidirectional,
                        ..Default::default()
                    },
                ];
            },
            |v| {
                assert_eq!(
                    strs(&mount(v, "/a").unwrap()["options"]),
                    ["rbind", "rslave", "rw"]
                );
                assert_eq!(
                    strs(&mount(v, "/b").unwrap()["options"]),
                    ["rbind", "rshared", "rw"]
                );
                assert_eq!(v["linux"]["rootfsPropagation"], "rshared");
            },
        ),
        (
            "a recursively read-only mount gets rro beside ro",
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/rro".into(),
                    host_path: "/tmp".into(),
                    readonly: true,
                    propagation: Propagation::Private,
                    recursive_read_only: true,
                    ..Default::default()
                }];
            },
            |v| {
                assert_eq!(
                    strs(&mount(v, "/rro").unwrap()["options"]),
                    ["rbind", "rprivate", "ro", "rro"]
                );
            },
        ),
        (
            "an image volume of several layers is an overlay of them, read-only, no upper dir",
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/vol".into(),
                    image: "data:1".into(),
                    readonly: true,
                    ..Default::default()
                }];
                c.volumes = vec![ImageVolume {
                    container_path: "/vol".into(),
                    layers: vec!["/s/3/fs".into(), "/s/1/fs".into()],
                }];
            },
            |v| {
                let m = mount(v, "/vol").unwrap();
                assert_eq!(m["type"], "overlay");
                assert_eq!(
                    strs(&m["options"]),
                    ["ro", "nosuid", "nodev", "lowerdir=/s/3/fs:/s/1/fs"]
                );
            },
        ),
        (
            "an image volume of one layer is a read-only bind of it",
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/vol".into(),
                    image: "data:1".into(),
                    ..Default::default()
                }];
                c.volumes = vec![ImageVolume {
                    container_path: "/vol".into(),
                    layers: vec!["/s/1/fs".into()],
                }];
            },
            |v| {
                let m = mount(v, "/vol").unwrap();
                assert_eq!(
                    (&m["type"], &m["source"]),
                    (&json!("bind"), &json!("/s/1/fs"))
                );
                assert_eq!(
                    strs(&m["options"]),
                    ["rbind", "rprivate", "ro", "nosuid", "nodev"]
                );
            },
        ),
        (
            "host IPC shares the host's /dev/shm and leaves the ipc namespace",
            |c| {
                c.pod.spec.namespaces.ipc = NsMode::Node;
            },
            |v| {
                assert_eq!(mount(v, "/dev/shm").unwrap()["source"], "/dev/shm");
                assert!(!ns_types(v).iter().any(|(t, _)| t == "ipc"));
            },
        ),
        (
            "host network leaves network and uts",
            |c| c.pod.spec.namespaces.network = NsMode::Node,
            |v| {
                let t: Vec<String> = ns_types(v).into_iter().map(|(t, _)| t).collect();
                assert_eq!(t, ["mount", "ipc", "pid"]);
            },
        ),
        (
            "on a cgroup v2 host a container gets its own cgroup namespace",
            |c| c.unified_cgroups = true,
            |v| {
                let t: Vec<String> = ns_types(v).into_iter().map(|(t, _)| t).collect();
                assert_eq!(t, ["mount", "network", "uts", "ipc", "pid", "cgroup"]);
            },
        ),
        (
            "a privileged container on a cgroup v2 host keeps the host's cgroup namespace",
            |c| {
                c.unified_cgroups = true;
                c.pod.spec.privileged = true;
                c.spec.security.privileged = true;
            },
            |v| assert!(!ns_types(v).iter().any(|(t, _)| t == "cgroup")),
        ),
        (
            "host PID leaves pid",
            |c| c.spec.security.namespaces.pid = NsMode::Node,
            |v| assert!(!ns_types(v).iter().any(|(t, _)| t == "pid")),
        ),
        (
            "a pod PID namespace is joined by path",
            |c| {
                c.spec.security.namespaces.pid = NsMode::Pod;
                c.pid_ns = Some("/proc/42/ns/pid".into());
            },
            |v| assert!(ns_types(v).contains(&("pid".into(), Some("/proc/42/ns/pid".into())))),
        ),
        (
            "custom masked and read-only paths",
            |c| {
                c.spec.security.masked_paths = vec!["/m".into()];
                c.spec.security.readonly_paths = vec!["/r".into()];
            },
            |v| {
                assert_eq!(strs(&v["linux"]["maskedPaths"]), ["/m"]);
                assert_eq!(strs(&v["linux"]["readonlyPaths"]), ["/r"]);
            },
        ),
        (
            "RuntimeDefault seccomp",
            |c| c.spec.security.seccomp = Seccomp::RuntimeDefault,
            |v| assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO"),
        ),
        (
            "privileged: no masks, no seccomp, all devices, no no_new_privs",
            |c| {
                c.pod.spec.privileged = true;
                c.spec.security.privileged = true;
                c.spec.security.no_new_privs = true;
                c.spec.security.seccomp = Seccomp::RuntimeDefault;
            },
            |v| {
                assert!(v["linux"].get("maskedPaths").is_none());
                assert!(v["linux"].get("seccomp").is_none());
                assert_eq!(v["process"]["noNewPrivileges"], false);
                assert_eq!(
                    v["linux"]["resources"]["devices"][0],
                    json!({"allow": true, "access": "rwm"})
                );
                assert!(!strs(&mount(v, "/sys").unwrap()["options"]).contains(&"ro".to_string()));
            },
        ),
        (
            "oom_score_adj clamped to what the host allows",
            |c| {
                c.spec.resources.oom_score_adj = -999;
                c.min_oom = -500;
            },
            |v| assert_eq!(v["process"]["oomScoreAdj"], -500),
        ),
        (
            "resources",
            |c| {
                c.spec.resources.memory_limit_in_bytes = 1 << 20;
                c.spec.resources.cpu_shares = 2;
                c.spec.resources.cpu_quota = -1;
                c.spec.resources.cpuset_cpus = "0".into();
            },
            |v| {
                let r = &v["linux"]["resources"];
                assert_eq!(r["memory"], json!({"limit": 1 << 20, "swap": 1 << 20}));
                assert_eq!(r["cpu"], json!({"shares": 2, "quota": -1, "cpus": "0"}));
            },
        ),
        (
            "a device node",
            |c| {
                c.spec.devices = vec![DeviceSpec {
                    container_path: "/dev/xnull".into(),
                    host_path: "/dev/null".into(),
                    permissions: "rw".into(),
                }];
            },
            |v| {
                let d = &v["linux"]["devices"][0];
                assert_eq!(
                    (
                        d["path"].as_str(),
                        d["type"].as_str(),
                        d["major"].as_u64(),
                        d["minor"].as_u64()
                    ),
                    (Some("/dev/xnull"), Some("c"), Some(1), Some(3))
                );
                assert_eq!(
                    v["linux"]["resources"]["devices"][1],
                    json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
                );
            },
        ),
        (
            "request annotations are added",
            |c| {
                c.spec.annotations.insert("x".into(), "y".into());
            },
            |v| assert_eq!(v["annotations"]["x"], "y"),
        ),
        (
            "tty",
            |c| c.spec.tty = true,
            |v| assert_eq!(v["process"]["terminal"], true),
        ),
    ];
    for (name, edit, check) in rows {
        let mut c = Case::new(l.path());
        edit(&mut c);
        let v = c.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&v);
    }
}

#[test]
fn refuses_as_each_row_says() {
    let l = layer();
    let rows: Vec<(Edit, &str)> = vec![
        (
            |c| c.spec.security.privileged = true,
            "is privileged but pod",
        ),
        (
            |c| {
                c.image.entrypoint.clear();
                c.image.cmd.clear();
            },
            "no command specified",
        ),
        (|c| c.spec.working_dir = "rel".into(), "is not absolute"),
        (
            |c| c.spec.security.run_as_username = "nobody-here".into(),
            "not found in the image's /etc/passwd",
        ),
        (
            |c| c.spec.security.run_as_user = Some(-1),
            "runAsUser -1 is out of range",
        ),
        (
            |c| c.spec.security.run_as_user = Some(4294967295),
            "runAsUser 4294967295 is out of range (0-2147483647)",
        ),
        (
            |c| c.spec.security.run_as_group = Some(1 << 40),
            "runAsGroup",
        ),
        (
            |c| c.spec.security.supplemental_groups = vec![-5],
            "supplementalGroup -5",
        ),
        (|c| c.image.user = "ghost".into(), "image user \"ghost\""),
        (
            |c| c.image.user = "root:ghosts".into(),
            "image group \"ghosts\"",
        ),
        (
            |c| c.spec.security.add_capabilities = vec!["CAP_BOGUS".into()],
            "unknown capability",
        ),
        (
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "rel".into(),
                    host_path: "/tmp".into(),
                    readonly: false,
                    propagation: Propagation::Private,
                    ..Default::default()
                }];
            },
            "mount container path \"rel\"",
        ),
        (
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/x".into(),
                    host_path: "/no/such/crust/path".into(),
                    readonly: false,
                    propagation: Propagation::Private,
                    ..Default::default()
                }];
            },
            "does not exist",
        ),
        (
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/x".into(),
                    host_path: "/tmp".into(),
                    readonly: false,
                    propagation: Propagation::Private,
                    recursive_read_only: true,
                    ..Default::default()
                }];
            },
            "recursive_read_only needs readonly",
        ),
        (
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/x".into(),
                    host_path: "/tmp".into(),
                    readonly: true,
                    propagation: Propagation::HostToContainer,
                    recursive_read_only: true,
                    ..Default::default()
                }];
            },
            "recursive_read_only needs private propagation",
        ),
        (
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/x".into(),
                    host_path: "/tmp".into(),
                    image: "data:1".into(),
                    ..Default::default()
                }];
            },
            "both host path",
        ),
        (
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/x".into(),
                    image: "data:1".into(),
                    ..Default::default()
                }];
            },
            "was not resolved",
        ),
        (
            |c| {
                c.spec.mounts = vec![MountSpec {
                    container_path: "/x".into(),
                    image: "data:1".into(),
                    ..Default::default()
                }];
                c.volumes = vec![ImageVolume {
                    container_path: "/x".into(),
                    layers: vec![],
                }];
            },
            "has no layers",
        ),
        (
            |c| {
                c.spec.devices = vec![DeviceSpec {
                    container_path: "/dev/x".into(),
                    host_path: "/etc/passwd".into(),
                    permissions: String::new(),
                }];
            },
            "is not a device",
        ),
        (
            |c| {
                c.spec.devices = vec![DeviceSpec {
                    container_path: "/dev/x".into(),
                    host_path: "/dev/null".into(),
                    permissions: "rwx".into(),
                }];
            },
            "not a subset of rwm",
        ),
        (
            |c| c.spec.security.seccomp = Seccomp::Localhost("/no/such/profile.json".into()),
            "cannot be read",
        ),
    ];
    for (edit, names) in rows {
        let mut c = Case::new(l.path());
        edit(&mut c);
        match c.build() {
            Err(e @ RuntimeError::Invalid(_)) => {
                assert!(e.to_string().contains(names), "{names}: {e}")
            }
            other => panic!("{names}: {other:?}"),
        }
    }
}

/// A Localhost seccomp profile that is a FIFO (or a file too large) is refused at once:
/// the spec used to `std::fs::read` it, and a FIFO blocked that (on an async worker) until
/// something wrote to it.
#[test]
fn a_fifo_or_huge_localhost_profile_is_refused_without_blocking() {
    let l = layer();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("profile.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(crate::runtime::oci::seccomp::MAX_PROFILE + 1)
        .unwrap();
    for (path, names) in [(fifo, "FIFO"), (huge, "larger than")] {
        let (tx, rx) = std::sync::mpsc::channel();
        let lp = l.path().to_path_buf();
        std::thread::spawn(move || {
            let mut c = Case::new(&lp);
            c.spec.security.seccomp = Seccomp::Localhost(path.display().to_string());
            let _ = tx.send(c.build().map(|_| ()).map_err(|e| e.to_string()));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("building the spec blocked on the profile");
        let e = got.expect_err("a FIFO or huge profile must be refused");
        assert!(e.contains(names), "{names}: {e}");
    }
}
