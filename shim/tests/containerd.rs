//! containerd 1.6 drives crust-shim as runtime `io.containerd.crust.v2`: runs
//! `bench/containerd-crust.sh` (private containerd, busybox image, `ctr run`, exec, kill,
//! delete) against this build's shim. Root only; needs containerd, ctr and python3.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn containerd_runs_containers_through_crust_shim() {
    if !common::is_root() {
        return;
    }
    for tool in ["containerd", "ctr", "python3"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is not installed (deploy/deps.sh installs it)"
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/containerd-crust.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("CRUST_SHIM_BIN", common::shim_bin())
        .env("SHIM_RUNTIME", common::runtime())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "containerd-crust.sh failed");
    assert_eq!(text.matches("PASS:").count(), 6, "{text}");
}
