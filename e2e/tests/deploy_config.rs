//! The shipped `deploy/config.toml` is accepted by crustd, both as shipped (every key
//! commented) and with every key uncommented, so the documented keys, types and defaults are
//! ones crustd knows (unknown keys are an error). Runs `deploy/check-config.sh`.

use crust_e2e::require_root;

#[test]
fn shipped_config_is_accepted_by_crustd() {
    require_root!();
    let crustd = crust_e2e::workspace_bin("crust-cri", "crustd");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let out = std::process::Command::new("bash")
        .arg(repo.join("deploy/check-config.sh"))
        .arg(&crustd)
        .output()
        .expect("run deploy/check-config.sh");
    assert!(
        out.status.success(),
        "check-config failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("accepts deploy/config.toml"));
}

/// A cgroup driver crustd cannot provide here, or a `cgroup_root` of the other driver's
/// form, makes crustd refuse to start (naming the key) rather than run pods where kubelet
/// does not look: the systemd driver where systemd is not init (this host) or with a
/// cgroupfs root (a systemd guest), a slice as the cgroupfs root, an unknown driver name.
#[test]
fn unsupported_cgroup_driver_is_refused_at_start() {
    require_root!();
    let crustd = crust_e2e::workspace_bin("crust-cri", "crustd");
    let systemd = std::path::Path::new("/run/systemd/system").is_dir();
    let cases = [
        ("cgroup_driver = \"SYSTEMD\"", "cgroupfs"),
        (
            "cgroup_driver = \"systemd\"\ncgroup_root = \"/crust\"",
            if systemd {
                "must be a systemd slice"
            } else {
                "not the init system"
            },
        ),
        (
            "cgroup_driver = \"cgroupfs\"\ncgroup_root = \"crust.slice\"",
            "is a systemd slice",
        ),
    ];
    let cases = cases
        .into_iter()
        .chain((!systemd).then_some(("cgroup_driver = \"systemd\"", "not the init system")));
    for (driver, want) in cases {
        let d = tempfile::tempdir().expect("tempdir");
        let cfg = d.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!("[network]\nenabled = false\n[runtime]\n{driver}\n"),
        )
        .expect("write config");
        let log = d.path().join("log");
        let mut child = std::process::Command::new(&crustd)
            .arg("--config")
            .arg(&cfg)
            .arg("--root")
            .arg(d.path().join("root"))
            .arg("--state")
            .arg(d.path().join("state"))
            .arg("--listen")
            .arg(d.path().join("s.sock"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("run crustd");
        // A crustd that accepted the setting would serve until killed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait crustd") {
                break Some(st);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            status.is_some_and(|s| !s.success()),
            "{driver}: crustd did not refuse to start: {err}"
        );
        assert!(
            err.contains("cgroup_") && err.contains(want),
            "{driver}: {err}"
        );
        assert!(!d.path().join("s.sock").exists(), "{driver}: socket made");
    }
}
