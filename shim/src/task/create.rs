//! Create: validate, mount the rootfs, set up stdio, `runtime create`, record the init.

use std::path::{Path, PathBuf};

use containerd_shim_protos::api;
use containerd_shim_protos::events::task as ev;
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::empty::Empty;
use protobuf::{Message, UnknownValueRef};

use super::{Container, Proc, Service};
use crate::error::{Result, ShimError};
use crate::runtime::{find_binary, Runtime};
use crate::stdio::{self, StdioRequest};
use crust_cgroups::Cgroup;

/// The runtime options containerd passes (`containerd.runc.v1.Options`) that we honour.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RuncOptions {
    pub binary_name: String,
    pub root: String,
    pub systemd_cgroup: bool,
}

/// Decodes `containerd.runc.v1.Options` (fields 6 binary_name, 7 root, 9 systemd_cgroup).
/// Other option types are ignored. The message type is not in containerd-shim-protos, so
/// the fields are read from the unknown-field set of an empty message.
pub fn runc_options(any: Option<&Any>) -> Result<RuncOptions> {
    let mut o = RuncOptions::default();
    let Some(any) = any else { return Ok(o) };
    if !any.type_url.ends_with("containerd.runc.v1.Options") {
        return Ok(o);
    }
    let m = Empty::parse_from_bytes(&any.value).map_err(|e| ShimError::Decode {
        what: "runc options",
        message: e.to_string(),
    })?;
    for (field, v) in m.special_fields.unknown_fields().iter() {
        match (field, v) {
            (6, UnknownValueRef::LengthDelimited(b)) => {
                o.binary_name = String::from_utf8_lossy(b).into_owned()
            }
            (7, UnknownValueRef::LengthDelimited(b)) => {
                o.root = String::from_utf8_lossy(b).into_owned()
            }
            (9, UnknownValueRef::Varint(x)) => o.systemd_cgroup = x != 0,
            _ => {}
        }
    }
    Ok(o)
}

/// Where the `delete` subcommand finds how the container was run.
pub const RUNTIME_FILE: &str = "crust-shim.json";

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !id.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ShimError::InvalidRequest(format!("invalid id {id:?}")))
    }
}

impl Service {
    pub(super) async fn do_create(
        &self,
        r: api::CreateTaskRequest,
    ) -> Result<api::CreateTaskResponse> {
        check_id(&r.id)?;
        let bundle = PathBuf::from(&r.bundle);
        if !bundle.is_absolute() || !bundle.join("config.json").is_file() {
            return Err(ShimError::MissingBundle(bundle));
        }
        // Restore: the CRIU images are in `checkpoint`; Start runs `runtime restore`.
        let restore = if r.checkpoint.is_empty() {
            None
        } else {
            let p = PathBuf::from(&r.checkpoint);
            if !p.is_absolute() || !p.is_dir() {
                return Err(ShimError::InvalidRequest(format!(
                    "checkpoint {p:?} is not an absolute path to a directory"
                )));
            }
            if r.terminal {
                return Err(ShimError::Unsupported(
                    "restore of a container with a terminal",
                ));
            }
            Some(p)
        };
        let opts = runc_options(r.options.as_ref())?;
        {
            let mut st = self.lock();
            if st.exiting {
                return Err(ShimError::WrongState {
                    id: r.id.clone(),
                    state: "shutting down",
                    op: "create",
                });
            }
            if st.containers.contains_key(&r.id) || st.creating.contains(&r.id) {
                return Err(ShimError::ContainerExists(r.id.clone()));
            }
            st.creating.insert(r.id.clone());
        }
        let res = self.create_inner(&r, &bundle, &opts, restore).await;
        self.lock().creating.remove(&r.id);
        let (container, pid) = res?;
        self.lock().containers.insert(r.id.clone(), container);
        if pid > 0 {
            self.claim_exit(&r.id, "", pid);
            self.watch_oom(&r.id);
        }

        let mut e = ev::TaskCreate::new();
        e.container_id = r.id.clone();
        e.bundle = r.bundle.clone();
        e.rootfs = r.rootfs.clone();
        let mut io = ev::TaskIO::new();
        io.stdin = r.stdin.clone();
        io.stdout = r.stdout.clone();
        io.stderr = r.stderr.clone();
        io.terminal = r.terminal;
        e.io = Some(io).into();
        e.pid = pid as u32;
        self.inner.events.task_create(e);

        let mut resp = api::CreateTaskResponse::new();
        resp.pid = pid as u32;
        Ok(resp)
    }

    async fn create_inner(
        &self,
        r: &api::CreateTaskRequest,
        bundle: &Path,
        opts: &RuncOptions,
        restore: Option<PathBuf>,
    ) -> Result<(Container, i32)> {
        let cfg = &self.inner.cfg;
        let binary = if opts.binary_name.is_empty() {
            find_binary(&cfg.runtime_binary)
        } else {
            find_binary(&opts.binary_name)
        };
        let root = if opts.root.is_empty() {
            cfg.runtime_root.clone()
        } else {
            opts.root.clone().into()
        };
        let runtime = Runtime {
            binary,
            root: crust_shim_contract::runtime_state_root(&root, &cfg.namespace),
            systemd_cgroup: opts.systemd_cgroup,
        };
        let rec = serde_json::to_vec(&runtime).unwrap_or_default();
        let rec_path = bundle.join(RUNTIME_FILE);
        std::fs::write(&rec_path, rec).map_err(|e| ShimError::io("write", &rec_path, e))?;

        let rootfs = bundle.join("rootfs");
        crate::mount::mount_rootfs(&r.rootfs, &rootfs)?;
        let undo = |with_runtime: bool| {
            let rootfs = rootfs.clone();
            let runtime = runtime.clone();
            let reaper = self.inner.reaper.clone();
            let id = r.id.clone();
            let mounted = !r.rootfs.is_empty();
            async move {
                if with_runtime {
                    let _ = runtime.delete(&reaper, &id, true).await;
                }
                if mounted {
                    crate::mount::unmount_rootfs(&rootfs);
                }
            }
        };
        if restore.is_some() {
            // Nothing runs until Start restores it (with its stdio made then).
            return Ok((
                Container {
                    bundle: bundle.to_path_buf(),
                    runtime,
                    rootfs_mounted: !r.rootfs.is_empty(),
                    init: Proc::new(&r.stdin, &r.stdout, &r.stderr, r.terminal),
                    execs: Default::default(),
                    oom: None,
                    cgroup: None,
                    restore,
                },
                0,
            ));
        }
        let req = StdioRequest {
            stdin: &r.stdin,
            stdout: &r.stdout,
            stderr: &r.stderr,
            terminal: r.terminal,
            id: &r.id,
            namespace: &cfg.namespace,
        };
        let prepared = match stdio::prepare(&req, &self.inner.reaper, &cfg.console_dir) {
            Ok(p) => p,
            Err(e) => {
                undo(false).await;
                return Err(e);
            }
        };
        let (io, rest) = prepared.split();
        let pid = match runtime.create(&self.inner.reaper, &r.id, bundle, io).await {
            Ok(pid) => pid,
            Err(e) => {
                drop(rest);
                undo(true).await;
                return Err(e);
            }
        };
        let stdio = match rest.finish() {
            Ok(s) => s,
            Err(e) => {
                undo(true).await;
                return Err(e);
            }
        };
        let mut init = Proc::new(&r.stdin, &r.stdout, &r.stderr, r.terminal);
        init.pid = pid;
        init.stdio = stdio;
        Ok((
            Container {
                bundle: bundle.to_path_buf(),
                runtime,
                rootfs_mounted: !r.rootfs.is_empty(),
                init,
                execs: Default::default(),
                oom: None,
                cgroup: Cgroup::of_pid(pid).ok(),
                restore: None,
            },
            pid,
        ))
    }

    pub(super) fn watch_oom(&self, id: &str) {
        let Some(cg) = self
            .lock()
            .container(id)
            .ok()
            .and_then(|c| c.cgroup.clone())
        else {
            return;
        };
        let events = self.inner.events.clone();
        let cid = id.to_string();
        let h = crate::oom::watch(cg, move || {
            let mut e = ev::TaskOOM::new();
            e.container_id = cid.clone();
            events.task_oom(e);
        });
        if let Ok(c) = self.lock().container_mut(id) {
            c.oom = h;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_runc_options() {
        // binary_name = "runc" (field 6), root = "/r" (7), systemd_cgroup = true (9)
        let mut any = Any::new();
        any.type_url = "containerd.runc.v1.Options".into();
        any.value = vec![
            0x32, 4, b'r', b'u', b'n', b'c', 0x3a, 2, b'/', b'r', 0x48, 1,
        ];
        let o = runc_options(Some(&any)).unwrap();
        assert_eq!(
            o,
            RuncOptions {
                binary_name: "runc".into(),
                root: "/r".into(),
                systemd_cgroup: true
            }
        );
        any.type_url = "other.Type".into();
        assert_eq!(runc_options(Some(&any)).unwrap(), RuncOptions::default());
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(check_id("abc-1.2_3").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "sp ace"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
