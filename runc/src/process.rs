//! Applies a runtime-spec `process` to the calling process, in the order the kernel needs:
//! rlimits, then [`finalize`]: umask, fd closing, cwd, user, capabilities, no_new_privs,
//! seccomp, signal reset; and finally [`Exec::exec`].
//!
//! Invariants: when `execve` runs, no fd above stdio (other than `preserve_fds` and the
//! caller's close-on-exec fds) is open, and the cwd was resolved after every host fd was
//! closed (CVE-2024-21626 class). Everything that can fail for a reason in the config is in
//! [`finalize`], which the init runs before it tells `create` it is ready; after it only the
//! execve itself (and nothing that allocates) remains.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimitType, Process};

/// Errors of applying process settings.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("setrlimit {name}")]
    Rlimit {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("close fds")]
    CloseFds(#[source] std::io::Error),
    #[error("chdir to cwd {cwd:?}")]
    Chdir {
        cwd: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cwd {cwd:?} is outside the container root")]
    CwdOutside { cwd: PathBuf },
    #[error("set user {uid}:{gid}")]
    User {
        uid: u32,
        gid: u32,
        #[source]
        source: nix::Error,
    },
    #[error("process.capabilities.{set}: {caps} not held by the runtime, so it cannot grant them")]
    CapsNotHeld { set: &'static str, caps: String },
    #[error("set capabilities ({set})")]
    Caps {
        set: &'static str,
        #[source]
        source: caps::errors::CapsError,
    },
    #[error("set no_new_privileges")]
    NoNewPrivs(#[source] nix::Error),
    #[error("exec: {path:?}: executable file not found in $PATH")]
    NotFound { path: String },
    #[error("exec: {path:?}: no such executable file")]
    NotExecutable { path: String },
    #[error("exec {path:?}")]
    Exec {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("argument contains a NUL byte")]
    Nul,
    #[error("seccomp")]
    Seccomp(#[source] crate::seccomp::SeccompError),
    #[error("write {path}")]
    Label {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn rlimit_resource(t: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        T::RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        T::RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        T::RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        T::RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        T::RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        T::RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        T::RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        T::RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        T::RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        T::RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        T::RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        T::RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        T::RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        T::RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        T::RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// Sets `process.rlimits`.
pub fn set_rlimits(process: &Process) -> Result<(), ProcessError> {
    for r in process.rlimits().iter().flatten() {
        let (res, name) = rlimit_resource(r.typ());
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit with a valid resource and a pointer to a live struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(ProcessError::Rlimit {
                name: name.into(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Closes every fd >= 3 + preserve_fds except those in `keep` (close-on-exec fds the
/// caller still needs: the sync socket that reports execve failures, the exec fifo), with
/// close_range, falling back to /proc/self/fd.
pub fn close_fds(preserve_fds: u32, keep: &[i32]) -> Result<(), ProcessError> {
    let first = 3 + preserve_fds;
    let mut kept: Vec<u32> = keep
        .iter()
        .filter_map(|&k| u32::try_from(k).ok())
        .filter(|&k| k >= first)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut ranges = Vec::new();
    let mut lo = first;
    for k in kept {
        if k > lo {
            ranges.push((lo, k - 1));
        }
        lo = k + 1;
    }
    ranges.push((lo, u32::MAX));
    let mut ok = true;
    for (lo, hi) in ranges {
        // SAFETY: close_range only closes fds; nothing in this process uses them afterwards.
        ok &= unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) } == 0;
    }
    if ok {
        return Ok(());
    }
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(ProcessError::CloseFds)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|&fd: &i32| fd >= first as i32 && !keep.contains(&fd))
        .collect();
    for fd in fds {
        // SAFETY: closing an fd number; errors (e.g. the read_dir fd, already closed) are harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// chdir into `cwd` and checks the result is inside the (already pivoted) root.
pub fn enter_cwd(cwd: &Path) -> Result<(), ProcessError> {
    nix::unistd::chdir(cwd).map_err(|source| ProcessError::Chdir {
        cwd: cwd.into(),
        source,
    })?;
    // getcwd reports "(unreachable)/..." (ENOENT from glibc) for a directory outside the root.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(ProcessError::CwdOutside { cwd: cwd.into() }),
    }
}

fn to_caps(set: &Option<Capabilities>) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| format!("CAP_{c}").parse::<Cap>().ok())
        .collect()
}

fn caps_err(set: &'static str) -> impl Fn(caps::errors::CapsError) -> ProcessError {
    move |source| ProcessError::Caps { set, source }
}

/// The capabilities of `wanted` missing from `held`, as "CAP_A, CAP_B" (sorted).
fn missing(wanted: &CapsHashSet, held: &CapsHashSet) -> Option<String> {
    let mut m: Vec<String> = wanted.difference(held).map(|c| c.to_string()).collect();
    m.sort();
    (!m.is_empty()).then(|| m.join(", "))
}

/// Checks that the capability sets asked for can be set at all: a process can only keep
/// permitted capabilities it holds, and only inherit ones in its bounding set (e.g. root on
/// a host without CAP_SYS_RESOURCE cannot grant it). Done before anything changes, so the
/// error names the capabilities instead of capset's bare EPERM.
fn check_caps_held(c: &LinuxCapabilities) -> Result<(), ProcessError> {
    let read = |set: CapSet| caps::read(None, set).map_err(caps_err("read"));
    let permitted = read(CapSet::Permitted)?;
    let bounding = read(CapSet::Bounding)?;
    for (set, wanted, held) in [
        ("permitted", to_caps(c.permitted()), &permitted),
        ("effective", to_caps(c.effective()), &permitted),
        ("inheritable", to_caps(c.inheritable()), &bounding),
    ] {
        if let Some(caps) = missing(&wanted, held) {
            return Err(ProcessError::CapsNotHeld { set, caps });
        }
    }
    Ok(())
}

/// Switches to `process.user` and sets the five capability sets.
pub fn set_user_and_caps(process: &Process) -> Result<(), ProcessError> {
    let user = process.user();
    let (uid, gid) = (user.uid(), user.gid());
    let c = process.capabilities().as_ref();
    if let Some(c) = c {
        check_caps_held(c)?;
    }
    let bounding = c.map(|c| to_caps(c.bounding()));
    if let Some(b) = &bounding {
        for cap in caps::all() {
            if !b.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                caps::drop(None, CapSet::Bounding, cap).map_err(caps_err("bounding"))?;
            }
        }
    }
    let uerr = |source| ProcessError::User { uid, gid, source };
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let groups: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    // setgroups is denied in a user namespace whose setgroups file says "deny"; only fail
    // when groups were actually asked for.
    if let Err(e) = nix::unistd::setgroups(&groups) {
        if !groups.is_empty() {
            return Err(uerr(e));
        }
    }
    let g = nix::unistd::Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(uerr)?;
    let u = nix::unistd::Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(uerr)?;
    if let Some(c) = c {
        caps::set(None, CapSet::Effective, &to_caps(c.effective()))
            .map_err(caps_err("effective"))?;
        caps::set(None, CapSet::Permitted, &to_caps(c.permitted()))
            .map_err(caps_err("permitted"))?;
        caps::set(None, CapSet::Inheritable, &to_caps(c.inheritable()))
            .map_err(caps_err("inheritable"))?;
        let _ = caps::clear(None, CapSet::Ambient);
        for cap in to_caps(c.ambient()) {
            // Ambient needs the cap in permitted and inheritable; runc ignores failures here.
            let _ = caps::raise(None, CapSet::Ambient, cap);
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// prctl(PR_SET_NO_NEW_PRIVS).
pub fn set_no_new_privs() -> Result<(), ProcessError> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(ProcessError::NoNewPrivs(nix::Error::last()));
    }
    Ok(())
}

/// The process environment, with HOME (from the container's /etc/passwd, else "/") and PATH
/// defaults added as runc does. Call after pivot.
pub fn environment(process: &Process) -> Vec<String> {
    environment_with(process, Path::new("/etc/passwd"))
}

/// The largest passwd file looked at for HOME.
const PASSWD_CAP: u64 = 4 << 20;

/// [`environment`] with the passwd file at `passwd`. The container controls that file: it
/// is read only when it is a regular file of at most [`PASSWD_CAP`] bytes, opened with
/// O_NONBLOCK, so a FIFO or a device there (or a symlink to one) cannot block or exhaust
/// the init or an exec.
fn environment_with(process: &Process, passwd: &Path) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let uid = process.user().uid();
        let home = small_regular_file(passwd)
            .and_then(|p| {
                p.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 5 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
                })
            })
            .unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

/// The text of `path` if it is a regular file of at most [`PASSWD_CAP`] bytes.
fn small_regular_file(path: &Path) -> Option<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // stat first: opening a device may have effects of its own.
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?; // it may have been replaced since the stat
    if !m.is_file() || m.len() > PASSWD_CAP {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(PASSWD_CAP).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Resolves `args[0]` through PATH from `env` (inside the container, after pivot).
pub fn resolve_executable(process: &Process, env: &[String]) -> Result<PathBuf, ProcessError> {
    let arg0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    if arg0.contains('/') {
        let p = PathBuf::from(&arg0);
        if nix::unistd::access(&p, nix::unistd::AccessFlags::X_OK).is_err() || !p.is_file() {
            return Err(ProcessError::NotExecutable { path: arg0 });
        }
        return Ok(p);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(&arg0);
        if nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
            && candidate.is_file()
        {
            return Ok(candidate);
        }
    }
    Err(ProcessError::NotFound { path: arg0 })
}

/// Writes an LSM label for the next execve (`attr` is "exec" for processes).
pub fn set_lsm_exec_label(lsm_file: &str, value: &str) -> Result<(), ProcessError> {
    std::fs::write(lsm_file, value).map_err(|source| ProcessError::Label {
        path: lsm_file.into(),
        source,
    })
}

/// Whether AppArmor is enabled on this host.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Whether SELinux is enabled on this host.
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn cstrings<'a>(it: impl Iterator<Item = &'a str>) -> Result<Vec<CString>, ProcessError> {
    it.map(|s| CString::new(s).map_err(|_| ProcessError::Nul))
        .collect()
}

/// Gives the program a clean signal state: ignored dispositions and the blocked mask survive
/// execve, and the runtime ignores SIGPIPE and blocks the signals it forwards.
fn reset_signals() {
    // The raw syscall: glibc's wrappers refuse its internal signals 32 and 33, which may
    // have been inherited as ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: rt_sigaction with a valid struct and sigset size 8; bad numbers fail.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// The execve left after [`finalize`]: path, argv and envp already as C strings, so nothing
/// is allocated once the seccomp filter is on.
#[derive(Debug)]
pub struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

impl Exec {
    /// Replaces this process with the program; only returns on error.
    pub fn exec(&self) -> ProcessError {
        match nix::unistd::execve(&self.path, &self.args, &self.env) {
            Ok(never) => match never {},
            Err(source) => ProcessError::Exec {
                path: PathBuf::from(std::ffi::OsStr::from_bytes(self.path.as_bytes())),
                source,
            },
        }
    }
}

/// Every step before the user program that can fail, in order: umask, fds (all but
/// `preserve_fds` and `keep`), cwd, seccomp (before dropping capabilities without
/// no_new_privs, which then needs CAP_SYS_ADMIN), user and capabilities, the executable
/// looked up as the user, no_new_privs and seccomp (as late as possible), and a clean signal
/// state. What is left is [`Exec::exec`].
pub fn finalize(
    process: &Process,
    seccomp: Option<&crate::seccomp::Program>,
    env: &[String],
    preserve_fds: u32,
    keep: &[i32],
) -> Result<Exec, ProcessError> {
    if let Some(m) = process.user().umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
    }
    close_fds(preserve_fds, keep)?;
    // As runc: try the cwd as root first; a directory only the container user may enter
    // (a volume chowned to it) is tried again once the user is set.
    let cwd_later = match enter_cwd(process.cwd()) {
        Ok(()) => false,
        Err(ProcessError::Chdir {
            source: nix::Error::EACCES | nix::Error::EPERM,
            ..
        }) => true,
        Err(e) => return Err(e),
    };
    let nnp = process.no_new_privileges().unwrap_or(false);
    if !nnp {
        if let Some(p) = seccomp {
            p.load().map_err(ProcessError::Seccomp)?;
        }
    }
    set_user_and_caps(process)?;
    if cwd_later {
        enter_cwd(process.cwd())?;
    }
    let exe = resolve_executable(process, env)?;
    let path = CString::new(exe.as_os_str().as_bytes()).map_err(|_| ProcessError::Nul)?;
    let args = cstrings(process.args().iter().flatten().map(String::as_str))?;
    let env = cstrings(env.iter().map(String::as_str))?;
    if nnp {
        set_no_new_privs()?;
        if let Some(p) = seccomp {
            p.load().map_err(ProcessError::Seccomp)?;
        }
    }
    reset_signals();
    Ok(Exec { path, args, env })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(uid: u32) -> Process {
        let mut p = Process::default();
        p.set_env(Some(vec!["PATH=/bin".into()]));
        let mut u = oci_spec::runtime::User::default();
        u.set_uid(uid);
        p.set_user(u);
        p
    }

    fn home(p: &Process, passwd: &Path) -> String {
        environment_with(p, passwd)
            .into_iter()
            .find_map(|e| e.strip_prefix("HOME=").map(String::from))
            .unwrap_or_default()
    }

    #[test]
    fn home_comes_from_a_regular_passwd_only() {
        let d = tempfile::tempdir().unwrap();
        let pw = d.path().join("passwd");
        std::fs::write(
            &pw,
            "root:x:0:0:root:/root:/bin/sh\nu:x:7:7::/home/u:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(home(&process(7), &pw), "/home/u");
        assert_eq!(home(&process(8), &pw), "/");
        // A FIFO nobody writes to (a container can make one): not opened, no hang.
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = process(0);
        std::thread::spawn(move || {
            let _ = tx.send(home(&p, &fifo));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(got.as_deref(), Ok("/"), "passwd as a FIFO");
        // A symlink to an endless device: not read.
        let zero = d.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(home(&process(0), &zero), "/");
        // Too large.
        let big = d.path().join("big");
        let mut text = "root:x:0:0:root:/root:/bin/sh\n".to_string().into_bytes();
        text.resize((PASSWD_CAP + 1) as usize, b'#');
        std::fs::write(&big, text).unwrap();
        assert_eq!(home(&process(0), &big), "/");
    }
}
