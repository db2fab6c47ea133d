//! What an unprivileged local user can see of crustd's root and state (CVE-2021-41103
//! class): with a container holding a secret in its environment, uid 65534 reads nothing
//! that holds it and lists neither images' layers nor bundles.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;

use crust_e2e::pods::{self, container_config, pod_config};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// Runs `script` with `sh -c` as uid/gid 65534 (nobody); (exit status, stdout).
fn as_nobody(script: &str) -> (i32, String) {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run sh as nobody");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn root_and_state_keep_secrets_from_other_users() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = pods::setup().await;
    // As on a node, where /var/lib and /run are world-traversable: only crustd's own modes
    // may protect what is below.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = format!("s3cret-{}", std::process::id());
    let pc = pod_config("perms", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let mut cc = container_config("holder", &img, &["/bin/sleep", "1000"]);
    cc.envs = vec![kc::KeyValue {
        key: "DB_PASSWORD".into(),
        value: secret.clone(),
    }];
    let c = pods::run_container(&mut rt, &pod, &pc, cc)
        .await
        .expect("create+start");
    let root = d.root();
    let state = d.dir.path().join("state");
    // The secret reached crustd's files (or this test proves nothing).
    let found = Command::new("grep")
        .args(["-rlsF", &secret])
        .arg(&root)
        .arg(&state)
        .output()
        .unwrap();
    let as_root = String::from_utf8_lossy(&found.stdout).into_owned();
    assert!(
        as_root.contains("config.json"),
        "secret not in a bundle: {as_root}"
    );

    let (_, seen) = as_nobody(&format!(
        "grep -rlsF '{secret}' '{}' '{}'",
        root.display(),
        state.display()
    ));
    assert_eq!(seen, "", "uid 65534 can read files holding the secret");
    for dir in [
        root.join("snapshots"),
        root.join("content/blobs/sha256"),
        state.join("bundles"),
        state.join("bundles").join(&c),
    ] {
        let (rc, out) = as_nobody(&format!("ls -A '{}'", dir.display()));
        assert_ne!(rc, 0, "uid 65534 lists {}: {out}", dir.display());
    }
    let (_, readable) = as_nobody(&format!(
        "find '{}' '{}' -readable -type f 2>/dev/null",
        root.display(),
        state.display()
    ));
    assert_eq!(readable, "", "files uid 65534 can read");
    for dir in [&root, &state] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o066, 0, "{} is {mode:o}", dir.display());
    }
    let cfg = state.join("bundles").join(&c).join("config.json");
    let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", cfg.display());

    pods::remove_pod(&mut rt, &pod).await;
}
