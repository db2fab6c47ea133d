//! Harness for crust's end-to-end tests: a real local registry ([`registry`]), images
//! built here from Debian's busybox-static and pushed through the distribution API
//! ([`image`]), a scriptable fake registry for bad-input cases ([`fake`]), real `crustd`
//! processes with their own root/state/socket and cgroup parent ([`daemon`], [`cgroup`]), and the CRI client ([`cri`]).
//! Tests live in `tests/`; everything started here is torn down on drop, even on failure, and
//! what a test killed by SIGKILL left is removed by a later test's start-up [`sweep`].

pub mod bench;
pub mod bridge;
pub mod cgroup;
pub mod containerd;
pub mod cri;
pub mod daemon;
pub mod fake;
pub mod image;
pub mod pods;
pub mod prometheus;
pub mod registry;
pub mod scratch;
pub mod session;
pub mod sweep;

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// Whether the tests run as root (required for unpacking with ownership and overlay).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips the calling test with a reason when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Finds a workspace binary next to the test executable, building it if absent.
pub fn workspace_bin(package: &str, bin: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(bin);
    if !path.exists() {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-p", package, "--bin", bin])
                .status()
                .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {bin} failed"
        );
    }
    assert!(path.exists(), "{} not found after build", path.display());
    path
}
