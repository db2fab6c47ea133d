//! Calling a shim's Task API over ttrpc: one [`Shim`] per connection, each call with a
//! deadline, each ttrpc failure turned into a [`RuntimeError::Shim`] with its kind.

use std::path::Path;
use std::time::Duration;

use containerd_shim_protos::api;
use containerd_shim_protos::shim_async::TaskClient;
use protobuf::well_known_types::any::Any;

use crust_shim_contract::Kind;

use crate::error::ErrorKind;
use crate::runtime::error::{Result, RuntimeError};

/// A connection to one shim.
#[derive(Clone)]
pub struct Shim {
    client: TaskClient,
    /// Where it was reached.
    address: std::sync::Arc<str>,
    /// Unique per connection: tells a cached connection from a newer one to the same pod.
    conn: u64,
}

impl std::fmt::Debug for Shim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shim")
    }
}

fn ctx(timeout: Option<Duration>) -> ttrpc::context::Context {
    match timeout {
        Some(t) => ttrpc::context::with_timeout(t.as_nanos() as i64),
        None => ttrpc::context::Context::default(),
    }
}

const CALL: Option<Duration> = Some(Duration::from_secs(60));

/// The daemon's kind of a shim's error kind (the contract's table read the other way).
fn kind(k: Kind) -> ErrorKind {
    match k {
        Kind::NotFound => ErrorKind::NotFound,
        Kind::AlreadyExists => ErrorKind::AlreadyExists,
        Kind::InvalidArgument => ErrorKind::InvalidArgument,
        Kind::FailedPrecondition => ErrorKind::FailedPrecondition,
        Kind::Unimplemented => ErrorKind::Unimplemented,
        Kind::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Kind::Unavailable => ErrorKind::Unavailable,
        Kind::Internal => ErrorKind::Internal,
    }
}

fn shim_err<'a>(op: &'static str, id: &'a str) -> impl FnOnce(ttrpc::Error) -> RuntimeError + 'a {
    move |e| {
        let message = match &e {
            ttrpc::Error::RpcStatus(s) => s.message().to_string(),
            other => other.to_string(),
        };
        RuntimeError::Shim {
            op,
            id: id.to_string(),
            code: kind(Kind::of_error(&e)),
            message,
        }
    }
}

/// Exit of a process: status and unix nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    /// Exit status (128+signal when killed).
    pub status: u32,
    /// When, unix nanoseconds.
    pub at: i64,
}

impl Shim {
    /// Connects to `address` (`unix:///path`).
    pub async fn connect(address: &str, id: &str) -> Result<Shim> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CONN: AtomicU64 = AtomicU64::new(1);
        let c = ttrpc::asynchronous::Client::connect(address)
            .await
            .map_err(shim_err("connect", id))?;
        Ok(Shim {
            client: TaskClient::new(c),
            address: address.into(),
            conn: CONN.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The address this connection was made to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// This connection's unique number.
    pub fn conn_id(&self) -> u64 {
        self.conn
    }

    /// The shim's pid (checks it is alive and speaks this crustd's version of the
    /// daemon <-> shim contract: else FailedPrecondition).
    pub async fn ping(&self, id: &str) -> Result<u32> {
        // An empty id asks only for the shim's pid: a liveness check.
        let r = api::ConnectRequest::new();
        let c = self
            .client
            .connect(ctx(Some(Duration::from_secs(5))), &r)
            .await
            .map_err(shim_err("connect", id))?;
        crust_shim_contract::check_version(&c.version).map_err(|message| RuntimeError::Shim {
            op: "connect",
            id: id.to_string(),
            code: ErrorKind::FailedPrecondition,
            message,
        })?;
        Ok(c.shim_pid)
    }

    /// Creates the task of container `id`; `systemd_cgroup`: the runtime is run with
    /// `--systemd-cgroup` (runc's `SystemdCgroup` option, as containerd passes it).
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        id: &str,
        bundle: &Path,
        rootfs: &[crate::snapshots::Mount],
        stdout: &str,
        stdin: bool,
        terminal: bool,
        systemd_cgroup: bool,
        checkpoint: Option<&Path>,
    ) -> Result<u32> {
        let mut r = api::CreateTaskRequest::new();
        r.id = id.into();
        if let Some(c) = checkpoint {
            r.checkpoint = c.display().to_string();
        }
        r.bundle = bundle.display().to_string();
        r.rootfs = rootfs
            .iter()
            .map(|m| {
                let mut pm = api::Mount::new();
                pm.type_ = m.kind.clone();
                pm.source = m.source.clone();
                pm.options = m.options.clone();
                pm
            })
            .collect();
        r.stdout = stdout.into();
        r.stderr = if terminal {
            String::new()
        } else {
            stdout.into()
        };
        if stdin {
            r.stdin = bundle.join("stdin").display().to_string();
        }
        r.terminal = terminal;
        if systemd_cgroup {
            r.options = protobuf::MessageField::some(runc_options_systemd());
        }
        let resp = self
            .client
            .create(ctx(CALL), &r)
            .await
            .map_err(shim_err("create", id))?;
        Ok(resp.pid)
    }

    /// Checkpoints container `id` (CRIU images into `images`, CRIU's log and statistics
    /// into `work`); it keeps running. No call timeout: the caller bounds it.
    pub async fn checkpoint(&self, id: &str, images: &Path, work: &Path) -> Result<()> {
        let mut r = api::CheckpointTaskRequest::new();
        r.id = id.into();
        r.path = images.display().to_string();
        r.options = protobuf::MessageField::some(checkpoint_options(work));
        self.client
            .checkpoint(ctx(None), &r)
            .await
            .map_err(shim_err("checkpoint", id))?;
        Ok(())
    }

    /// Starts process `exec_id` (empty: the init) of `id`; returns its pid.
    pub async fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        let mut r = api::StartRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        let resp = self
            .client
            .start(ctx(CALL), &r)
            .await
            .map_err(shim_err("start", id))?;
        Ok(resp.pid)
    }

    /// Waits for process `exec_id` of `id` to exit (no timeout).
    pub async fn wait(&self, id: &str, exec_id: &str) -> Result<Exit> {
        let mut r = api::WaitRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        let resp = self
            .client
            .wait(ctx(None), &r)
            .await
            .map_err(shim_err("wait", id))?;
        let at = resp
            .exited_at
            .as_ref()
            .map(|t| t.seconds * 1_000_000_000 + t.nanos as i64)
            .unwrap_or_else(crate::runtime::clock::now);
        Ok(Exit {
            status: resp.exit_status,
            at,
        })
    }

    /// State of `id`'s init: (status, pid, exit).
    pub async fn state(&self, id: &str) -> Result<api::StateResponse> {
        let mut r = api::StateRequest::new();
        r.id = id.into();
        self.client
            .state(ctx(CALL), &r)
            .await
            .map_err(shim_err("state", id))
    }

    /// Sends `signal` to process `exec_id` of `id` (`all`: every process).
    pub async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let mut r = api::KillRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.signal = signal;
        r.all = all;
        self.client
            .kill(ctx(CALL), &r)
            .await
            .map_err(shim_err("kill", id))?;
        Ok(())
    }

    /// Deletes process `exec_id` (empty: the container) of `id`.
    pub async fn delete(&self, id: &str, exec_id: &str) -> Result<()> {
        let mut r = api::DeleteRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        self.client
            .delete(ctx(CALL), &r)
            .await
            .map_err(shim_err("delete", id))?;
        Ok(())
    }

    /// Adds exec `exec_id` running `process` (OCI process JSON) in `id`, with no stdin and
    /// no terminal (ExecSync).
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: Vec<u8>,
        stdout: &str,
        stderr: &str,
    ) -> Result<()> {
        self.exec_stdio(id, exec_id, process, "", stdout, stderr, false)
            .await
    }

    /// Adds exec `exec_id` of `id` with fifo stdio (crustd's streaming exec): `stdin`
    /// empty for none, `terminal` for a pty (then only `stdout` carries output).
    #[allow(clippy::too_many_arguments)]
    pub async fn exec_stdio(
        &self,
        id: &str,
        exec_id: &str,
        process: Vec<u8>,
        stdin: &str,
        stdout: &str,
        stderr: &str,
        terminal: bool,
    ) -> Result<()> {
        let mut r = api::ExecProcessRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.stdin = stdin.into();
        r.stdout = stdout.into();
        r.stderr = stderr.into();
        r.terminal = terminal;
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
        any.value = process;
        r.spec = Some(any).into();
        self.client
            .exec(ctx(CALL), &r)
            .await
            .map_err(shim_err("exec", id))?;
        Ok(())
    }

    /// Resizes the pty of process `exec_id` (empty: the init) of `id`.
    pub async fn resize_pty(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        let mut r = api::ResizePtyRequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.width = width;
        r.height = height;
        self.client
            .resize_pty(ctx(CALL), &r)
            .await
            .map_err(shim_err("resize pty", id))?;
        Ok(())
    }

    /// Closes the stdin of process `exec_id` (empty: the init) of `id`.
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<()> {
        let mut r = api::CloseIORequest::new();
        r.id = id.into();
        r.exec_id = exec_id.into();
        r.stdin = true;
        self.client
            .close_io(ctx(CALL), &r)
            .await
            .map_err(shim_err("close io", id))?;
        Ok(())
    }

    /// Updates resources (OCI LinuxResources JSON) and/or annotations of `id`.
    pub async fn update(
        &self,
        id: &str,
        resources: Option<Vec<u8>>,
        annotations: &[(&str, &str)],
    ) -> Result<()> {
        let mut r = api::UpdateTaskRequest::new();
        r.id = id.into();
        if let Some(res) = resources {
            let mut any = Any::new();
            any.type_url =
                "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
            any.value = res;
            r.resources = Some(any).into();
        }
        for (k, v) in annotations {
            r.annotations.insert((*k).into(), (*v).into());
        }
        self.client
            .update(ctx(CALL), &r)
            .await
            .map_err(shim_err("update", id))?;
        Ok(())
    }

    /// Asks the shim to exit once it has no containers.
    pub async fn shutdown(&self) {
        let r = api::ShutdownRequest::new();
        let _ = self
            .client
            .shutdown(ctx(Some(Duration::from_secs(5))), &r)
            .await;
    }
}

/// `containerd.runc.v1.Options{systemd_cgroup: true}`, what containerd sends with
/// `SystemdCgroup = true`. The message is not in containerd-shim-protos; its one field is
/// encoded by hand: field 9, varint 1 (tag `9 << 3 | 0` = 0x48).
fn runc_options_systemd() -> protobuf::well_known_types::any::Any {
    let mut a = protobuf::well_known_types::any::Any::new();
    a.type_url = "containerd.runc.v1.Options".into();
    a.value = vec![0x48, 0x01];
    a
}

/// `containerd.runc.v1.CheckpointOptions` with `work_path` (field 9) set and `exit`
/// false (the container keeps running).
fn checkpoint_options(work: &Path) -> protobuf::well_known_types::any::Any {
    let mut value = Vec::new();
    {
        let mut os = protobuf::CodedOutputStream::vec(&mut value);
        let _ = os.write_string(9, &work.display().to_string());
        let _ = os.flush();
    }
    let mut a = protobuf::well_known_types::any::Any::new();
    a.type_url = "containerd.runc.v1.CheckpointOptions".into();
    a.value = value;
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind as _;

    #[test]
    fn every_shim_kind_keeps_its_kind_in_crustd() {
        // The shim's Unimplemented used to arrive as Internal.
        for (k, want) in [
            (Kind::NotFound, ErrorKind::NotFound),
            (Kind::AlreadyExists, ErrorKind::AlreadyExists),
            (Kind::InvalidArgument, ErrorKind::InvalidArgument),
            (Kind::FailedPrecondition, ErrorKind::FailedPrecondition),
            (Kind::Unimplemented, ErrorKind::Unimplemented),
            (Kind::DeadlineExceeded, ErrorKind::DeadlineExceeded),
            (Kind::Unavailable, ErrorKind::Unavailable),
            (Kind::Internal, ErrorKind::Internal),
        ] {
            let e = shim_err("op", "c1")(k.status("m"));
            assert_eq!(e.kind(), want, "{k:?}");
        }
        let e = shim_err("op", "c1")(ttrpc::Error::LocalClosed);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}
