//! CRI messages to and from the core's runtime types.

use std::collections::{BTreeMap, HashMap};

use crust_daemon::cdi::ANNOTATION_PREFIX as CDI_ANNOTATION_PREFIX;
use crust_daemon::network::{PortMapping, Protocol};
use crust_daemon::runtime::{
    ContainerRecord, ContainerSpec, ContainerState, DeviceSpec, Dns, GroupsPolicy, IdMapping,
    MountSpec, Namespaces, NsMode, PodRecord, PodSpec, PodState, Propagation, Resources, Seccomp,
    Security, UserNamespace,
};
use k8s_cri::v1 as cri;
use tonic::Status;

fn map(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn hmap(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A NamespaceMode value; one the CRI does not define is refused, naming `field` (read as
/// POD, it silently shared a namespace the caller may not have asked for).
fn ns_mode(v: i32, field: &str) -> Result<NsMode, Status> {
    match cri::NamespaceMode::try_from(v) {
        Ok(cri::NamespaceMode::Pod) => Ok(NsMode::Pod),
        Ok(cri::NamespaceMode::Container) => Ok(NsMode::Container),
        Ok(cri::NamespaceMode::Node) => Ok(NsMode::Node),
        Ok(cri::NamespaceMode::Target) => Ok(NsMode::Target),
        Err(_) => Err(Status::invalid_argument(format!(
            "linux.security_context.namespace_options.{field}: unknown NamespaceMode {v}"
        ))),
    }
}

/// The only mapping length kubelet sends (and the only one crust takes): 65536 ids, so
/// that every id a container image uses fits.
pub const USERNS_MAPPING_SIZE: u32 = 65536;

fn id_mapping(v: &[cri::IdMapping], what: &str) -> Result<IdMapping, Status> {
    let bad = |m: String| Status::invalid_argument(format!("userns_options: {what}: {m}"));
    let [m] = v else {
        return Err(bad(format!(
            "exactly one mapping is supported, got {}",
            v.len()
        )));
    };
    if m.container_id != 0 {
        return Err(bad(format!(
            "the mapping must start at container id 0, not {}",
            m.container_id
        )));
    }
    if m.length != USERNS_MAPPING_SIZE {
        return Err(bad(format!(
            "the mapping length must be {USERNS_MAPPING_SIZE}, not {}",
            m.length
        )));
    }
    if m.host_id == 0 || m.host_id.checked_add(m.length).is_none() {
        return Err(bad(format!(
            "host id {} with length {} is not an unprivileged range of host ids",
            m.host_id, m.length
        )));
    }
    Ok(IdMapping {
        container_id: m.container_id,
        host_id: m.host_id,
        size: m.length,
    })
}

/// `NamespaceOption.userns_options`: absent or mode NODE (no mappings) is the host's user
/// namespace; mode POD (with kubelet's one uid and one gid mapping) the pod's own. Anything
/// else is refused rather than run with the host's ids.
fn userns(u: Option<&cri::UserNamespace>) -> Result<Option<UserNamespace>, Status> {
    let Some(u) = u else { return Ok(None) };
    match cri::NamespaceMode::try_from(u.mode) {
        Ok(cri::NamespaceMode::Node) if u.uids.is_empty() && u.gids.is_empty() => Ok(None),
        Ok(cri::NamespaceMode::Node) => Err(Status::invalid_argument(
            "userns_options: mode NODE takes no uid/gid mappings",
        )),
        Ok(cri::NamespaceMode::Pod) => Ok(Some(UserNamespace {
            uid: id_mapping(&u.uids, "uids")?,
            gid: id_mapping(&u.gids, "gids")?,
        })),
        Ok(m) => Err(Status::invalid_argument(format!(
            "userns_options: mode {} is not supported (only POD and NODE)",
            m.as_str_name()
        ))),
        Err(_) => Err(Status::invalid_argument(format!(
            "userns_options: unknown mode {}",
            u.mode
        ))),
    }
}

/// The core's user namespace back as CRI `userns_options`.
fn cri_userns(u: Option<&UserNamespace>) -> cri::UserNamespace {
    let map = |m: &IdMapping| cri::IdMapping {
        host_id: m.host_id,
        container_id: m.container_id,
        length: m.size,
    };
    match u {
        Some(u) => cri::UserNamespace {
            mode: cri::NamespaceMode::Pod as i32,
            uids: vec![map(&u.uid)],
            gids: vec![map(&u.gid)],
        },
        None => cri::UserNamespace {
            mode: cri::NamespaceMode::Node as i32,
            ..Default::default()
        },
    }
}

fn namespaces(o: Option<&cri::NamespaceOption>) -> Result<Namespaces, Status> {
    match o {
        Some(o) => Ok(Namespaces {
            network: ns_mode(o.network, "network")?,
            pid: ns_mode(o.pid, "pid")?,
            ipc: ns_mode(o.ipc, "ipc")?,
            target_id: o.target_id.clone(),
            user: userns(o.userns_options.as_ref())?,
        }),
        // The CRI enum's zero value is POD, for every namespace.
        None => Ok(Namespaces::default()),
    }
}

/// RunPodSandbox's config.
pub fn pod_spec(c: cri::PodSandboxConfig, handler: String) -> Result<PodSpec, Status> {
    let md = c
        .metadata
        .ok_or_else(|| crate::status::missing("sandbox config metadata"))?;
    let linux = c.linux.unwrap_or_default();
    let sc = linux.security_context.unwrap_or_default();
    // Checked only: the pod runs no process of the user's; kubelet sets the policy on
    // each container's security context too, where it applies.
    groups_policy(sc.supplemental_groups_policy, "pod")?;
    let mut ports = Vec::new();
    for (i, p) in c.port_mappings.iter().enumerate() {
        // An unknown value is refused (read as TCP, it mapped a port the caller did not ask
        // for), also on a mapping without a host port.
        let protocol = match cri::Protocol::try_from(p.protocol) {
            Ok(cri::Protocol::Tcp) => Protocol::Tcp,
            Ok(cri::Protocol::Udp) => Protocol::Udp,
            Ok(cri::Protocol::Sctp) => Protocol::Sctp,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "port_mappings[{i}].protocol: unknown Protocol {}",
                    p.protocol
                )))
            }
        };
        let port = |v: i32, what: &str| {
            u16::try_from(v)
                .map_err(|_| Status::invalid_argument(format!("{what} {v} is out of range")))
        };
        if p.host_port == 0 {
            continue;
        }
        ports.push(PortMapping {
            host_port: port(p.host_port, "host port")?,
            container_port: port(p.container_port, "container port")?,
            protocol,
            host_ip: if p.host_ip.is_empty() {
                None
            } else {
                Some(p.host_ip.parse().map_err(|_| {
                    Status::invalid_argument(format!("host IP {:?} is not an address", p.host_ip))
                })?)
            },
        });
    }
    Ok(PodSpec {
        name: md.name,
        uid: md.uid,
        namespace: md.namespace,
        attempt: md.attempt,
        hostname: c.hostname,
        log_directory: c.log_directory,
        dns: c.dns_config.map(|d| Dns {
            servers: d.servers,
            searches: d.searches,
            options: d.options,
        }),
        port_mappings: ports,
        labels: map(&c.labels),
        annotations: map(&c.annotations),
        cgroup_parent: linux.cgroup_parent,
        sysctls: map(&linux.sysctls),
        namespaces: namespaces(sc.namespace_options.as_ref())?,
        privileged: sc.privileged,
        runtime_handler: handler,
    })
}

fn seccomp(profile: Option<&cri::SecurityProfile>, legacy: &str) -> Result<Seccomp, Status> {
    if let Some(p) = profile {
        return match cri::security_profile::ProfileType::try_from(p.profile_type) {
            Ok(cri::security_profile::ProfileType::RuntimeDefault) => Ok(Seccomp::RuntimeDefault),
            Ok(cri::security_profile::ProfileType::Unconfined) => Ok(Seccomp::Unconfined),
            Ok(cri::security_profile::ProfileType::Localhost) => {
                Ok(Seccomp::Localhost(p.localhost_ref.clone()))
            }
            Err(_) => Err(Status::invalid_argument(format!(
                "unknown seccomp profile type {}",
                p.profile_type
            ))),
        };
    }
    match legacy {
        "" | "unconfined" => Ok(Seccomp::Unconfined),
        "runtime/default" | "docker/default" => Ok(Seccomp::RuntimeDefault),
        l => match l.strip_prefix("localhost/") {
            Some(path) => Ok(Seccomp::Localhost(path.to_string())),
            None => Err(Status::invalid_argument(format!(
                "unknown seccomp profile {l:?}"
            ))),
        },
    }
}

/// A `supplemental_groups_policy` of the `what` (pod or container) security context.
fn groups_policy(v: i32, what: &str) -> Result<GroupsPolicy, Status> {
    match cri::SupplementalGroupsPolicy::try_from(v) {
        Ok(cri::SupplementalGroupsPolicy::Merge) => Ok(GroupsPolicy::Merge),
        Ok(cri::SupplementalGroupsPolicy::Strict) => Ok(GroupsPolicy::Strict),
        Err(_) => Err(Status::invalid_argument(format!(
            "{what} supplemental_groups_policy {v} is unknown"
        ))),
    }
}

/// LinuxContainerResources to the core's.
pub fn resources(r: Option<&cri::LinuxContainerResources>) -> Resources {
    let Some(r) = r else {
        return Resources::default();
    };
    Resources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit_in_bytes: r.memory_limit_in_bytes,
        memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
        oom_score_adj: r.oom_score_adj,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        hugepage_limits: r
            .hugepage_limits
            .iter()
            .map(|h| (h.page_size.clone(), h.limit))
            .collect(),
        unified: map(&r.unified),
    }
}

/// CreateContainer's config.
#[allow(deprecated)] // seccomp_profile_path: older kubelets still send it
pub fn container_spec(c: cri::ContainerConfig) -> Result<ContainerSpec, Status> {
    // An empty name made the entry "=value", which no program can read back.
    if let Some(kv) = c.envs.iter().find(|kv| kv.key.is_empty()) {
        return Err(Status::invalid_argument(format!(
            "envs: a variable with value {:?} has an empty name",
            kv.value
        )));
    }
    let md = c
        .metadata
        .ok_or_else(|| crate::status::missing("container config metadata"))?;
    let image = c.image.map(|i| i.image).unwrap_or_default();
    let linux = c.linux.unwrap_or_default();
    let sc = linux.security_context.unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let groups = groups_policy(sc.supplemental_groups_policy, "container")?;
    for k in c
        .annotations
        .keys()
        .filter(|k| k.starts_with(CDI_ANNOTATION_PREFIX))
    {
        if k.len() == CDI_ANNOTATION_PREFIX.len() {
            return Err(Status::invalid_argument(format!(
                "CDI device annotation {k:?} has no name"
            )));
        }
    }
    let mut mounts = Vec::new();
    for m in c.mounts {
        let propagation = match cri::MountPropagation::try_from(m.propagation) {
            Ok(cri::MountPropagation::PropagationPrivate) => Propagation::Private,
            Ok(cri::MountPropagation::PropagationHostToContainer) => Propagation::HostToContainer,
            Ok(cri::MountPropagation::PropagationBidirectional) => Propagation::Bidirectional,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown mount propagation {}",
                    m.propagation
                )))
            }
        };
        // An image volume: the image kubelet pulled, always read-only.
        let image = m.image.map(|i| i.image).unwrap_or_default();
        mounts.push(MountSpec {
            container_path: m.container_path,
            host_path: m.host_path,
            readonly: m.readonly || !image.is_empty(),
            propagation,
            recursive_read_only: m.recursive_read_only,
            image,
        });
    }
    Ok(ContainerSpec {
        name: md.name,
        attempt: md.attempt,
        image,
        command: c.command,
        args: c.args,
        working_dir: c.working_dir,
        envs: c.envs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        mounts,
        devices: c
            .devices
            .into_iter()
            .map(|d| DeviceSpec {
                container_path: d.container_path,
                host_path: d.host_path,
                permissions: d.permissions,
            })
            .collect(),
        labels: map(&c.labels),
        annotations: map(&c.annotations),
        cdi_devices: c.cdi_devices.into_iter().map(|d| d.name).collect(),
        log_path: c.log_path,
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        resources: resources(linux.resources.as_ref()),
        security: Security {
            add_capabilities: caps.add_capabilities,
            drop_capabilities: caps.drop_capabilities,
            privileged: sc.privileged,
            // No NamespaceOption: every mode is the enum's zero, POD (as containerd).
            namespaces: namespaces(sc.namespace_options.as_ref())?,
            run_as_user: sc.run_as_user.map(|v| v.value),
            run_as_group: sc.run_as_group.map(|v| v.value),
            run_as_username: sc.run_as_username,
            readonly_rootfs: sc.readonly_rootfs,
            supplemental_groups: sc.supplemental_groups,
            supplemental_groups_policy: groups,
            no_new_privs: sc.no_new_privs,
            masked_paths: sc.masked_paths,
            readonly_paths: sc.readonly_paths,
            seccomp: seccomp(sc.seccomp.as_ref(), &sc.seccomp_profile_path)?,
        },
    })
}

/// Pod metadata.
pub fn pod_metadata(p: &PodRecord) -> cri::PodSandboxMetadata {
    cri::PodSandboxMetadata {
        name: p.spec.name.clone(),
        uid: p.spec.uid.clone(),
        namespace: p.spec.namespace.clone(),
        attempt: p.spec.attempt,
    }
}

/// Pod state.
pub fn pod_state(p: &PodRecord) -> i32 {
    match p.state {
        PodState::Ready => cri::PodSandboxState::SandboxReady as i32,
        PodState::NotReady => cri::PodSandboxState::SandboxNotready as i32,
    }
}

/// A pod for ListPodSandbox.
pub fn pod(p: &PodRecord) -> cri::PodSandbox {
    cri::PodSandbox {
        id: p.id.clone(),
        metadata: Some(pod_metadata(p)),
        state: pod_state(p),
        created_at: p.created_at,
        labels: hmap(&p.spec.labels),
        annotations: hmap(&p.spec.annotations),
        runtime_handler: p.spec.runtime_handler.clone(),
    }
}

fn cri_ns(m: NsMode) -> i32 {
    (match m {
        NsMode::Pod => cri::NamespaceMode::Pod,
        NsMode::Container => cri::NamespaceMode::Container,
        NsMode::Node => cri::NamespaceMode::Node,
        NsMode::Target => cri::NamespaceMode::Target,
    }) as i32
}

/// PodSandboxStatus.
pub fn pod_status(p: &PodRecord) -> cri::PodSandboxStatus {
    let ns = &p.spec.namespaces;
    cri::PodSandboxStatus {
        id: p.id.clone(),
        metadata: Some(pod_metadata(p)),
        state: pod_state(p),
        created_at: p.created_at,
        network: Some(cri::PodSandboxNetworkStatus {
            ip: p.ips.first().cloned().unwrap_or_default(),
            additional_ips: p
                .ips
                .iter()
                .skip(1)
                .map(|ip| cri::PodIp { ip: ip.clone() })
                .collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(cri::NamespaceOption {
                    network: cri_ns(ns.network),
                    pid: cri_ns(ns.pid),
                    ipc: cri_ns(ns.ipc),
                    target_id: ns.target_id.clone(),
                    userns_options: Some(cri_userns(ns.user.as_ref())),
                }),
            }),
        }),
        labels: hmap(&p.spec.labels),
        annotations: hmap(&p.spec.annotations),
        runtime_handler: p.spec.runtime_handler.clone(),
    }
}

/// Container state.
pub fn container_state(c: &ContainerRecord) -> i32 {
    (match c.state {
        ContainerState::Created => cri::ContainerState::ContainerCreated,
        ContainerState::Running => cri::ContainerState::ContainerRunning,
        ContainerState::Exited => cri::ContainerState::ContainerExited,
        ContainerState::Unknown => cri::ContainerState::ContainerUnknown,
    }) as i32
}

pub fn container_metadata(c: &ContainerRecord) -> cri::ContainerMetadata {
    cri::ContainerMetadata {
        name: c.spec.name.clone(),
        attempt: c.spec.attempt,
    }
}

fn image_spec(c: &ContainerRecord) -> cri::ImageSpec {
    cri::ImageSpec {
        image: c.spec.image.clone(),
        ..Default::default()
    }
}

/// A container for ListContainers.
pub fn container(c: &ContainerRecord) -> cri::Container {
    cri::Container {
        id: c.id.clone(),
        pod_sandbox_id: c.pod_id.clone(),
        metadata: Some(container_metadata(c)),
        image: Some(image_spec(c)),
        image_ref: c.image_ref.clone(),
        state: container_state(c),
        created_at: c.created_at,
        labels: hmap(&c.spec.labels),
        annotations: hmap(&c.spec.annotations),
        image_id: c.image_id.clone(),
    }
}

/// ContainerStatus.
pub fn container_status(c: &ContainerRecord) -> cri::ContainerStatus {
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(container_metadata(c)),
        state: container_state(c),
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        exit_code: c.exit_code,
        image: Some(image_spec(c)),
        image_ref: c.image_ref.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        labels: hmap(&c.spec.labels),
        annotations: hmap(&c.spec.annotations),
        mounts: c
            .mounts
            .iter()
            .map(|m| cri::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                propagation: match m.propagation {
                    Propagation::Private => cri::MountPropagation::PropagationPrivate,
                    Propagation::HostToContainer => {
                        cri::MountPropagation::PropagationHostToContainer
                    }
                    Propagation::Bidirectional => cri::MountPropagation::PropagationBidirectional,
                } as i32,
                recursive_read_only: m.recursive_read_only,
                image: (!m.image.is_empty()).then(|| cri::ImageSpec {
                    image: m.image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        log_path: c.log_path.clone(),
        resources: Some(cri::ContainerResources {
            linux: Some(cri::LinuxContainerResources {
                cpu_period: c.spec.resources.cpu_period,
                cpu_quota: c.spec.resources.cpu_quota,
                cpu_shares: c.spec.resources.cpu_shares,
                memory_limit_in_bytes: c.spec.resources.memory_limit_in_bytes,
                oom_score_adj: c.spec.resources.oom_score_adj,
                cpuset_cpus: c.spec.resources.cpuset_cpus.clone(),
                cpuset_mems: c.spec.resources.cpuset_mems.clone(),
                memory_swap_limit_in_bytes: c.spec.resources.memory_swap_limit_in_bytes,
                ..Default::default()
            }),
            windows: None,
        }),
        image_id: c.image_id.clone(),
        user: c.user.as_ref().map(|u| cri::ContainerUser {
            linux: Some(cri::LinuxContainerUser {
                uid: u.uid.into(),
                gid: u.gid.into(),
                supplemental_groups: u.additional_gids.iter().map(|&g| g.into()).collect(),
            }),
        }),
    }
}

/// Whether `labels` has every pair of `selector`.
pub fn matches(labels: &BTreeMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
#[path = "convert_tests/mod.rs"]
mod tests;
