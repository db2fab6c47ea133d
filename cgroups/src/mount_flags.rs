//! The mount(2) flag words of mount option lists (`ro`, `nosuid`, `rbind`, ...), runc's
//! table (libcontainer/specconv `mountFlags`): the one table crust-runc (OCI
//! `mounts[].options`) and crust-shim (the rootfs mounts of CreateTaskRequest) read. Kept in
//! this crate beside mountinfo because both binaries already link it; words not in the table
//! are filesystem data for the caller to pass on.

use libc::c_ulong;

/// MS_* flags set (`true`) or cleared (`false`) by each option word.
pub fn flag_word(word: &str) -> Option<(bool, c_ulong)> {
    Some(match word {
        "acl" => (true, libc::MS_POSIXACL),
        "async" => (false, libc::MS_SYNCHRONOUS),
        "atime" => (false, libc::MS_NOATIME),
        "bind" => (true, libc::MS_BIND),
        "defaults" => (true, 0),
        "dev" => (false, libc::MS_NODEV),
        "diratime" => (false, libc::MS_NODIRATIME),
        "dirsync" => (true, libc::MS_DIRSYNC),
        "exec" => (false, libc::MS_NOEXEC),
        "iversion" => (true, libc::MS_I_VERSION),
        "lazytime" => (true, libc::MS_LAZYTIME),
        "loud" => (false, libc::MS_SILENT),
        "mand" => (true, libc::MS_MANDLOCK),
        "noacl" => (false, libc::MS_POSIXACL),
        "noatime" => (true, libc::MS_NOATIME),
        "nodev" => (true, libc::MS_NODEV),
        "nodiratime" => (true, libc::MS_NODIRATIME),
        "noexec" => (true, libc::MS_NOEXEC),
        "noiversion" => (false, libc::MS_I_VERSION),
        "nolazytime" => (false, libc::MS_LAZYTIME),
        "nomand" => (false, libc::MS_MANDLOCK),
        "norelatime" => (false, libc::MS_RELATIME),
        "nostrictatime" => (false, libc::MS_STRICTATIME),
        "nosuid" => (true, libc::MS_NOSUID),
        "nosymfollow" => (true, libc::MS_NOSYMFOLLOW),
        "rbind" => (true, libc::MS_BIND | libc::MS_REC),
        "relatime" => (true, libc::MS_RELATIME),
        "remount" => (true, libc::MS_REMOUNT),
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "silent" => (true, libc::MS_SILENT),
        "strictatime" => (true, libc::MS_STRICTATIME),
        "suid" => (false, libc::MS_NOSUID),
        "symfollow" => (false, libc::MS_NOSYMFOLLOW),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        _ => return None,
    })
}
