//! RunPodSandbox: validate, launch the pod's shim, pin namespaces, attach the network,
//! write the pod files.
//! The record is written first (NotReady), so a crash half-way is cleaned by recovery;
//! a failure undoes what was done and forgets the record.

use std::path::Path;

use super::{files, init, userns};
use crate::network::{netns, PodNetworkRequest};
use crate::runtime::cgroup::{self, CgroupDriver};
use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::types::{NsMode, PodRecord, PodSpec, PodState, RECORD_VERSION};
use crate::runtime::{new_id, now, shim, Runtime};

/// Runtime handlers crust answers to.
pub const HANDLERS: &[&str] = &["", "crust", "runc"];

impl Runtime {
    /// Creates a ready pod sandbox; returns its id.
    pub async fn run_pod(&self, spec: PodSpec) -> Result<String> {
        for (v, what) in [
            (&spec.name, "metadata.name"),
            (&spec.uid, "metadata.uid"),
            (&spec.namespace, "metadata.namespace"),
        ] {
            if v.is_empty() {
                return Err(RuntimeError::Invalid(format!(
                    "sandbox config {what} is required"
                )));
            }
        }
        if !HANDLERS.contains(&spec.runtime_handler.as_str()) {
            return Err(RuntimeError::Invalid(format!(
                "runtime handler {:?} is not configured",
                spec.runtime_handler
            )));
        }
        if !spec.log_directory.is_empty() && !Path::new(&spec.log_directory).is_absolute() {
            return Err(RuntimeError::Invalid(format!(
                "log directory {:?} is not absolute",
                spec.log_directory
            )));
        }
        if spec.namespaces.network == NsMode::Target || spec.namespaces.ipc == NsMode::Target {
            return Err(RuntimeError::Invalid(
                "pod namespace mode TARGET is only valid for pid of containers".into(),
            ));
        }
        if spec.namespaces.user.is_some() {
            // kubelet refuses these with hostUsers: false; a host namespace is not owned
            // by the pod's user namespace, so its root could not use it.
            for (mode, what) in [
                (spec.namespaces.network, "network"),
                (spec.namespaces.pid, "pid"),
                (spec.namespaces.ipc, "ipc"),
            ] {
                if mode == NsMode::Node {
                    return Err(RuntimeError::Invalid(format!(
                        "userns_options mode POD cannot be combined with the host's {what} namespace"
                    )));
                }
            }
            if spec.privileged {
                return Err(RuntimeError::Invalid(
                    "userns_options mode POD cannot be combined with a privileged pod".into(),
                ));
            }
        }
        // sethostname(2) takes at most 64 bytes (HOST_NAME_MAX).
        if spec.hostname.len() > 64 {
            return Err(RuntimeError::Invalid(format!(
                "hostname {:?} is longer than 64 bytes",
                spec.hostname
            )));
        }
        files::check_sysctls(&spec)?;
        files::check_dns(&spec)?;
        // Start-up's network reconcile and orphan reaping must not take this pod's network
        // or shim (made before its record is Ready) for a crash's leftovers.
        self.host_recovered().await;
        let id = new_id();
        let cgroup_parent = crate::runtime::cgroup::pod_parent(
            self.cfg.cgroup_driver,
            &self.cfg.cgroup_root,
            &spec.cgroup_parent,
            &id,
        )?;
        let full = format!(
            "{}_{}_{}_{}",
            spec.name, spec.namespace, spec.uid, spec.attempt
        );
        let mut rec = PodRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            dir: self.cfg.state.join("pods").join(&id),
            spec,
            state: PodState::NotReady,
            created_at: now(),
            ips: vec![],
            netns: None,
            ipcns: None,
            utsns: None,
            cgroup_parent,
            shim_address: None,
            pidns: None,
            pod_init_pid: 0,
            cgroup_driver: self.cfg.cgroup_driver,
            userns: None,
        };
        {
            // The name is reserved in memory only: a crash before the final write leaves
            // no record, and recovery removes what the setup left (pins, pod dir, network).
            let mut st = self.lock();
            if let Some(p) = st.pods.values().find(|p| {
                p.spec.name == rec.spec.name
                    && p.spec.namespace == rec.spec.namespace
                    && p.spec.uid == rec.spec.uid
                    && p.spec.attempt == rec.spec.attempt
            }) {
                return Err(RuntimeError::PodExists {
                    name: full,
                    existing: p.id.clone(),
                });
            }
            st.pods.insert(id.clone(), rec.clone());
        }
        match self.setup_pod(&mut rec).await {
            Ok(()) => {
                rec.state = PodState::Ready;
                let saved = self.save_pod(&rec).await;
                if let Err(e) = saved {
                    self.stop_shim(&id).await;
                    self.teardown_pod(&rec).await;
                    files::remove_dir(&rec.dir);
                    self.lock().pods.remove(&id);
                    return Err(e);
                }
                tracing::info!(pod = %id, name = %full, ips = ?rec.ips, "pod sandbox ready");
                Ok(id)
            }
            Err(e) => {
                self.stop_shim(&id).await;
                self.teardown_pod(&rec).await;
                files::remove_dir(&rec.dir);
                self.lock().pods.remove(&id);
                Err(e)
            }
        }
    }

    async fn setup_pod(&self, rec: &mut PodRecord) -> Result<()> {
        let id = rec.id.clone();
        let s = rec.spec.clone();
        let host_net = s.namespaces.network == NsMode::Node;
        // The shim first: it comes up while the namespaces and network are set up (and
        // while the first CreateContainer prepares its bundle), not in CreateContainer.
        let t0 = std::time::Instant::now();
        let address = shim::launch(&self.cfg.shim, &id)?;
        tracing::debug!(pod = %id, launch = ?t0.elapsed(), "shim launched");
        rec.shim_address = Some(address.clone());
        let shim = self.fresh_shim(&id, &address).await?;
        if rec.cgroup_driver == CgroupDriver::Systemd {
            // Its own scope: out of crustd's unit (a restart of crustd.service must not
            // take the shim with it) and out of the pod's slice (its memory limit).
            let pid = shim.ping(&id).await?;
            let scope = cgroup::shim_scope(&id);
            blocking("start the shim's scope", &id, move || {
                cgroup::start_scope(&scope, pid)
            })
            .await?;
        }
        let hostname = crate::runtime::oci::spec::pod_hostname(rec);
        // The pod's own user namespace comes first: it owns every namespace made after it.
        let owned = match s.namespaces.user {
            Some(u) => {
                let (state, pod, host) = (self.cfg.state.clone(), id.clone(), hostname.clone());
                let ipc = s.namespaces.ipc != NsMode::Node;
                let pinned = tokio::task::spawn_blocking(move || {
                    let uts = (!host_net).then_some(host.as_str());
                    userns::create(&state, &pod, &u, !host_net, ipc, uts)
                })
                .await
                .map_err(|e| RuntimeError::PodInit {
                    pod: id.clone(),
                    message: format!("pod user namespace: {e}"),
                })??;
                rec.userns = Some(pinned.user.clone());
                rec.ipcns = pinned.ipc.clone();
                rec.utsns = pinned.uts.clone();
                if let Some(n) = &pinned.net {
                    rec.netns = Some(n.clone());
                    netns::adopt(n)
                        .await
                        .map_err(|source| RuntimeError::Network {
                            pod: id.clone(),
                            source: Box::new(source),
                        })?;
                }
                true
            }
            None => false,
        };
        if !host_net {
            let ns = match &rec.netns {
                Some(ns) => ns.clone(),
                None => netns::create(&self.cfg.state, &id)
                    .await
                    .map_err(|source| RuntimeError::Network {
                        pod: id.clone(),
                        source: Box::new(source),
                    })?,
            };
            rec.netns = Some(ns.clone());
            if let (true, Some(net)) = (self.cfg.network, &self.network) {
                let r = net.setup(&network_request(rec)).await.map_err(|source| {
                    RuntimeError::Network {
                        pod: id.clone(),
                        source: Box::new(source),
                    }
                })?;
                rec.ips = r
                    .primary_ip()
                    .into_iter()
                    .chain(r.additional_ips())
                    .map(|ip| ip.to_string())
                    .collect();
            }
        }
        if s.namespaces.pid == NsMode::Pod {
            let cg = cgroup::child(rec.cgroup_driver, &rec.cgroup_parent, &id);
            // cgroupfs: the init joins its leaf itself; systemd: crustd starts its scope
            // with the init in it.
            let join = if cg.unit.is_some() {
                ""
            } else {
                cg.dir.as_str()
            };
            let (pin, pid) = init::start(&self.cfg.state, &id, join, rec.userns.as_deref()).await?;
            rec.pidns = Some(pin.clone());
            rec.pod_init_pid = pid;
            if cg.unit.is_some() {
                let scope = cg.clone();
                let r = blocking("start the pod init's scope", &id, move || {
                    cgroup::start_scope(&scope, pid)
                })
                .await;
                if let Err(e) = r {
                    let _ = tokio::task::spawn_blocking(move || init::stop(&pin, pid, "")).await;
                    rec.pidns = None;
                    rec.pod_init_pid = 0;
                    return Err(e);
                }
            }
            tokio::spawn(init::check_cgroup(id.clone(), pid, cg.dir));
        }
        if !owned {
            let (ipc, uts) = files::pin_namespaces(
                &self.cfg.state,
                &id,
                s.namespaces.ipc != NsMode::Node,
                !host_net,
                &hostname,
            )
            .await?;
            rec.ipcns = ipc;
            rec.utsns = uts;
        }
        files::write_files(rec, &hostname)?;
        if !s.log_directory.is_empty() {
            std::fs::create_dir_all(&s.log_directory).map_err(io("create", &s.log_directory))?;
        }
        Ok(())
    }

    /// Undoes everything a pod has on the host but its record (idempotent).
    pub(in crate::runtime) async fn teardown_pod(&self, rec: &PodRecord) {
        if let (Some(ns), Some(net)) = (&rec.netns, &self.network) {
            if self.cfg.network {
                if let Err(e) = net.teardown(&network_request(rec)).await {
                    tracing::warn!(pod = %rec.id, error = %crate::network::NetworkError::to_string(&e), "network teardown");
                }
            }
            let _ = ns;
        }
        if let Some(ns) = &rec.netns {
            let _ = netns::remove(ns);
        }
        if let Some(pin) = rec.pidns.clone() {
            // Waits for the init to die before removing its cgroup: off the async workers.
            // A scope (systemd) goes with its last process; stopping it makes sure.
            let pid = rec.pod_init_pid;
            let cg = cgroup::child(rec.cgroup_driver, &rec.cgroup_parent, &rec.id);
            let _ = tokio::task::spawn_blocking(move || match &cg.unit {
                Some(unit) => {
                    init::stop(&pin, pid, "");
                    cgroup::stop_unit(unit);
                }
                None => init::stop(&pin, pid, &cg.dir),
            })
            .await;
        }
        files::unpin(&self.cfg.state, &rec.id);
        files::unmount_shm(&rec.dir);
    }
}

/// Runs blocking `f` (D-Bus calls) off the async workers.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    id: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RuntimeError::Blocking {
            op,
            id: id.to_string(),
            message: e.to_string(),
        })?
}

pub(in crate::runtime) fn network_request(rec: &PodRecord) -> PodNetworkRequest {
    PodNetworkRequest {
        pod_id: rec.id.clone(),
        name: rec.spec.name.clone(),
        namespace: rec.spec.namespace.clone(),
        uid: rec.spec.uid.clone(),
        netns: rec
            .netns
            .clone()
            .unwrap_or_else(|| Path::new("/proc/self/ns/net").to_path_buf()),
        port_mappings: rec.spec.port_mappings.clone(),
        ..Default::default()
    }
}
