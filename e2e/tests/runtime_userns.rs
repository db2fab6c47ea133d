//! Pods in their own user namespace (`hostUsers: false`: CRI userns_options mode POD with
//! kubelet's mappings), through the CRI as kubelet drives it (root only; the host kernel
//! must have idmapped mounts on overlayfs layers and bind mounts, Linux >= 5.19, tmpfs
//! >= 6.3):
//!
//! - inside, `/proc/self/uid_map` is the pod's map and root is the namespace's root;
//! - a file of the image owned by root shows as root inside and as the mapped host uid on
//!   the host side of the rootfs mount, while the image layer on disk stays root's (no
//!   chown); what the container writes is stored with its host ids;
//! - a volume's files keep their ids inside (idmapped bind mount) and what the container
//!   writes there is stored with the in-container ids;
//! - every container of the pod is in the one namespace, ExecSync joins it;
//! - capabilities are the namespace's: CAP_SYS_ADMIN mounts a tmpfs but not a host-only
//!   filesystem, CAP_SYS_TIME sets no clock, CAP_MKNOD makes no device, CAP_DAC_OVERRIDE
//!   and CAP_CHOWN give nothing over the host root's files;
//! - PodSandboxStatus reports the mappings back; Status reports the feature;
//! - malformed mappings are refused before anything is made.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crust_e2e::pods::{self, container_config, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// A host range no other test uses (kubelet hands out multiples of 65536).
const HOST_ID: u32 = 65536 * 37;

fn userns_pod(name: &str, logs: &str) -> kc::PodSandboxConfig {
    let map = kc::IdMapping {
        host_id: HOST_ID,
        container_id: 0,
        length: 65536,
    };
    let mut pc = pod_config(name, logs);
    pc.linux = Some(kc::LinuxPodSandboxConfig {
        security_context: Some(kc::LinuxSandboxSecurityContext {
            namespace_options: Some(kc::NamespaceOption {
                network: kc::NamespaceMode::Pod as i32,
                pid: kc::NamespaceMode::Container as i32,
                ipc: kc::NamespaceMode::Pod as i32,
                target_id: String::new(),
                userns_options: Some(kc::UserNamespace {
                    mode: kc::NamespaceMode::Pod as i32,
                    uids: vec![map],
                    gids: vec![map],
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    pc
}

async fn exec(rt: &mut pods::Runtime, id: &str, script: &str) -> (i32, String) {
    let r = rt
        .exec_sync(kc::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    (
        r.exit_code,
        format!(
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_in_its_own_user_namespace() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    // The pod's root reaches the rootfs through crustd's state dir (0711 like containerd's);
    // the test's temp dir above it must be traversable as well.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();

    let st = rt
        .status(kc::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let f = st.runtime_handlers[0].features.unwrap();
    assert!(f.user_namespaces, "feature reported");

    // A volume in a private (0700) host directory, as kubelet's pod dirs are.
    let vol_parent = tempfile::tempdir().unwrap();
    let vol = vol_parent.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("root-file"), "r").unwrap();
    std::fs::write(vol.join("user-file"), "u").unwrap();
    std::os::unix::fs::chown(vol.join("user-file"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o777)).unwrap();

    let pc = userns_pod("userns", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let ps = rt
        .pod_sandbox_status(kc::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    let u = ps.linux.unwrap().namespaces.unwrap().options.unwrap();
    let u = u.userns_options.expect("userns_options reported");
    assert_eq!(u.mode, kc::NamespaceMode::Pod as i32);
    assert_eq!((u.uids[0].host_id, u.uids[0].length), (HOST_ID, 65536));
    assert_eq!((u.gids[0].host_id, u.gids[0].container_id), (HOST_ID, 0));

    let mut c = container_config("c", &img, &["/bin/sleep", "1000"]);
    c.linux.as_mut().unwrap().security_context = Some(kc::LinuxContainerSecurityContext {
        namespace_options: pc
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone()),
        capabilities: Some(kc::Capability {
            add_capabilities: vec!["SYS_ADMIN".into(), "SYS_TIME".into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    c.mounts = vec![kc::Mount {
        container_path: "/data".into(),
        host_path: vol.display().to_string(),
        ..Default::default()
    }];
    let id = pods::run_container(&mut rt, &pod, &pc, c)
        .await
        .expect("create+start in the pod's user namespace");

    // The maps, and root is the namespace's root.
    let (rc, out) = exec(
        &mut rt,
        &id,
        "cat /proc/self/uid_map /proc/self/gid_map; busybox id -u",
    )
    .await;
    assert_eq!(rc, 0, "{out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    let want = ["0", &HOST_ID.to_string(), "65536"];
    assert_eq!(&words[0..3], want, "uid_map: {out}");
    assert_eq!(&words[3..6], want, "gid_map: {out}");
    assert_eq!(words[6], "0", "id -u: {out}");

    // The image's root-owned file: root's inside, the mapped uid on the host side of the
    // mount, root's in the layer on disk.
    let (rc, out) = exec(&mut rt, &id, "busybox stat -c '%u %g' /bin/busybox").await;
    assert_eq!((rc, out.trim()), (0, "0 0"), "{out}");
    let rootfs = d.state().join("bundles").join(&id).join("rootfs");
    let host = std::fs::metadata(rootfs.join("bin/busybox")).unwrap();
    assert_eq!((host.uid(), host.gid()), (HOST_ID, HOST_ID));
    let mut layer_owned = Vec::new();
    for e in std::fs::read_dir(d.root().join("snapshots"))
        .unwrap()
        .flatten()
    {
        if let Ok(m) = std::fs::metadata(e.path().join("fs/bin/busybox")) {
            layer_owned.push((m.uid(), m.gid()));
        }
    }
    assert_eq!(layer_owned, [(0, 0)], "the image layer is not chowned");

    // Writes: to the rootfs (stored with the host ids) and to the volume (stored with the
    // container's ids through the idmapped mount).
    let (rc, out) = exec(
        &mut rt,
        &id,
        "echo x > /new && echo y > /data/new && busybox stat -c '%u %g' /data/root-file /data/user-file /new",
    )
    .await;
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "1000", "1000", "0", "0"]
    );
    let v = std::fs::metadata(vol.join("new")).unwrap();
    assert_eq!(
        (v.uid(), v.gid()),
        (0, 0),
        "volume write stored as container root"
    );
    let n = std::fs::metadata(rootfs.join("new")).unwrap();
    assert_eq!(
        (n.uid(), n.gid()),
        (HOST_ID, HOST_ID),
        "rootfs write stored mapped"
    );

    // Capabilities confined to the namespace. SYS_ADMIN works on what the namespace owns
    // (its mount namespace: a tmpfs) ...
    let (rc, out) = exec(
        &mut rt,
        &id,
        "busybox mkdir -p /mnt && busybox mount -t tmpfs t /mnt && echo mounted",
    )
    .await;
    assert_eq!((rc, out.trim()), (0, "mounted"), "{out}");
    // ... but not beyond it.
    for (what, script) in [
        (
            "mount a filesystem only the host's root may mount",
            "busybox mount -t debugfs none /mnt",
        ),
        // (This host's kernel has no module support, so CAP_SYS_MODULE has nothing to show.)
        (
            "write a host root's file (the pod's /etc/hosts)",
            "echo x >> /etc/hosts",
        ),
        (
            "chown a host root's file",
            "busybox chown 0:0 /etc/hostname",
        ),
        ("set the clock", "busybox date -s 2001-01-01"),
        ("make a device node", "busybox mknod /sda b 8 0"),
        ("set a host sysctl", "echo 3 > /proc/sys/vm/drop_caches"),
    ] {
        // busybox date exits 0 when settimeofday fails: the kernel's refusal is the proof.
        let (_, out) = exec(&mut rt, &id, script).await;
        let refused = [
            "operation not permitted",
            "permission denied",
            "read-only file system",
        ];
        assert!(
            refused.iter().any(|r| out.to_lowercase().contains(r)),
            "could {what}: {out}"
        );
    }
    let (_, year) = exec(&mut rt, &id, "busybox date +%Y").await;
    assert_ne!(year.trim(), "2001", "the clock was set");
    // The namespaces the pod owns work unprivileged: sysfs (netns), mqueue (ipc), devpts.
    let (rc, out) = exec(
        &mut rt,
        &id,
        "busybox grep -E ' /(sys|dev/mqueue|dev/pts) ' /proc/mounts",
    )
    .await;
    assert_eq!(rc, 0, "{out}");
    for fs in [
        "sysfs /sys sysfs",
        "mqueue /dev/mqueue mqueue",
        "devpts /dev/pts devpts",
    ] {
        assert!(out.contains(fs), "{fs} not mounted: {out}");
    }

    // A second container is in the same user namespace.
    let id2 = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("c2", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("second container");
    let (_, a) = exec(&mut rt, &id, "busybox readlink /proc/self/ns/user").await;
    let (_, b) = exec(&mut rt, &id2, "busybox readlink /proc/self/ns/user").await;
    assert_eq!(a, b, "one user namespace per pod");
    let pin = d.state().join("ns").join(&pod).join("user");
    let pin_ino = std::fs::metadata(&pin).unwrap().ino();
    assert!(
        a.contains(&pin_ino.to_string()),
        "{a} is not the pinned {pin_ino}"
    );

    pods::remove_pod(&mut rt, &pod).await;
    assert!(!pin.exists(), "user namespace pin left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_mappings_are_refused_and_change_nothing() {
    require_root!();
    let (_reg, d, mut rt, _img, logs, _g) = setup().await;
    type Edit = fn(&mut kc::UserNamespace);
    let cases: [(Edit, &str); 4] = [
        (|u| u.uids[0].length = 1000, "length must be 65536"),
        (|u| u.gids[0].container_id = 5, "container id 0"),
        (|u| u.uids.push(u.uids[0]), "exactly one mapping"),
        (
            |u| u.mode = kc::NamespaceMode::Container as i32,
            "mode CONTAINER",
        ),
    ];
    for (edit, names) in cases {
        let mut pc = userns_pod("bad", logs.path().to_str().unwrap());
        let u = pc
            .linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
            .and_then(|s| s.namespace_options.as_mut())
            .and_then(|n| n.userns_options.as_mut())
            .unwrap();
        edit(u);
        let e = pods::run_pod(&mut rt, &pc).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{names}: {e:?}");
        assert!(
            e.message().contains(names) && e.message().contains("userns_options"),
            "{e:?}"
        );
    }
    let pods = rt
        .list_pod_sandbox(kc::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "{pods:?}");
    assert!(
        std::fs::read_dir(d.state().join("ns"))
            .map(|r| r.count())
            .unwrap_or(0)
            == 0
    );
}

/// pid=POD: the pod init makes the shared PID namespace inside the pod's user namespace, so
/// its containers mount their /proc and see each other.
#[tokio::test(flavor = "multi_thread")]
async fn shared_pid_namespace_is_owned_by_the_user_namespace() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut pc = userns_pod("usernspid", logs.path().to_str().unwrap());
    let ns = pc
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .unwrap();
    ns.pid = kc::NamespaceMode::Pod as i32;
    let ns = ns.clone();
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let mut c = container_config(name, &img, &["/bin/sleep", "1000"]);
        c.linux.as_mut().unwrap().security_context = Some(kc::LinuxContainerSecurityContext {
            namespace_options: Some(ns.clone()),
            ..Default::default()
        });
        ids.push(
            pods::run_container(&mut rt, &pod, &pc, c)
                .await
                .expect("container in the shared PID namespace"),
        );
    }
    let (rc, out) = exec(
        &mut rt,
        &ids[0],
        "cat /proc/self/uid_map; busybox ls /proc | busybox grep -c '^[0-9]'",
    )
    .await;
    assert_eq!(rc, 0, "{out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[1], HOST_ID.to_string(), "{out}");
    // The pod init, two sleeps, this shell and its ls/grep at least.
    let n: usize = words[3].parse().unwrap();
    assert!(n >= 4, "processes seen: {out}");
    pods::remove_pod(&mut rt, &pod).await;
}
