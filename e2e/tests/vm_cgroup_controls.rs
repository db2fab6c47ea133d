//! cgroup v2 controls through crustd on a real node, once per cgroup driver (the VM suite,
//! e2e/vm, runs them in its Debian 12 guest with systemd as PID 1): the eBPF device filter
//! built from the CRI `devices`, io.max and io.weight, the freezer (crust-runc pause/resume
//! on the container's scope or cgroupfs directory), the container's own cgroup namespace,
//! and hugetlb limits (the guest boots with 2 MB huge pages reserved).
//!
//! Skipped (with the reason printed) unless root on a cgroup v2-only host.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use crust_e2e::node::{container_dir, keyed, read, systemd_driver, V2Pod};
use crust_e2e::pods;
use k8s_cri::v1 as kc;

/// The guest's root disk (virtio), a block device the tests hand to containers.
const DISK: &str = "/dev/vda";

fn sleeper() -> [&'static str; 2] {
    ["/bin/sleep", "100000"]
}

/// Major and minor of device node `path`.
fn dev_numbers(path: &str) -> (u32, u32) {
    let rdev = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .rdev();
    (libc::major(rdev), libc::minor(rdev))
}

/// A container given the disk read-only through the CRI `devices` reads it and cannot open
/// it for writing; a device it was not given (made with mknod, which runc's default rules
/// allow) cannot be opened; a container without devices cannot open the disk either.
/// `io.max` from the unified map throttles its reads (3 MB at 1 MB/s take over 2 s, and
/// io.stat counts them); `io.weight` is written.
#[tokio::test(flavor = "multi_thread")]
async fn device_filter_and_io_limits() {
    let Some(mut v) = V2Pod::start("dev", |_| {}).await else {
        return;
    };
    if !std::path::Path::new(DISK).exists() {
        eprintln!("skipped: no {DISK} (the guest's disk)");
        return;
    }
    let (major, minor) = dev_numbers(DISK);
    let res = kc::LinuxContainerResources {
        unified: HashMap::from([
            (
                "io.max".to_string(),
                format!("{major}:{minor} rbps=1048576"),
            ),
            ("io.weight".to_string(), "default 200".to_string()),
        ]),
        ..Default::default()
    };
    let mut cfg = v.container("disk", &sleeper(), res);
    cfg.devices = vec![kc::Device {
        container_path: "/dev/xvda".into(),
        host_path: DISK.into(),
        permissions: "r".into(),
    }];
    let c = v.run(cfg).await;
    let dir = container_dir(&v.d, &c);
    assert_eq!(
        read(&dir, "io.max"),
        format!("{major}:{minor} rbps=1048576 wbps=max riops=max wiops=max")
    );
    assert_eq!(read(&dir, "io.weight"), "default 200");

    let (out, code) = pods::exec(
        &mut v.rt,
        &c,
        "busybox head -c 512 /dev/xvda >/dev/null && echo read-ok; \
         (echo x >/dev/xvda) 2>&1; \
         busybox mknod /tmp/mem c 1 1 && echo mknod-ok; busybox head -c 1 /tmp/mem 2>&1; true",
    )
    .await;
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("read-ok"), "allowed read: {out}");
    assert!(
        out.contains("mknod-ok"),
        "runc's default rules allow mknod: {out}"
    );
    assert_eq!(
        out.matches("Operation not permitted").count(),
        2,
        "write to the read-only device and open of /dev/mem must be refused: {out}"
    );

    // Throttled reads from the disk: its page cache dropped first (an earlier run in this
    // guest may have read the same blocks).
    std::fs::write("/proc/sys/vm/drop_caches", "1").expect("drop caches");
    let t0 = Instant::now();
    let (out, code) = pods::exec(
        &mut v.rt,
        &c,
        "busybox dd if=/dev/xvda of=/dev/null bs=65536 count=48 skip=40000 2>&1",
    )
    .await;
    let took = t0.elapsed();
    println!("3 MB at rbps=1048576: {took:?}: {out}");
    assert_eq!(code, 0, "{out}");
    assert!(took >= Duration::from_secs(2), "not throttled: {took:?}");
    let stat = read(&dir, "io.stat");
    let line = stat
        .lines()
        .find(|l| l.starts_with(&format!("{major}:{minor} ")))
        .unwrap_or_else(|| panic!("no {major}:{minor} in io.stat: {stat}"));
    let rbytes = keyed(&line.replace(' ', "\n").replace('=', " "), "rbytes");
    assert!(rbytes >= 3 << 20, "io.stat: {line}");

    // Without the device: mknod works, open does not.
    let c2 = v
        .run(v.container("nodev", &sleeper(), Default::default()))
        .await;
    let (out, _) = pods::exec(
        &mut v.rt,
        &c2,
        &format!("busybox mknod /tmp/disk b {major} {minor} && busybox head -c 1 /tmp/disk 2>&1"),
    )
    .await;
    assert!(out.contains("Operation not permitted"), "{out}");
    v.remove().await;
}

/// `crust-runc pause` freezes the container's cgroup (a systemd scope or a cgroupfs
/// directory, as crustd made it): `cgroup.events` says frozen 1 and a counting loop stops;
/// `resume` thaws it and the loop goes on. The container has its own cgroup namespace: it
/// sees its cgroup as `0::/` and its own limits at the top of /sys/fs/cgroup.
#[tokio::test(flavor = "multi_thread")]
async fn freezer_and_cgroup_namespace() {
    let Some(mut v) = V2Pod::start("frz", |_| {}).await else {
        return;
    };
    let res = kc::LinuxContainerResources {
        memory_limit_in_bytes: 48 << 20,
        ..Default::default()
    };
    let counter = [
        "/bin/sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i >/tmp/n; busybox usleep 50000; done",
    ];
    let c = v.run(v.container("counter", &counter, res)).await;
    let dir = container_dir(&v.d, &c);

    // The container's view of its cgroup.
    let (out, code) = pods::exec(
        &mut v.rt,
        &c,
        "cat /proc/self/cgroup /sys/fs/cgroup/memory.max; busybox ls /sys/fs/cgroup",
    )
    .await;
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0::/"), "{out}");
    assert_eq!(
        lines.next(),
        Some((48u64 << 20).to_string().as_str()),
        "{out}"
    );
    let root = v.d.cgroup_root();
    let own_root = root.trim_start_matches('/');
    assert!(
        !out.contains("system.slice") && !out.contains(own_root),
        "the host's tree is visible: {out}"
    );

    let pid: i32 = read(&dir, "cgroup.procs")
        .lines()
        .next()
        .and_then(|l| l.parse().ok())
        .expect("a process in the container's cgroup");
    let n = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/root/tmp/n"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while n() < 2 {
        assert!(Instant::now() < deadline, "the counter did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let runc = |verb: &str| {
        let mut cmd =
            std::process::Command::new(crust_e2e::workspace_bin("crust-runc", "crust-runc"));
        cmd.arg("--root").arg(v.d.state().join("runc/crust"));
        if systemd_driver() {
            cmd.arg("--systemd-cgroup");
        }
        let o = cmd.args([verb, &c]).output().expect("run crust-runc");
        assert!(
            o.status.success(),
            "crust-runc {verb}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    runc("pause");
    assert_eq!(keyed(&read(&dir, "cgroup.events"), "frozen"), 1);
    let state: serde_json::Value = serde_json::from_str(&runc("state")).expect("state JSON");
    assert_eq!(state["status"], "paused");
    let frozen_at = n();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(n(), frozen_at, "the counter moved while frozen");
    runc("resume");
    assert_eq!(keyed(&read(&dir, "cgroup.events"), "frozen"), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while n() <= frozen_at {
        assert!(
            Instant::now() < deadline,
            "the counter did not go on after resume"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    v.remove().await;
}

/// A hugepage limit from the CRI lands in `hugetlb.2MB.max` and is enforced: in a
/// hugetlbfs mounted into the container, 2 MB can be allocated, 4 MB more cannot, and
/// `hugetlb.2MB.current` counts the page.
#[tokio::test(flavor = "multi_thread")]
async fn hugetlb_limit() {
    let free = std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if free < 3 {
        eprintln!("skipped: needs 3 free 2 MB huge pages (the guest boots with hugepages=4)");
        return;
    }
    let Some(mut v) = V2Pod::start("huge", |_| {}).await else {
        return;
    };
    let fs = tempfile::tempdir().expect("hugetlbfs dir");
    nix::mount::mount(
        Some("crust-e2e-huge"),
        fs.path(),
        Some("hugetlbfs"),
        nix::mount::MsFlags::empty(),
        Some("pagesize=2M"),
    )
    .expect("mount hugetlbfs");
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _unmount = Unmount(fs.path());
    let res = kc::LinuxContainerResources {
        hugepage_limits: vec![kc::HugepageLimit {
            page_size: "2MB".into(),
            limit: 2 << 20,
        }],
        ..Default::default()
    };
    let mut cfg = v.container("huge", &sleeper(), res);
    cfg.mounts = vec![kc::Mount {
        container_path: "/huge".into(),
        host_path: fs.path().display().to_string(),
        ..Default::default()
    }];
    let c = v.run(cfg).await;
    let dir = container_dir(&v.d, &c);
    assert_eq!(read(&dir, "hugetlb.2MB.max"), (2u64 << 20).to_string());
    let (out, code) = pods::exec(
        &mut v.rt,
        &c,
        "busybox fallocate -l 2097152 /huge/a && echo first-ok; \
         busybox fallocate -l 4194304 /huge/b 2>&1 || echo second-refused",
    )
    .await;
    println!("{out}");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("first-ok"), "{out}");
    assert!(out.contains("second-refused"), "over the limit: {out}");
    assert_eq!(read(&dir, "hugetlb.2MB.current"), (2u64 << 20).to_string());
    assert!(keyed(&read(&dir, "hugetlb.2MB.events"), "max") >= 1);
    let _ = pods::exec(&mut v.rt, &c, "busybox rm -f /huge/a /huge/b").await;
    v.remove().await;
}
