//! Starting the pod's shim with posix_spawn(3), and reaping it through a pidfd.
//!
//! Hand-written over libc because `std::process::Command` (and tokio's) falls back to
//! fork(2) as soon as a `pre_exec` hook is set, and the shim needs two things std cannot
//! express without one: its own session (setsid) and the listening socket as fd 3. fork
//! copies crustd's page tables (tens of MB mapped, a thread per core) before the exec; that
//! was ~1 ms of every RunPodSandbox. glibc's posix_spawn starts the child with
//! CLONE_VM|CLONE_VFORK and does both through `POSIX_SPAWN_SETSID` and a dup2 file action,
//! and reports a failed exec as an error of the call. nix's wrapper has no `addchdir_np`.
//!
//! Invariant: the child gets exactly stdin/stdout on /dev/null, stderr on the given file,
//! the given socket as fd 3, cwd `/`, an empty signal mask, SIGPIPE at its default action,
//! and crustd's environment minus the names in `env_remove`, plus `env_set`; no other fd
//! (crustd opens everything close-on-exec).

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What to start.
pub struct Child<'a> {
    pub program: &'a Path,
    pub args: &'a [OsString],
    /// Becomes the child's stderr.
    pub stderr: BorrowedFd<'a>,
    /// Becomes the child's fd 3.
    pub fd3: BorrowedFd<'a>,
    /// Environment variables not passed on.
    pub env_remove: &'a [&'a str],
    /// Environment variables set for the child (after `env_remove`).
    pub env_set: &'a [(&'a str, &'a OsStr)],
}

fn cstr(s: &OsStr) -> std::io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// posix_spawn file actions, destroyed on drop.
struct Actions(libc::posix_spawn_file_actions_t);

impl Drop for Actions {
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawn_file_actions_init in `spawn`.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// posix_spawn attributes, destroyed on drop.
struct Attr(libc::posix_spawnattr_t);

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawnattr_init in `spawn`.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// Starts `c` in a new session; returns its pid once it has exec'd.
pub fn spawn(c: &Child<'_>) -> std::io::Result<i32> {
    let program = cstr(c.program.as_os_str())?;
    let mut argv = vec![program.clone()];
    for a in c.args {
        argv.push(cstr(a)?);
    }
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if c.env_remove.iter().any(|r| OsStr::new(r) == k) {
            continue;
        }
        let mut kv = k.clone();
        kv.push("=");
        kv.push(&v);
        envp.push(cstr(&kv)?);
    }
    for (k, v) in c.env_set {
        let mut kv = OsString::from(k);
        kv.push("=");
        kv.push(v);
        envp.push(cstr(&kv)?);
    }
    let argv_p: Vec<*mut libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr() as *mut libc::c_char)
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp_p: Vec<*mut libc::c_char> = envp
        .iter()
        .map(|a| a.as_ptr() as *mut libc::c_char)
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    // dup2(fd, fd) would leave close-on-exec set: move a socket that already is fd 3.
    let moved;
    let fd3 = if c.fd3.as_raw_fd() == 3 {
        moved = c.fd3.try_clone_to_owned()?;
        moved.as_raw_fd()
    } else {
        c.fd3.as_raw_fd()
    };

    // SAFETY: the structs are initialised by their init calls before any other use and
    // destroyed by the guards' Drop.
    let mut actions = unsafe {
        let mut a = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut a))?;
        Actions(a)
    };
    // SAFETY: as above.
    let mut attr = unsafe {
        let mut a = std::mem::zeroed();
        check(libc::posix_spawnattr_init(&mut a))?;
        Attr(a)
    };
    // SAFETY: valid, initialised action/attribute objects and NUL-terminated strings that
    // outlive the posix_spawn call below; the signal sets are initialised by sigemptyset.
    unsafe {
        let a = &mut actions.0;
        check(libc::posix_spawn_file_actions_addopen(
            a,
            0,
            c"/dev/null".as_ptr(),
            libc::O_RDONLY,
            0,
        ))?;
        check(libc::posix_spawn_file_actions_addopen(
            a,
            1,
            c"/dev/null".as_ptr(),
            libc::O_WRONLY,
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            a,
            c.stderr.as_raw_fd(),
            2,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(a, fd3, 3))?;
        check(libc::posix_spawn_file_actions_addchdir_np(a, c"/".as_ptr()))?;
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        check(libc::posix_spawnattr_setsigmask(&mut attr.0, &none))?;
        check(libc::posix_spawnattr_setsigdefault(&mut attr.0, &pipe))?;
        check(libc::posix_spawnattr_setflags(
            &mut attr.0,
            libc::POSIX_SPAWN_SETSID
                | (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
        ))?;
    }
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: program, NULL-terminated argv/envp
    // arrays of live CStrings, initialised actions and attributes.
    check(unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions.0,
            &attr.0,
            argv_p.as_ptr(),
            envp_p.as_ptr(),
        )
    })?;
    Ok(pid)
}

/// Reaps `pid` (a child of crustd) when it exits, logging a failure, without a thread per
/// child: a task waits for its pidfd to become readable. Falls back to a thread where
/// pidfd_open is missing (Linux < 5.3).
pub fn reap_in_background(pid: i32, pod: String) {
    fn finish(pid: i32, pod: &str) {
        use nix::sys::wait::{waitpid, WaitStatus};
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, 0)) => tracing::debug!(pod = %pod, "shim exited"),
            Ok(st) => tracing::warn!(pod = %pod, status = ?st, "shim exited with an error"),
            Err(e) => tracing::debug!(pod = %pod, error = %e, "reaping the shim"),
        }
    }
    // SAFETY: pidfd_open takes a pid and flags, returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if raw >= 0 {
        // SAFETY: raw is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is an OwnedFd the AsyncFd owns until dropped, so it stays open and
        // refers to the same pidfd for the registration's whole life.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        };
        if let Ok(afd) = registered {
            tokio::spawn(async move {
                // Readable once the process has exited; waitpid then does not block.
                if afd.readable().await.is_ok() {
                    finish(pid, &pod);
                } else {
                    // Cannot tell: wait for it off the async workers.
                    let _ = tokio::task::spawn_blocking(move || finish(pid, &pod)).await;
                }
            });
            return;
        }
    }
    std::thread::spawn(move || finish(pid, &pod));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test]
    async fn child_gets_fd3_stderr_cwd_and_session() {
        let dir = tempfile::tempdir().unwrap();
        let err_path = dir.path().join("err");
        let err = std::fs::File::create(&err_path).unwrap();
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // Some variable of ours that the shell does not set itself: the child must not see it.
        let gone = std::env::vars()
            .map(|(k, _)| k)
            .find(|k| {
                !["PATH", "PWD", "OLDPWD", "IFS", "SHLVL", "_"].contains(&k.as_str())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .expect("an environment variable");
        let script = format!(
            "read -r _ _ _ _ _ sid _ < /proc/$$/stat; echo \"cwd=$(pwd) sid=$sid pid=$$ dropped=${{{gone}+set}} set=$CRUST_PSPAWN_SET in=$(/bin/cat)\" >&2; echo hi >&3"
        );
        let args = [OsString::from("-c"), OsString::from(script)];
        let pid = spawn(&Child {
            program: Path::new("/bin/sh"),
            args: &args,
            stderr: std::os::fd::AsFd::as_fd(&err),
            fd3: std::os::fd::AsFd::as_fd(&theirs),
            env_remove: &[gone.as_str()],
            env_set: &[("CRUST_PSPAWN_SET", OsStr::new("yes"))],
        })
        .unwrap();
        drop(theirs);
        let mut got = String::new();
        ours.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi\n");
        let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        assert_eq!(
            st,
            nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 0)
        );
        let err = std::fs::read_to_string(&err_path).unwrap();
        assert_eq!(
            err.trim(),
            format!("cwd=/ sid={pid} pid={pid} dropped= set=yes in="),
            "stderr: {err}"
        );
    }

    #[test]
    fn a_missing_program_is_an_error_of_the_call() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let e = spawn(&Child {
            program: Path::new("/nonexistent/crust-shim"),
            args: &[],
            stderr: std::os::fd::AsFd::as_fd(&null),
            fd3: std::os::fd::AsFd::as_fd(&null),
            env_remove: &[],
            env_set: &[],
        })
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
