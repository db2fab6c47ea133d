//! End-to-end symlink-escape attempts through the `crust-runc` binary (root only): a
//! busybox bundle whose rootfs holds symlinks pointing at the host, with mounts, devices,
//! masked paths and writes aimed through them. Everything must land inside the rootfs (or
//! the container must be refused with exit code 1 and leave nothing behind), and the host
//! must be untouched.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        true
    } else {
        eprintln!("skipped: needs root (CI runs as root)");
        false
    }
}

struct Bundle {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    rootfs: PathBuf,
    state: PathBuf,
    host: PathBuf,
}

fn bundle() -> Bundle {
    let dir = tempfile::Builder::new()
        .prefix("crust-rootfs-e2e")
        .tempdir()
        .expect("tempdir");
    let base = std::fs::canonicalize(dir.path()).expect("canonicalize");
    let bundle = base.join("bundle");
    let rootfs = bundle.join("rootfs");
    let host = base.join("host");
    std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static");
    symlink("busybox", rootfs.join("bin/sh")).expect("symlink");
    std::fs::create_dir_all(&host).expect("host dir");
    std::fs::write(host.join("marker"), "host").expect("marker");
    Bundle {
        _dir: dir,
        state: base.join("state"),
        bundle,
        rootfs,
        host,
    }
}

fn config(
    b: &Bundle,
    script: &str,
    extra_mounts: serde_json::Value,
    linux_extra: serde_json::Value,
) -> serde_json::Value {
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}),
    ];
    mounts.extend(extra_mounts.as_array().cloned().unwrap_or_default());
    let mut linux = serde_json::json!({
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
        "maskedPaths": ["/proc/timer_list"],
        "readonlyPaths": ["/proc/sys"]
    });
    if let (Some(l), Some(e)) = (linux.as_object_mut(), linux_extra.as_object()) {
        for (k, v) in e {
            l.insert(k.clone(), v.clone());
        }
    }
    let _ = &b.rootfs;
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", script],
                    "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "escape",
        "mounts": mounts,
        "linux": linux
    })
}

fn run(b: &Bundle, id: &str, cfg: &serde_json::Value) -> Output {
    std::fs::write(b.bundle.join("config.json"), cfg.to_string()).expect("config");
    Command::new(env!("CARGO_BIN_EXE_crust-runc"))
        .arg("--root")
        .arg(&b.state)
        .args(["run", "--bundle"])
        .arg(&b.bundle)
        .arg(id)
        .output()
        .expect("spawn crust-runc")
}

fn cleanup(b: &Bundle, id: &str) {
    let _ = Command::new(env!("CARGO_BIN_EXE_crust-runc"))
        .arg("--root")
        .arg(&b.state)
        .args(["delete", "--force", id])
        .output();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn mounts_and_devices_through_host_symlinks_stay_inside() {
    if !is_root() {
        return;
    }
    let b = bundle();
    let id = format!("rootfs-escape-{}", std::process::id());
    symlink("/etc", b.rootfs.join("evil")).expect("symlink");
    symlink(
        "../../../../../../../../../../etc",
        b.rootfs.join("evil_rel"),
    )
    .expect("symlink");
    symlink(&b.host, b.rootfs.join("hostlink")).expect("symlink");
    let host_etc = names(Path::new("/etc"));
    let cfg = config(
        &b,
        "echo pwned > /evil/pwned-by-crust && echo pwned > /hostlink/sub/pwned && ls /etc/sub >/dev/null && test -c /evil_rel/crustdev && echo OK",
        serde_json::json!([
            {"destination": "/evil", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/hostlink/sub", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/evil_rel/sub", "type": "bind", "source": b.host.to_str(), "options": ["rbind", "ro"]}
        ]),
        serde_json::json!({"devices": [{"path": "/evil/crustdev", "type": "c", "major": 1, "minor": 3}]}),
    );
    let out = run(&b, &id, &cfg);
    cleanup(&b, &id);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("OK"), "{out:?}");
    assert!(!Path::new("/etc/pwned-by-crust").exists());
    assert!(!Path::new("/etc/crustdev").exists() && !Path::new("/etc/sub").exists());
    assert_eq!(names(Path::new("/etc")), host_etc, "host /etc untouched");
    assert_eq!(names(&b.host), vec!["marker"], "host dir untouched");
    // The destinations were created inside the rootfs instead.
    assert!(b.rootfs.join("etc").is_dir());
    let host_in_root = b.rootfs.join(b.host.strip_prefix("/").expect("absolute"));
    assert!(host_in_root.join("sub").is_dir());
}

#[test]
fn proc_through_a_symlink_is_refused_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let b = bundle();
    let id = format!("rootfs-procsym-{}", std::process::id());
    std::fs::create_dir_all(b.rootfs.join("realproc")).expect("mkdir");
    symlink("/realproc", b.rootfs.join("proc")).expect("symlink");
    let mut cfg = config(&b, "true", serde_json::json!([]), serde_json::json!({}));
    cfg["mounts"][0]["destination"] = "/proc".into();
    let out = run(&b, &id, &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr.contains("mounts[0]") && stderr.contains("symlink"),
        "{stderr}"
    );
    let list = Command::new(env!("CARGO_BIN_EXE_crust-runc"))
        .arg("--root")
        .arg(&b.state)
        .args(["list", "--format", "json"])
        .output()
        .expect("list");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(!text.contains(&id), "no state left: {text}");
    cleanup(&b, &id);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(b.rootfs.to_str().expect("utf8")),
        "no mount left"
    );
}
