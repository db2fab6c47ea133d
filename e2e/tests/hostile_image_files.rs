//! Files crustd reads from an image (`/etc/passwd`, `/etc/group`) under hostile images
//! (issue 18, items 2–4): `/etc/passwd` a symlink to `/dev/zero` (crustd read the host's
//! until the kernel killed it), a FIFO (crustd stopped answering), `/etc` a symlink to a
//! host directory (the container ran as a uid from a host file). Each CreateContainer
//! must answer promptly with InvalidArgument and crustd stay small and responsive; a
//! symlink between the image's own layers is still followed.
//!
//! crustd runs with a 4 GiB address-space limit, so a runaway read kills crustd (and
//! fails the test) instead of exhausting the machine.

use std::time::{Duration, Instant};

use crust_e2e::image::{self, busybox_layer, Compression, Flavour, Layer};
use crust_e2e::pods::{self, container_config, pod_config, Runtime};
use crust_e2e::{cri, require_root};
use k8s_cri::v1 as kc;
use tonic::Code;

/// Pushes busybox plus `layers` as `t/hostile:<tag>` and pulls it; the image name.
async fn pull_image(
    d: &crust_e2e::daemon::Crustd,
    host: &str,
    tag: &str,
    layers: Vec<Vec<u8>>,
) -> String {
    let mut all = vec![busybox_layer()];
    all.extend(layers);
    let img = image::build(
        &all,
        Compression::Gzip,
        Flavour::Oci,
        image::host_arch(),
        &[],
    );
    image::push(host, "t/hostile", tag, &img, None).await;
    let name = format!("{host}/t/hostile:{tag}");
    cri::Images::new(d.channel().await)
        .pull(&name, None)
        .await
        .unwrap_or_else(|e| panic!("pull {name}: {e:?}"));
    name
}

/// CreateContainer of `image` running as user name `user`, bounded by 20 s.
async fn create_as(
    rt: &mut Runtime,
    pod: &str,
    pc: &kc::PodSandboxConfig,
    name: &str,
    image: &str,
    user: &str,
) -> Result<String, tonic::Status> {
    let mut cc = container_config(name, image, &["/bin/sleep", "1000"]);
    if let Some(l) = cc.linux.as_mut() {
        if let Some(s) = l.security_context.as_mut() {
            s.run_as_username = user.into();
        }
    }
    let call = rt.create_container(kc::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(cc),
        sandbox_config: Some(pc.clone()),
    });
    match tokio::time::timeout(Duration::from_secs(20), call).await {
        Ok(r) => r.map(|r| r.into_inner().container_id),
        Err(_) => panic!("CreateContainer {name} did not answer in 20 s"),
    }
}

/// crustd's resident set in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// Version answers within 2 s.
async fn responsive(rt: &mut Runtime, after: &str) {
    let t0 = Instant::now();
    let v = tokio::time::timeout(
        Duration::from_secs(2),
        rt.version(kc::VersionRequest::default()),
    )
    .await;
    assert!(
        matches!(v, Ok(Ok(_))),
        "Version after {after}: {v:?} in {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn image_user_files_are_read_inside_the_image_only() {
    require_root!();
    let (reg, d, mut rt, _busybox, logs, _g) = pods::setup().await;
    let pid = d.pid().expect("crustd pid");
    let limit = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--as=4294967296"])
        .status()
        .expect("run prlimit");
    assert!(limit.success(), "prlimit failed");
    let host = reg.host();
    // A host directory with a user only it knows.
    let hostdir = tempfile::tempdir().unwrap();
    std::fs::write(
        hostdir.path().join("passwd"),
        "hostonly:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(hostdir.path().join("group"), "hostgrp:x:4243:hostonly\n").unwrap();

    let zero = pull_image(
        &d,
        &host,
        "zero",
        vec![Layer::new()
            .dir("etc", 0o755)
            .symlink("etc/passwd", "/dev/zero")
            .finish()],
    )
    .await;
    let fifo = pull_image(
        &d,
        &host,
        "fifo",
        vec![Layer::new()
            .dir("etc", 0o755)
            .raw("etc/passwd", tar::EntryType::Fifo, "", b"")
            .finish()],
    )
    .await;
    let etc_out = pull_image(
        &d,
        &host,
        "etc-out",
        vec![Layer::new()
            .symlink("etc", hostdir.path().to_str().unwrap())
            .finish()],
    )
    .await;
    // The image's own symlink from /etc/passwd into another of its layers.
    let split = pull_image(
        &d,
        &host,
        "split",
        vec![
            Layer::new()
                .dir("usr", 0o755)
                .dir("usr/lib", 0o755)
                .file("usr/lib/passwd", b"alice:x:1234:1235::/:/bin/sh\n", 0o644)
                .finish(),
            Layer::new()
                .dir("etc", 0o755)
                .symlink("etc/passwd", "../usr/lib/passwd")
                .finish(),
        ],
    )
    .await;

    let pc = pod_config("hostile-files", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let rss0 = rss_kib(pid);

    for (what, image, user, expect) in [
        ("passwd -> /dev/zero", &zero, "alice", "not found"),
        ("passwd a FIFO", &fifo, "alice", "FIFO"),
        ("/etc -> host dir", &etc_out, "hostonly", "not found"),
    ] {
        let e = create_as(&mut rt, &pod, &pc, "c", image, user)
            .await
            .expect_err(what);
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(
            e.message().contains("/etc/passwd") && e.message().contains(expect),
            "{what}: {}",
            e.message()
        );
        responsive(&mut rt, what).await;
        let rss = rss_kib(pid);
        assert!(
            rss < rss0 + 100 * 1024,
            "{what}: crustd grew from {rss0} to {rss} KiB"
        );
    }
    let bundles = d.dir.path().join("state/bundles");
    assert_eq!(
        std::fs::read_dir(&bundles).map(|r| r.count()).unwrap_or(0),
        0,
        "failed creates left bundles"
    );

    let c = create_as(&mut rt, &pod, &pc, "alice", &split, "alice")
        .await
        .expect("user from a passwd in another layer of the image");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundles.join(&c).join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        spec["process"]["user"]["uid"], 1234,
        "{}",
        spec["process"]["user"]
    );
    assert_eq!(
        spec["process"]["user"]["gid"], 1235,
        "{}",
        spec["process"]["user"]
    );
    pods::remove_pod(&mut rt, &pod).await;
}
