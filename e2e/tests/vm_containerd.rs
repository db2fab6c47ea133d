//! containerd (Debian's 1.6) on a systemd node with `SystemdCgroup = true` and crust-runc
//! as its runc runtime's `BinaryName`, as a kubelet node would configure it, running a pod
//! through CRI: the sandbox and the container are systemd scopes
//! (`cri-containerd-<id>.scope`) in the pod's slice, made by crust-runc `--systemd-cgroup`.
//! Runs in the VM suite (e2e/vm); skipped (with the reason printed) where systemd is not
//! init with cgroup v2 only, or containerd is not installed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crust_e2e::containerd::{Containerd, RuncOptions};
use crust_e2e::pods::{self, container_config, pod_config, Runtime};
use crust_e2e::{image, require_root};
use k8s_cri::v1 as kc;

fn systemctl_prop(unit: &str, prop: &str) -> String {
    let out = std::process::Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .expect("run systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_systemd_cgroup_runs_a_pod_on_crust_runc() {
    require_root!();
    if !Path::new("/run/systemd/system").is_dir()
        || !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        eprintln!("skipped: needs systemd as init and cgroup v2 only (the VM suite, e2e/vm)");
        return;
    }
    for b in ["/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2"] {
        if !Path::new(b).exists() {
            eprintln!("skipped: {b} not installed");
            return;
        }
    }
    let crust_runc = crust_e2e::workspace_bin("crust-runc", "crust-runc");
    // BinaryName is a wrapper that records each call and runs crust-runc: the proof that
    // containerd's shim ran crust-runc, and how.
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = dir.path().join("calls");
    let wrapper = dir.path().join("crust-runc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >>{}\nexec {} \"$@\"\n",
            calls.display(),
            crust_runc.display()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let reg = crust_e2e::registry::Registry::start();
    image::push(&reg.host(), "test/busybox", "v1", &image::busybox(), None).await;
    let pause = crust_e2e::bench::image_with_cmd(&["/bin/sleep", "2147483647"]);
    image::push(&reg.host(), "test/pause", "1", &pause, None).await;
    let (img, pause) = (
        format!("{}/test/busybox:v1", reg.host()),
        format!("{}/test/pause:1", reg.host()),
    );
    let c = Containerd::start_with(
        &std::env::temp_dir(),
        &reg.host(),
        Some(&pause),
        None,
        &RuncOptions {
            binary_name: Some(wrapper.clone()),
            systemd_cgroup: true,
        },
    )
    .expect("start containerd");
    let ch = crust_e2e::cri::connect(&c.socket()).await;
    let mut images = crust_e2e::cri::Images::new(ch.clone());
    for i in [&img, &pause] {
        images
            .pull(i, None)
            .await
            .unwrap_or_else(|e| panic!("pull {i}: {e:?}\n{}", c.log()));
    }
    let mut rt: Runtime = Runtime::new(ch);

    let slice = format!("kubepods-besteffort-pod{}_ctrd.slice", std::process::id());
    let slice_dir = format!("/kubepods.slice/kubepods-besteffort.slice/{slice}");
    let logs = tempfile::tempdir().expect("logs");
    let mut pc = pod_config("ctrd", logs.path().to_str().unwrap());
    // The node's UTS namespace goes with its network: no hostname of the pod's own (runc
    // and crust-runc refuse one without a private UTS namespace).
    pc.hostname = String::new();
    pc.linux = Some(kc::LinuxPodSandboxConfig {
        cgroup_parent: slice.clone(),
        security_context: Some(kc::LinuxSandboxSecurityContext {
            namespace_options: Some(kc::NamespaceOption {
                network: kc::NamespaceMode::Node as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let pod = pods::run_pod(&mut rt, &pc)
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log()));
    let ctr = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("sleeper", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .unwrap_or_else(|e| panic!("create+start: {e}\n{}", c.log()));
    let s = pods::status(&mut rt, &ctr).await;
    assert_eq!(
        s.state,
        kc::ContainerState::ContainerRunning as i32,
        "{s:?}"
    );
    let (out, code) = pods::exec(&mut rt, &ctr, "echo hi from $(hostname)").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("hi from"), "{out}");

    for (what, id) in [("sandbox", &pod), ("container", &ctr)] {
        let scope = format!("cri-containerd-{id}.scope");
        assert_eq!(systemctl_prop(&scope, "Slice"), slice, "{what} scope");
        assert_eq!(
            systemctl_prop(&scope, "ControlGroup"),
            format!("{slice_dir}/{scope}"),
            "{what} scope"
        );
        assert_eq!(systemctl_prop(&scope, "ActiveState"), "active", "{what}");
    }
    let log = std::fs::read_to_string(&calls).unwrap_or_default();
    let creates: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" create ") && l.contains("--systemd-cgroup"))
        .collect();
    assert!(
        creates.iter().any(|l| l.contains(&ctr)) && creates.iter().any(|l| l.contains(&pod)),
        "containerd's shim did not run crust-runc --systemd-cgroup create for both: {log}"
    );

    pods::remove_pod(&mut rt, &pod).await;
    for id in [&pod, &ctr] {
        let scope = format!("cri-containerd-{id}.scope");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while systemctl_prop(&scope, "ActiveState") == "active" {
            assert!(std::time::Instant::now() < deadline, "{scope} still active");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let _ = std::process::Command::new("systemctl")
        .args(["stop", &slice])
        .status();
}
