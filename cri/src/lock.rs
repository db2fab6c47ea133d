//! Exclusive ownership of what one crustd owns: its root, its state directory and its
//! socket. Two crustds on the same state directory would each take the other's shims and
//! containers for leftovers of gone pods and kill them; two on the same socket would take
//! it from each other. So crustd takes an exclusive, non-blocking `flock(2)` on a lock file
//! in each (`<root>/crustd.lock`, `<state>/crustd.lock`, `<socket>.lock`) before it reads or
//! changes anything, and holds them until it exits; the kernel drops them when the process
//! dies, also by SIGKILL, so a crash never leaves a stale lock.
//!
//! Lock file format (version 1): the holder's pid in decimal and a newline, written after
//! the lock is taken, read only to name the holder in the refusal. The file is never
//! removed (removing a lock file races with a process about to lock it). The descriptor is
//! close-on-exec, so shims and pod inits never hold the lock.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Lock file name inside a locked directory.
pub const LOCK_FILE: &str = "crustd.lock";

/// Locking failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lock file could not be opened or written.
    #[error("lock file {path}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// flock(2) failed for another reason than being held.
    #[error("lock {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: Errno,
    },
    /// Another process holds the lock.
    #[error("{what} {target} is in use by another crustd ({holder}; lock file {path})")]
    Held {
        /// What is locked: "root", "state directory", "socket".
        what: &'static str,
        /// The directory or socket.
        target: PathBuf,
        /// "pid N", or "pid unknown" if the file names none yet.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
}

/// A held lock; released when dropped or when the process exits.
#[derive(Debug)]
pub struct Lock {
    _file: Flock<File>,
    path: PathBuf,
}

impl Lock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock of directory `dir` (creating it), `what` naming it in errors.
pub fn dir(dir: &Path, what: &'static str) -> Result<Lock, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Open {
        path: dir.into(),
        source,
    })?;
    acquire(&dir.join(LOCK_FILE), what, dir)
}

/// Takes the lock of the socket at `socket`: `<socket>.lock` beside it (creating the
/// directory).
pub fn socket(socket: &Path) -> Result<Lock, Error> {
    if let Some(d) = socket.parent() {
        std::fs::create_dir_all(d).map_err(|source| Error::Open {
            path: d.into(),
            source,
        })?;
    }
    let mut name = socket.as_os_str().to_os_string();
    name.push(".lock");
    acquire(Path::new(&name), "socket", socket)
}

/// Takes an exclusive lock on `path` and writes our pid into it.
fn acquire(path: &Path, what: &'static str, target: &Path) -> Result<Lock, Error> {
    let open_err = |source| Error::Open {
        path: path.into(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // Only root needs to read the holder's pid (issue 15: the lock files were 0644).
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(open_err)?;
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(f) => f,
        Err((mut f, Errno::EWOULDBLOCK)) => {
            let mut s = String::new();
            let holder = match f
                .read_to_string(&mut s)
                .ok()
                .and(s.trim().parse::<u32>().ok())
            {
                Some(pid) => format!("pid {pid}"),
                None => "pid unknown".into(),
            };
            return Err(Error::Held {
                what,
                target: target.into(),
                holder,
                path: path.into(),
            });
        }
        Err((_, source)) => {
            return Err(Error::Lock {
                path: path.into(),
                source,
            })
        }
    };
    // A file left by an older crustd keeps its mode on open: narrow it too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(open_err)?;
    file.set_len(0).map_err(open_err)?;
    file.rewind().map_err(open_err)?;
    writeln!(file, "{}", std::process::id()).map_err(open_err)?;
    Ok(Lock {
        _file: file,
        path: path.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_are_owner_only_also_when_left_0644() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let d = tempfile::tempdir().unwrap();
        let l = dir(d.path(), "root").unwrap();
        assert_eq!(mode(l.path()), 0o600);
        drop(l);
        let s = d.path().join("crust.sock");
        let old = d.path().join("crust.sock.lock");
        std::fs::write(&old, "1\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let l = socket(&s).unwrap();
        assert_eq!(mode(l.path()), 0o600);
    }

    #[test]
    fn second_lock_is_refused_naming_the_holder_then_free_after_drop() {
        let d = tempfile::tempdir().unwrap();
        let a = dir(d.path(), "state directory").unwrap();
        let text = std::fs::read_to_string(d.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process, as a second crustd would.
        let e = dir(d.path(), "state directory").unwrap_err();
        let m = e.to_string();
        assert!(m.contains(&format!("pid {}", std::process::id())), "{m}");
        assert!(m.contains("state directory"), "{m}");
        assert!(m.contains(&d.path().display().to_string()), "{m}");
        drop(a);
        let _b = dir(d.path(), "state directory").unwrap();
    }

    #[test]
    fn socket_lock_sits_beside_the_socket() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("sub/crust.sock");
        let l = socket(&s).unwrap();
        assert_eq!(l.path(), d.path().join("sub/crust.sock.lock"));
        let e = socket(&s).unwrap_err().to_string();
        assert!(e.contains("socket"), "{e}");
        assert!(e.contains(&s.display().to_string()), "{e}");
    }

    #[test]
    fn unknown_holder_when_the_file_names_none() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(LOCK_FILE);
        let f = std::fs::File::create(&p).unwrap();
        let _held = Flock::lock(f, FlockArg::LockExclusive).unwrap();
        let e = dir(d.path(), "root").unwrap_err().to_string();
        assert!(e.contains("pid unknown"), "{e}");
    }
}
