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

/// Finds a workspace binary next to the test executable, building it if it is absent or
/// older than a source file of its package or of a workspace crate that package uses
/// (`cargo test` builds only the binaries of the packages it tests, so a crustd, shim or
/// crust-runc left from an earlier tree would be tested silently). Building rather than
/// only failing: cargo then decides exactly what changed, and `cargo test --workspace`
/// alone tests the tree as it is. Checked once per binary and test process.
pub fn workspace_bin(package: &str, bin: &str) -> std::path::PathBuf {
    static CHECKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(bin);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if checked.iter().any(|b| b == bin) && path.exists() {
        return path;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let newer = built.and_then(|t| stale::newer_source(root, package, t));
    if let Some(src) = &newer {
        eprintln!(
            "e2e: {} is older than {}: building it again",
            path.display(),
            src.display()
        );
    }
    if built.is_none() || newer.is_some() {
        // All of them, as deploy/test.sh does: `-p package` alone would resolve the
        // dependencies' features differently, and the next workspace build would redo it.
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--workspace", "--bins"])
                .status()
                .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
    }
    assert!(path.exists(), "{} not found after build", path.display());
    checked.push(bin.to_string());
    path
}

pub mod stale;
