//! Pinned network namespaces: `<state>/ns/<pod>/net` is a bind mount of a namespace that
//! no process needs to hold, so the pod's network outlives its containers and crustd.
//! How a pin is made and removed is [`crate::nspin`]'s.
//!
//! Invariants: the namespace is created by a short-lived OS thread that unshares
//! `CLONE_NEWNET` and dies right after (so no thread of the runtime ever changes
//! namespace); removal is idempotent (unpin, drop the pod dir if empty).
//! Netlink work inside a namespace goes through a socket opened by such a thread: the
//! socket stays bound to the namespace it was created in.

use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use nix::sched::{setns, unshare, CloneFlags};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, TokioSocket};
use rtnetlink::LinkUnspec;

use super::error::{NetworkError, Result};

/// Checks that `id` can name a directory: 1-128 chars of `[A-Za-z0-9_.-]`, not `.`/`..`.
pub fn validate_pod_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidPodId(id.to_string()))
    }
}

/// Where the network namespace of `pod_id` is pinned.
pub fn pin_path(state_dir: &Path, pod_id: &str) -> PathBuf {
    crate::nspin::path(state_dir, pod_id, "net")
}

pub use crate::nspin::is_pinned;

/// Creates a new network namespace for `pod_id`, pins it at [`pin_path`] and brings
/// `lo` up inside. Returns the pin path. Idempotent: an existing pin is reused.
pub async fn create(state_dir: &Path, pod_id: &str) -> Result<PathBuf> {
    validate_pod_id(pod_id)?;
    let path = pin_path(state_dir, pod_id);
    if is_pinned(&path) {
        return Ok(path);
    }
    let err = |source| NetworkError::CreateNetns {
        path: path.clone(),
        source,
    };
    crate::nspin::prepare(&path).map_err(err)?;
    let target = path.clone();
    let pinned = on_fresh_thread(move || -> std::io::Result<OwnedFd> {
        // This thread exists only to own the new namespace while it is pinned and a
        // netlink socket is opened in it; it exits right after, so the change of
        // namespace never leaks to another task.
        unshare(CloneFlags::CLONE_NEWNET)?;
        crate::nspin::bind("/proc/thread-self/ns/net", &target)?;
        let socket = Socket::new(NETLINK_ROUTE)?;
        // SAFETY: into_raw_fd hands over sole ownership of a valid open descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) })
    })
    .await
    .map_err(err)
    .and_then(|r| r.map_err(err));
    let socket = match pinned {
        Ok(s) => s,
        Err(e) => {
            let _ = remove(&path);
            return Err(e);
        }
    };
    if let Err(e) = loopback_up(socket, &path).await {
        let _ = remove(&path);
        return Err(e);
    }
    Ok(path)
}

/// Brings `lo` up in the network namespace already pinned at `path` (one made inside a
/// pod's user namespace, see `runtime::pod::userns`); on failure the pin is removed.
pub async fn adopt(path: &Path) -> Result<()> {
    let r = match netlink_in(path).await {
        Ok(handle) => lo_up(handle, path).await,
        Err(e) => Err(e),
    };
    if r.is_err() {
        let _ = remove(path);
    }
    r
}

async fn loopback_up(socket: OwnedFd, path: &Path) -> Result<()> {
    let handle = handle_from_fd(socket).map_err(|source| NetworkError::EnterNetns {
        path: path.to_path_buf(),
        source,
    })?;
    lo_up(handle, path).await
}

async fn lo_up(handle: rtnetlink::Handle, path: &Path) -> Result<()> {
    let netlink = |source| NetworkError::Netlink {
        op: "set lo up",
        target: path.display().to_string(),
        source,
    };
    let lo = handle
        .link()
        .get()
        .match_name("lo".to_string())
        .execute()
        .try_next()
        .await
        .map_err(netlink)?
        .ok_or_else(|| netlink(rtnetlink::Error::RequestFailed))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(lo.header.index).up().build())
        .execute()
        .await
        .map_err(netlink)
}

/// Unpins the namespace at `path`: unmounts it, unlinks the file and removes the pod's
/// `ns/<pod>` directory if nothing else is left in it. Missing pieces are not errors.
pub fn remove(path: &Path) -> Result<()> {
    let err = |source| NetworkError::RemoveNetns {
        path: path.to_path_buf(),
        source,
    };
    crate::nspin::unpin(path).map_err(err)?;
    crate::nspin::remove_dir_if_empty(path);
    Ok(())
}

/// Pod ids that have a pinned network namespace under `state_dir`.
pub fn list(state_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(state_dir.join("ns")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("net").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Runs `f` on a fresh OS thread that has joined the network namespace at `path`, and
/// returns its result. The thread ends with `f`, so no other code runs in the namespace.
pub async fn run_in<T, F>(path: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let err = |source| NetworkError::EnterNetns {
        path: path.to_path_buf(),
        source,
    };
    let ns = File::open(path).map_err(err)?;
    on_fresh_thread(entered(ns, f))
        .await
        .map_err(err)?
        .map_err(err)
}

/// [`run_in`] for callers that may block (the blocking pool, the stats sampler thread):
/// the same fresh thread in the namespace, waited for with a plain join, no executor.
pub fn run_in_blocking<T, F>(path: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let err = |source| NetworkError::EnterNetns {
        path: path.to_path_buf(),
        source,
    };
    let ns = File::open(path).map_err(err)?;
    std::thread::Builder::new()
        .name("crust-ns".into())
        .spawn(entered(ns, f))
        .map_err(err)?
        .join()
        .map_err(|_| err(std::io::Error::other("namespace thread panicked")))?
        .map_err(err)
}

/// `f`, run after the calling thread joined the network namespace `ns` (for a thread that
/// ends with `f`).
fn entered<T, F>(ns: File, f: F) -> impl FnOnce() -> std::io::Result<T>
where
    F: FnOnce() -> T,
{
    move || {
        setns(&ns, CloneFlags::CLONE_NEWNET)?;
        drop(ns);
        Ok(f())
    }
}

/// Runs `f` on a new OS thread that ends with it, and waits for its result without
/// holding up the async worker. For work that changes the calling thread's namespaces
/// (`unshare`, `setns`): the change dies with the thread and never reaches a thread that
/// runs anything else. An error only if the thread could not be started or panicked.
pub async fn on_fresh_thread<T, F>(f: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("crust-ns".into())
        .spawn(move || {
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| std::io::Error::other("namespace thread panicked"))
}

/// An rtnetlink handle whose socket lives in the network namespace at `path`. Must be
/// called inside a tokio runtime (the connection task is spawned on it).
pub async fn netlink_in(path: &Path) -> Result<rtnetlink::Handle> {
    let fd = run_in(path, || -> std::io::Result<OwnedFd> {
        let socket = Socket::new(NETLINK_ROUTE)?;
        // SAFETY: into_raw_fd hands over sole ownership of a valid open descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) })
    })
    .await?
    .map_err(|source| NetworkError::EnterNetns {
        path: path.to_path_buf(),
        source,
    })?;
    handle_from_fd(fd).map_err(|source| NetworkError::EnterNetns {
        path: path.to_path_buf(),
        source,
    })
}

/// Wraps an open netlink socket into an rtnetlink connection spawned on the runtime.
fn handle_from_fd(fd: OwnedFd) -> std::io::Result<rtnetlink::Handle> {
    let raw = fd.as_raw_fd();
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    // TokioSocket::from_raw_fd registers with the current runtime and panics outside
    // one; every caller of this module is async, so a runtime is present.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(std::io::Error::other("no tokio runtime"));
    }
    let _ = fd.into_raw_fd();
    // SAFETY: `raw` is a valid netlink socket whose ownership was released just above.
    let socket = unsafe { <TokioSocket as FromRawFd>::from_raw_fd(raw) };
    let (conn, handle, _) = rtnetlink::from_socket(socket);
    tokio::spawn(conn);
    Ok(handle)
}

/// A new rtnetlink handle in the caller's (host) namespace.
pub fn netlink_host() -> std::io::Result<rtnetlink::Handle> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::on_fresh_thread;

    /// The thread's work may wait on a task of the same runtime: awaiting it leaves the
    /// worker free (a `join()` on the worker, as before, starves that task and the work
    /// times out).
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_for_the_thread_leaves_the_worker_free() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = tokio::spawn(async move {
            tx.send(7).unwrap();
        });
        let got = on_fresh_thread(move || rx.recv_timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(got, Ok(7));
        sender.await.unwrap();
    }

    /// The synchronous entry runs `f` inside the namespace and needs no runtime at all
    /// (link_stats used to `block_on` the async one); a file that is not a network
    /// namespace is an EnterNetns error naming it.
    #[test]
    fn blocking_entry_runs_in_the_namespace_without_a_runtime() {
        let ns = |p: &str| std::fs::read_link(p).unwrap();
        let here = ns("/proc/self/ns/net");
        let path = std::path::PathBuf::from(format!("/proc/{}/ns/net", std::process::id()));
        let seen = super::run_in_blocking(&path, move || ns("/proc/thread-self/ns/net")).unwrap();
        assert_eq!(seen, here);
        let uts = std::path::Path::new("/proc/self/ns/uts");
        let e = super::run_in_blocking(uts, || ()).unwrap_err();
        assert!(e.to_string().contains("/proc/self/ns/uts"), "{e}");
        let e = super::run_in_blocking(uts, || -> u8 { unreachable!() }).unwrap_err();
        assert!(
            matches!(e, crate::network::NetworkError::EnterNetns { .. }),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_panic_on_the_thread_is_an_error() {
        let r = on_fresh_thread(|| -> u8 { panic!("boom") }).await;
        assert!(r.is_err());
    }
}
