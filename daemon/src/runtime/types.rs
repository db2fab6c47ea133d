//! Domain types of the runtime: what a pod sandbox and a container are asked to be (the
//! CRI front translates its messages into these), and the records persisted for them.
//!
//! On-disk format: [`PodRecord`] and [`ContainerRecord`] are stored as JSON in the
//! metadata tables `pods` and `containers`, each carrying `version` =
//! [`RECORD_VERSION`]; a record with a newer version is refused at load.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::network::PortMapping;

/// Version of the pod and container records this code writes.
pub const RECORD_VERSION: u32 = 1;

/// Where a container's namespace of one kind comes from (CRI `NamespaceMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NsMode {
    /// Shared by the pod's containers.
    #[default]
    Pod,
    /// The container's own.
    Container,
    /// The host's.
    Node,
    /// Another container's (`target_id`).
    Target,
}

/// One id mapping of a user namespace: `size` ids from `container_id` inside are
/// `host_id...` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    /// First id inside.
    pub container_id: u32,
    /// First id on the host.
    pub host_id: u32,
    /// Number of ids.
    pub size: u32,
}

/// The pod's own user namespace (CRI `userns_options` mode POD, `hostUsers: false`): one
/// uid and one gid mapping, root inside mapped to an unprivileged host range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNamespace {
    /// The uid mapping.
    pub uid: IdMapping,
    /// The gid mapping.
    pub gid: IdMapping,
}

/// Namespace choices for network, pid, ipc and user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    /// Network.
    pub network: NsMode,
    /// Pid (CRI default: Pod).
    pub pid: NsMode,
    /// IPC.
    pub ipc: NsMode,
    /// Container whose namespaces `Target` refers to.
    pub target_id: String,
    /// The pod's user namespace; `None` is the host's (mode NODE, or no userns_options).
    /// Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserNamespace>,
}

/// DNS settings for the pod's resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Nameservers.
    pub servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// Options.
    pub options: Vec<String>,
}

/// What RunPodSandbox asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSpec {
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Attempt number.
    pub attempt: u32,
    /// Hostname (empty: the pod name).
    pub hostname: String,
    /// Absolute directory for the containers' logs (may be empty).
    pub log_directory: String,
    /// DNS; `None` copies the host's resolv.conf.
    pub dns: Option<Dns>,
    /// Port mappings for the network.
    pub port_mappings: Vec<PortMapping>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Cgroup parent (cgroupfs path); empty: `/crust/<pod id>`.
    pub cgroup_parent: String,
    /// Namespaced sysctls for every container.
    pub sysctls: BTreeMap<String, String>,
    /// Namespaces.
    pub namespaces: Namespaces,
    /// Privileged pod.
    pub privileged: bool,
    /// Runtime handler (only the default is supported).
    pub runtime_handler: String,
}

/// Lifecycle of a pod sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodState {
    /// Namespaces and network set up.
    Ready,
    /// Stopped (or half-created).
    NotReady,
}

/// A pod sandbox as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// Sandbox id (64 hex).
    pub id: String,
    /// What was asked.
    pub spec: PodSpec,
    /// State.
    pub state: PodState,
    /// Creation time, unix nanoseconds.
    pub created_at: i64,
    /// Pod IPs, primary first.
    pub ips: Vec<String>,
    /// Pinned network namespace (absent with host network).
    pub netns: Option<PathBuf>,
    /// Pinned IPC namespace (absent with host IPC).
    pub ipcns: Option<PathBuf>,
    /// Pinned UTS namespace (absent with host network).
    pub utsns: Option<PathBuf>,
    /// The pod's files: hostname, hosts, resolv.conf, shm.
    pub dir: PathBuf,
    /// The cgroup parent containers are placed under.
    pub cgroup_parent: String,
    /// Address of the pod's shim once started.
    pub shim_address: Option<String>,
    /// Pinned shared PID namespace (pid=POD pods), held by the pod init.
    #[serde(default)]
    pub pidns: Option<PathBuf>,
    /// Host pid of the pod init holding [`PodRecord::pidns`].
    #[serde(default)]
    pub pod_init_pid: u32,
    /// The cgroup driver the pod was made with (records without one: cgroupfs).
    #[serde(default)]
    pub cgroup_driver: crate::runtime::cgroup::CgroupDriver,
    /// Pinned user namespace (pods with [`Namespaces::user`]); it owns the pod's net, ipc,
    /// uts and pid namespaces.
    #[serde(default)]
    pub userns: Option<PathBuf>,
}

/// Mount propagation (CRI `MountPropagation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    /// rprivate.
    #[default]
    Private,
    /// rslave.
    HostToContainer,
    /// rshared.
    Bidirectional,
}

/// A bind mount of a host path, or an image volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Path in the container.
    pub container_path: String,
    /// Path on the host (empty for an image volume).
    pub host_path: String,
    /// Read-only.
    pub readonly: bool,
    /// Propagation.
    pub propagation: Propagation,
    /// Read-only recursively (every submount too, `mount_setattr(2)` with
    /// `AT_RECURSIVE`): needs `readonly` and private propagation.
    #[serde(default)]
    pub recursive_read_only: bool,
    /// An image volume: the image (reference or id, as CRI `Mount.image`) whose
    /// unpacked layers are mounted read-only at `container_path`; empty for a bind mount.
    #[serde(default)]
    pub image: String,
}

/// A device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Path in the container.
    pub container_path: String,
    /// Host device.
    pub host_path: String,
    /// `rwm` subset.
    pub permissions: String,
}

/// Resources (CRI `LinuxContainerResources`); zero means unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CFS period.
    pub cpu_period: i64,
    /// CFS quota.
    pub cpu_quota: i64,
    /// Shares.
    pub cpu_shares: i64,
    /// Memory limit.
    pub memory_limit_in_bytes: i64,
    /// Memory+swap limit.
    pub memory_swap_limit_in_bytes: i64,
    /// OOM score adjustment.
    pub oom_score_adj: i64,
    /// cpuset cpus.
    pub cpuset_cpus: String,
    /// cpuset mems.
    pub cpuset_mems: String,
    /// Hugepage limits: page size → bytes.
    pub hugepage_limits: BTreeMap<String, u64>,
    /// cgroup v2 unified settings.
    pub unified: BTreeMap<String, String>,
}

/// Seccomp choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seccomp {
    /// No filter.
    #[default]
    Unconfined,
    /// The built-in default profile.
    RuntimeDefault,
    /// A profile file on the host (absolute path).
    Localhost(String),
}

/// How a container's supplemental groups are made (CRI `SupplementalGroupsPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupsPolicy {
    /// The request's groups plus those the image's `/etc/group` gives the user.
    #[default]
    Merge,
    /// The request's groups only.
    Strict,
}

/// The identity a container's first process starts with (reported in ContainerStatus).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUser {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplemental groups, as set with setgroups(2).
    pub additional_gids: Vec<u32>,
}

/// Security context of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Capabilities to add (`CAP_` prefix optional, `ALL` allowed).
    pub add_capabilities: Vec<String>,
    /// Capabilities to drop.
    pub drop_capabilities: Vec<String>,
    /// Privileged.
    pub privileged: bool,
    /// Namespace choices.
    pub namespaces: Namespaces,
    /// uid.
    pub run_as_user: Option<i64>,
    /// gid.
    pub run_as_group: Option<i64>,
    /// User name resolved in the image's /etc/passwd.
    pub run_as_username: String,
    /// Read-only rootfs.
    pub readonly_rootfs: bool,
    /// Extra groups.
    pub supplemental_groups: Vec<i64>,
    /// Whether the groups of the image's `/etc/group` are added to these.
    #[serde(default)]
    pub supplemental_groups_policy: GroupsPolicy,
    /// no_new_privs.
    pub no_new_privs: bool,
    /// Masked paths (empty: defaults).
    pub masked_paths: Vec<String>,
    /// Read-only paths (empty: defaults).
    pub readonly_paths: Vec<String>,
    /// Seccomp.
    pub seccomp: Seccomp,
}

/// What CreateContainer asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Name.
    pub name: String,
    /// Attempt.
    pub attempt: u32,
    /// Image spec as given.
    pub image: String,
    /// Entrypoint override.
    pub command: Vec<String>,
    /// Cmd override.
    pub args: Vec<String>,
    /// Working directory override.
    pub working_dir: String,
    /// Environment, in order.
    pub envs: Vec<(String, String)>,
    /// Bind mounts.
    pub mounts: Vec<MountSpec>,
    /// Devices.
    pub devices: Vec<DeviceSpec>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// CDI devices asked for (qualified names, `CDI_devices` then the `cdi.k8s.io/`
    /// annotations'), resolved at create.
    #[serde(default)]
    pub cdi_devices: Vec<String>,
    /// Log path relative to the pod's log directory.
    pub log_path: String,
    /// Keep stdin open.
    pub stdin: bool,
    /// Close stdin after the first attach.
    pub stdin_once: bool,
    /// Terminal.
    pub tty: bool,
    /// Resources.
    pub resources: Resources,
    /// Security.
    pub security: Security,
}

/// Lifecycle of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// Lost track (its shim died without reporting).
    Unknown,
}

/// A container as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// Container id (64 hex).
    pub id: String,
    /// Its pod.
    pub pod_id: String,
    /// What was asked.
    pub spec: ContainerSpec,
    /// Image id (config digest).
    pub image_id: String,
    /// Image reference to report (repo digest or name).
    pub image_ref: String,
    /// State.
    pub state: ContainerState,
    /// Unix nanoseconds.
    pub created_at: i64,
    /// Unix nanoseconds (0: never).
    pub started_at: i64,
    /// Unix nanoseconds (0: not yet).
    pub finished_at: i64,
    /// Exit code.
    pub exit_code: i32,
    /// Reason (Completed, Error, OOMKilled).
    pub reason: String,
    /// Message.
    pub message: String,
    /// Init pid while running.
    pub pid: u32,
    /// Writable snapshot key.
    pub snapshot: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Full log path (empty: no log).
    pub log_path: String,
    /// Stop signal from the image.
    pub stop_signal: String,
    /// The container's cgroup directory (from the hierarchy root; with the systemd driver,
    /// its scope's).
    pub cgroup_path: String,
    /// Whether its shim reported an OOM kill in the container's cgroup (`TaskOOM`): what
    /// tells an OOM kill once the container's own cgroup is gone (a systemd scope vanishes
    /// with its last process, `memory.events` with it).
    #[serde(default)]
    pub oom_reported: bool,
    /// Mounts as applied (for status).
    pub mounts: Vec<MountSpec>,
    /// The identity its process starts with (absent in records of older crustd).
    #[serde(default)]
    pub user: Option<ProcessUser>,
    /// Ids of the images its image volumes mount (RemoveImage refuses them).
    #[serde(default)]
    pub image_volumes: Vec<String>,
}

/// Kinds of container events (CRI `ContainerEventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Created,
    /// Started.
    Started,
    /// Stopped (exited).
    Stopped,
    /// Deleted.
    Deleted,
}

/// A container lifecycle event.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    /// Container id.
    pub container_id: String,
    /// What happened.
    pub kind: EventKind,
    /// Unix nanoseconds.
    pub at: i64,
    /// The pod id.
    pub pod_id: String,
}

/// Resource usage of one container (or, in [`PodUsage`], of a pod's cgroup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    /// Unix nanoseconds.
    pub timestamp: i64,
    /// Cumulative CPU nanoseconds.
    pub cpu_ns: u64,
    /// CPU use in nanocores over the newest window of the sample history every caller
    /// shares (see `runtime::stats`); `None` until the history has two samples, and for a
    /// container that is not running.
    pub cpu_nano_cores: Option<u64>,
    /// Memory working set (usage minus inactive file pages).
    pub memory_working_set: u64,
    /// Memory usage.
    pub memory_usage: u64,
    /// Memory limit minus working set; `None` without a limit.
    pub memory_available: Option<u64>,
    /// Anonymous memory.
    pub memory_rss: u64,
    /// Page faults.
    pub page_faults: u64,
    /// Major page faults.
    pub major_page_faults: u64,
    /// Swap in use; `None` without swap accounting.
    pub swap_usage: Option<u64>,
    /// Writable layer bytes.
    pub fs_bytes: u64,
    /// Writable layer inodes.
    pub fs_inodes: u64,
}

/// Traffic counters of a pod's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkUsage {
    /// Unix nanoseconds.
    pub timestamp: i64,
    /// Every interface but loopback, in the kernel's order (never empty).
    pub interfaces: Vec<crate::network::link_stats::LinkStats>,
}

/// Resource usage of a pod sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    /// The pod's cgroup (CPU and memory of everything in the pod; no writable layer).
    pub usage: ContainerUsage,
    /// Processes in the pod's cgroup (`None` when it cannot be read).
    pub process_count: Option<u64>,
    /// Its network (`None` with the host network, when stopped, or with loopback only).
    pub network: Option<NetworkUsage>,
    /// Each container and its usage.
    pub containers: Vec<(ContainerRecord, ContainerUsage)>,
}
