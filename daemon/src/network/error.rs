//! The network module's error enum: one variant per failed operation, carrying the pod,
//! path or plugin involved, and its [`ErrorKind`] for the CRI front.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ErrorKind, Kind};

/// Everything that can go wrong setting up or tearing down pod networking.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A pod id that is not a single safe path component.
    #[error("invalid pod id {0:?}: must be 1-128 characters of [A-Za-z0-9_.-], not . or ..")]
    InvalidPodId(String),
    /// Other bad input from the caller.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// What was wrong.
        what: String,
        /// Why.
        reason: String,
    },
    /// Creating or pinning a network namespace failed.
    #[error("create network namespace {path}")]
    CreateNetns {
        /// Pin path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Unpinning a network namespace failed.
    #[error("remove network namespace {path}")]
    RemoveNetns {
        /// Pin path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Entering a network namespace failed.
    #[error("enter network namespace {path}")]
    EnterNetns {
        /// Namespace path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Reading the interface counters of a network namespace failed.
    #[error("read interface counters in network namespace {path}")]
    LinkStats {
        /// Namespace path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("netlink {op} {target}")]
    Netlink {
        /// The request (`add veth`, `set up`, ...).
        op: &'static str,
        /// Link or pod it was for.
        target: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// No free address left in the subnet.
    #[error("allocate address for pod {pod}: no free address in {subnet}")]
    IpamExhausted {
        /// Pod id.
        pod: String,
        /// Subnet.
        subnet: String,
    },
    /// Reading or writing persisted state (IPAM, pod records, CNI cache) failed.
    #[error("network state {path}")]
    State {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A hostPort is already mapped to another pod.
    #[error("hostPort {port}/{protocol} for pod {pod} is already in use by another pod")]
    HostPortInUse {
        /// Pod id.
        pod: String,
        /// Port.
        port: u16,
        /// Protocol.
        protocol: &'static str,
    },
    /// Running `nft` failed.
    #[error("nft for {target}: {stderr}")]
    Nft {
        /// Pod or bridge.
        target: String,
        /// nft's diagnostic output.
        stderr: String,
    },
    /// Running `nft` could not start.
    #[error("run nft for {target}")]
    NftExec {
        /// Pod or bridge.
        target: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Writing a sysctl failed.
    #[error("set sysctl {path}")]
    Sysctl {
        /// /proc/sys path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A CNI network configuration could not be loaded.
    #[error("load CNI config {path}: {reason}")]
    CniConfig {
        /// Config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A CNI plugin binary is not in any bin dir.
    #[error("CNI plugin {plugin:?} not found in {dirs:?}")]
    CniPluginNotFound {
        /// Plugin type.
        plugin: String,
        /// Directories searched.
        dirs: Vec<PathBuf>,
    },
    /// A CNI plugin could not be run.
    #[error("run CNI plugin {plugin} {command} for {container}")]
    CniExec {
        /// Plugin type.
        plugin: String,
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// Container (sandbox) id.
        container: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A CNI plugin returned an error result.
    #[error("CNI plugin {plugin} {command} for {container} failed: code {code}: {msg}{}",
        if details.is_empty() { String::new() } else { format!(" ({details})") })]
    CniPlugin {
        /// Plugin type.
        plugin: String,
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// Container (sandbox) id.
        container: String,
        /// CNI error code.
        code: u32,
        /// CNI error message.
        msg: String,
        /// CNI error details.
        details: String,
    },
    /// A CNI plugin did not finish in time (it was killed).
    #[error("CNI plugin {plugin} {command} for {container} timed out after {timeout:?}")]
    CniTimeout {
        /// Plugin type.
        plugin: String,
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// Container (sandbox) id.
        container: String,
        /// The limit.
        timeout: Duration,
    },
    /// A CNI plugin printed a result crust cannot parse.
    #[error("CNI plugin {plugin} {command} for {container} returned a bad result: {reason}")]
    CniResult {
        /// Plugin type.
        plugin: String,
        /// ADD, DEL or CHECK.
        command: &'static str,
        /// Container (sandbox) id.
        container: String,
        /// What is wrong.
        reason: String,
    },
    /// A pod's network is not (any more) as it was set up.
    #[error("check network of pod {pod}: {reason}")]
    CheckFailed {
        /// Pod id.
        pod: String,
        /// What is wrong.
        reason: String,
    },
    /// No network can be set up (see [`super::NetworkManager::status`]).
    #[error("network not ready: {0}")]
    NotReady(String),
    /// Watching the CNI config dir failed.
    #[error("watch CNI config dir {path}")]
    Watch {
        /// Directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl Kind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::InvalidPodId(_) | NetworkError::InvalidArgument { .. } => {
                ErrorKind::InvalidArgument
            }
            NetworkError::HostPortInUse { .. } => ErrorKind::AlreadyExists,
            NetworkError::NotReady(_)
            | NetworkError::IpamExhausted { .. }
            | NetworkError::CheckFailed { .. } => ErrorKind::FailedPrecondition,
            NetworkError::CniTimeout { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// Result alias of the module.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// The negative errno of a netlink error, if it is one.
pub(crate) fn netlink_errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}
