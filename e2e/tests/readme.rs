//! What README.md promises a new user, checked: the minimal pod and container configs it
//! shows are the files in deploy/examples/ and run through crustctl against a real crustd
//! with an image made offline by deploy/make-busybox-image.sh; the minimum Rust it states is
//! the workspace's `rust-version` and covers every locked dependency's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crust_e2e::require_root;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

#[test]
fn readme_shows_the_example_configs_verbatim() {
    let readme = read("README.md");
    for f in ["deploy/examples/pod.json", "deploy/examples/container.json"] {
        let text = read(f);
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{f} is not JSON: {e}"));
        assert!(
            readme.contains(&format!("```json\n{text}```")),
            "README.md does not show {f} as it is:\n{text}"
        );
    }
}

/// "1.90" -> (1, 90, 0).
fn version(v: &str) -> (u32, u32, u32) {
    let mut it = v
        .split('.')
        .map(|p| p.parse::<u32>().expect("numeric rust-version"));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

#[test]
fn stated_minimum_rust_covers_every_locked_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The packages built for this host: cargo fetches only those (a fresh CARGO_HOME has no
    // hermit-abi and the like), and an unfiltered `cargo metadata --offline` would need all.
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(repo())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let mut ours = None;
    let mut highest = ((0, 0, 0), String::new());
    for p in meta["packages"].as_array().expect("packages") {
        let Some(rv) = p["rust_version"].as_str() else {
            continue;
        };
        let id = p["id"].as_str().unwrap_or_default();
        if members.contains(&id) {
            ours = Some(rv.to_string());
        } else if version(rv) > highest.0 {
            highest = (version(rv), format!("{} {}", p["name"], p["version"]));
        }
    }
    let ours = ours.expect("the workspace members declare rust-version");
    assert!(
        version(&ours) >= highest.0,
        "Cargo.toml says rust-version {ours}, but {} needs {:?}",
        highest.1,
        highest.0
    );
    assert!(
        read("README.md").contains(&format!("Rust {ours} or newer")),
        "README.md does not state the minimum Rust, {ours}"
    );
}

fn ctl(sock: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(crust_e2e::workspace_bin("crust-ctl", "crustctl"))
        .arg("-r")
        .arg(format!("unix://{}", sock.display()))
        .arg("--config")
        .arg("/nonexistent/crictl.yaml")
        .args(args)
        .output()
        .expect("run crustctl");
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "crustctl {args:?}: {o}{e}");
    (o, e)
}

#[test]
fn readme_examples_run_with_an_offline_image() {
    require_root!();
    crust_e2e::workspace_bin("crust-shim", "crust-shim");
    crust_e2e::workspace_bin("crust-runc", "crust-runc");
    // As pods::config(); Crustd::start adds a unique cgroup root and removes it on drop.
    let mut config = "[network]\nenabled = false\n[runtime]\n".to_string();
    if let Ok(r) = std::env::var("CRUST_E2E_RUNTIME") {
        config.push_str(&format!("runtime = \"{r}\"\n"));
    }
    let d = crust_e2e::daemon::Crustd::start(&config);
    let _g = crust_e2e::pods::Leftovers(d.dir.path().to_path_buf());
    let sock = d.socket();
    let work = tempfile::tempdir().unwrap();

    // The image, as the README says: made offline, imported through crustd.
    let tar = work.path().join("busybox.tar");
    let st = Command::new("bash")
        .arg(repo().join("deploy/make-busybox-image.sh"))
        .arg(&tar)
        .status()
        .expect("run make-busybox-image.sh");
    assert!(st.success(), "make-busybox-image.sh failed");
    ctl(&sock, &["import", tar.to_str().unwrap()]);
    let (images, _) = ctl(&sock, &["images"]);
    assert!(
        images.contains("docker.io/library/crust-busybox"),
        "{images}"
    );

    // The example configs; only the pod's log directory moves into this test's temp dir.
    let mut pod: serde_json::Value =
        serde_json::from_str(&read("deploy/examples/pod.json")).unwrap();
    let logs = work.path().join("logs");
    pod["log_directory"] = logs.to_str().unwrap().into();
    let pod_json = work.path().join("pod.json");
    std::fs::write(&pod_json, pod.to_string()).unwrap();
    let ctr_json = repo().join("deploy/examples/container.json");

    let (pod_id, _) = ctl(&sock, &["runp", pod_json.to_str().unwrap()]);
    let pod_id = pod_id.trim().to_string();
    let (cid, _) = ctl(
        &sock,
        &[
            "create",
            &pod_id,
            ctr_json.to_str().unwrap(),
            pod_json.to_str().unwrap(),
        ],
    );
    let cid = cid.trim().to_string();
    ctl(&sock, &["start", &cid]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let (out, _) = ctl(&sock, &["logs", &cid]);
        if out.contains("hello from") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(out, "hello from hello\n", "the container's log");
    let (state, _) = ctl(
        &sock,
        &[
            "inspect",
            "-o",
            "go-template",
            "--template",
            "{{.status.state}}",
            &cid,
        ],
    );
    assert_eq!(state.trim(), "CONTAINER_RUNNING");
    ctl(&sock, &["rmp", "-f", &pod_id]);
    let (left, _) = ctl(&sock, &["pods", "-q"]);
    assert_eq!(left.trim(), "", "pods left after rmp -f");
}
