//! The contract between crustd and crust-shim, defined once for both sides.
//!
//! crustd talks to a pod's shim over containerd's Task API (ttrpc, `containerd-shim-protos`);
//! this crate holds what that API leaves open and both processes must agree on. Version
//! [`VERSION`] of the contract is:
//!
//! - **Where a shim listens** ([`address`]): one shim per pod group, at
//!   `unix://<state-dir>/s/<hex(sha256("<daemon address>/<namespace>/<group>"))[..32]>.sock`,
//!   where the group is the pod's sandbox id, read by the shim from the bundle's
//!   [`GROUP_ANNOTATIONS`]. crustd derives it to bind the socket itself (and to find the
//!   shim again after a restart); crust-shim's `start` bootstrap derives it from a bundle.
//! - **Where the shim's runtime keeps its state** ([`runtime_state_root`]): the shim runs
//!   its OCI runtime with `--root <runtime-root>/<namespace>`; crustd lists that directory
//!   when it recovers an orphan shim's containers.
//! - **Annotations of `UpdateTaskRequest`** that are requests to the shim, not runtime
//!   settings: [`REOPEN_LOG_ANNOTATION`] and [`ATTACH_ANNOTATION`] (value: an
//!   [`AttachRequest`] in JSON).
//! - **Error codes** ([`Kind`]): the ttrpc status code of every failure the shim reports,
//!   and the kind crustd reads back from it; one table, so a kind survives the trip.
//! - **The version itself**: the shim answers `Connect` with
//!   `ConnectResponse.version` = [`version_string`]; crustd checks it with
//!   [`check_version`].
//!
//! Changing anything here that an older peer would read differently means a new
//! [`VERSION`].

mod attach;
mod kind;
mod socket;

pub use attach::{AttachError, AttachRequest};
pub use kind::Kind;
pub use socket::{address, runtime_state_root, socket_path, MAX_SOCKET_PATH, SOCKET_DIR};

/// The version of this contract.
pub const VERSION: u32 = 1;

/// `UpdateTaskRequest` annotation asking the shim to reopen the container's CRI log file
/// (kubelet's ReopenContainerLog, after it rotated the file). The value is ignored; the
/// request may carry no resources.
pub const REOPEN_LOG_ANNOTATION: &str = "io.crust.shim.reopen-log";

/// `UpdateTaskRequest` annotation subscribing FIFOs to a running container's output
/// (attach). The value is an [`AttachRequest`] in JSON. The FIFOs' read ends must be open
/// before the request is sent; the shim writes the container's raw output into them (as
/// well as into the CRI log) until the stream ends, then closes them; a reader that goes
/// away, or falls more than the shim's buffer behind, is dropped.
pub const ATTACH_ANNOTATION: &str = "io.crust.shim.attach";

/// The CRI annotation naming a container's pod (crustd writes it into every bundle).
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// Spec annotations naming the group (pod) whose shim serves a container, first match
/// wins; without one the container is its own group.
pub const GROUP_ANNOTATIONS: [&str; 2] = ["io.containerd.runc.v2.group", SANDBOX_ID_ANNOTATION];

/// What the shim answers in `ConnectResponse.version`: `crust-shim-contract/<VERSION>`
/// followed by the shim's own version.
pub fn version_string(shim_version: &str) -> String {
    format!("crust-shim-contract/{VERSION} crust-shim {shim_version}")
}

/// Whether a `ConnectResponse.version` speaks this contract: `Err` names the version it
/// speaks instead (or says it names none).
pub fn check_version(reported: &str) -> Result<(), String> {
    let spoken = reported
        .split_whitespace()
        .find_map(|w| w.strip_prefix("crust-shim-contract/"));
    match spoken {
        Some(v) if v == VERSION.to_string() => Ok(()),
        Some(v) => Err(format!(
            "shim speaks contract version {v}, this crustd speaks {VERSION}"
        )),
        None => Err(format!(
            "shim version {reported:?} names no crust-shim-contract version (this crustd speaks {VERSION})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_round_trip() {
        assert_eq!(check_version(&version_string("0.1.0")), Ok(()));
        for bad in ["crust-shim 0.1.0", "", "crust-shim-contract/0 crust-shim 9"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }
}
