//! Where a pod's shim listens and where its runtime keeps state.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The directory under the shim state dir holding the sockets (and each shim's log,
/// `<socket>.log`).
pub const SOCKET_DIR: &str = "s";

/// Longest socket path `sockaddr_un` takes.
pub const MAX_SOCKET_PATH: usize = 107;

/// The socket of `group`'s shim: `<state_dir>/s/<hex(sha256("<daemon_address>/<namespace>/<group>"))[..32]>.sock`.
/// `daemon_address` is what the shim gets as `-address`, `namespace` as `-namespace`.
pub fn socket_path(
    state_dir: &Path,
    daemon_address: &str,
    namespace: &str,
    group: &str,
) -> PathBuf {
    let mut h = Sha256::new();
    h.update(daemon_address.as_bytes());
    h.update(b"/");
    h.update(namespace.as_bytes());
    h.update(b"/");
    h.update(group.as_bytes());
    let hex = hex::encode(h.finalize());
    state_dir
        .join(SOCKET_DIR)
        .join(format!("{}.sock", &hex[..32]))
}

/// The ttrpc address of the socket at `path`: `unix://<path>`.
pub fn address(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// The `--root` the shim gives its runtime: `<runtime_root>/<namespace>` (one directory per
/// container below it, named by container id).
pub fn runtime_state_root(runtime_root: &Path, namespace: &str) -> PathBuf {
    runtime_root.join(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_a_pure_function_of_its_inputs() {
        let a = socket_path(
            Path::new("/run/crust/shims"),
            "/run/crust/crust.sock",
            "crust",
            "p1",
        );
        // sha256("/run/crust/crust.sock/crust/p1"), first 32 hex digits: fixed, so a
        // change of the derivation (which strands every running shim) fails here.
        let digest = hex::encode(Sha256::digest(b"/run/crust/crust.sock/crust/p1"));
        assert_eq!(
            a,
            Path::new("/run/crust/shims/s").join(format!("{}.sock", &digest[..32]))
        );
        assert_ne!(
            a,
            socket_path(
                Path::new("/run/crust/shims"),
                "/run/crust/crust.sock",
                "crust",
                "p2"
            )
        );
        assert_eq!(address(&a), format!("unix://{}", a.display()));
        assert_eq!(
            runtime_state_root(Path::new("/run/crust/runc"), "crust"),
            Path::new("/run/crust/runc/crust")
        );
    }
}
