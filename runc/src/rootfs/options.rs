//! Mount option parsing: the option words of `spec.mounts[].options` to mount(2) flags,
//! propagation changes, recursive mount attributes and the filesystem data string.
//!
//! The option names are runc's (libcontainer/specconv `mountFlags`, `mountPropagationMapping`,
//! recursive `r*` attributes). Unknown words become filesystem data (`size=64m`, `mode=755`,
//! `newinstance`, ...), exactly as runc passes them on.

use crust_cgroups::mount_flags::flag_word;
use libc::c_ulong;

// mount_setattr(2) attributes (linux/mount.h); kernel ABI constants.
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
pub(crate) const MOUNT_ATTR_ATIME_MASK: u64 = 0x0000_0070;
pub(crate) const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
pub(crate) const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
pub(crate) const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
pub(crate) const MOUNT_ATTR_NODIRATIME: u64 = 0x0000_0080;
pub(crate) const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// A parsed `options` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MountOptions {
    /// MS_* flags for mount(2), without propagation flags.
    pub flags: c_ulong,
    /// Propagation changes applied after the mount, in order (MS_SHARED, MS_REC|MS_PRIVATE, ...).
    pub propagation: Vec<c_ulong>,
    /// MOUNT_ATTR_* to set recursively with mount_setattr(2) ("rro", "rnosuid", ...).
    pub rec_attr_set: u64,
    /// MOUNT_ATTR_* to clear recursively ("rrw", "rsuid", ...).
    pub rec_attr_clr: u64,
    /// Recursive atime mode (MOUNT_ATTR_RELATIME/NOATIME/STRICTATIME) for mount_setattr(2).
    pub rec_atime: Option<u64>,
    /// Filesystem-specific data, comma-joined for mount(2).
    pub data: Vec<String>,
    /// runc's "tmpcopyup" extension: copy the covered directory into a new tmpfs.
    pub tmpcopyup: bool,
    /// "idmap" (false) or "ridmap" (true): the OCI mount's uid/gid mappings apply to this
    /// mount only, or to its submounts too. Mappings without either option act as "idmap"
    /// with the recursion of "rbind".
    pub idmap: Option<bool>,
}

/// Why an option list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("mount option {0:?} (id-mapped mounts with inline maps) is not supported; give uidMappings/gidMappings")]
    IdMap(String),
}

impl MountOptions {
    /// The data string for mount(2), if any.
    pub(crate) fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// True for "bind"/"rbind".
    pub(crate) fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    /// True for "rbind".
    #[cfg(test)]
    pub(crate) fn is_recursive_bind(&self) -> bool {
        self.is_bind() && self.flags & libc::MS_REC != 0
    }
}

/// Propagation flags of a propagation word ("rshared", "slave", ...).
pub(crate) fn propagation_word(word: &str) -> Option<c_ulong> {
    Some(match word {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// Recursive mount attributes (mount_setattr) of an "r*" word: (set?, MOUNT_ATTR_*).
fn recursive_word(word: &str) -> Option<(bool, u64)> {
    // The atime words are handled by `atime_word`.
    Some(match word {
        "rro" => (true, MOUNT_ATTR_RDONLY),
        "rrw" => (false, MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, MOUNT_ATTR_NOSUID),
        "rsuid" => (false, MOUNT_ATTR_NOSUID),
        "rnodev" => (true, MOUNT_ATTR_NODEV),
        "rdev" => (false, MOUNT_ATTR_NODEV),
        "rnoexec" => (true, MOUNT_ATTR_NOEXEC),
        "rexec" => (false, MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (true, MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (true, MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Recursive atime mode words: the atime field is replaced as a whole (MOUNT_ATTR__ATIME).
/// The negated words ("rnorelatime", "ratime", "rnostrictatime") clear a mode, which runc
/// also turns into a no-op on the atime field; they are accepted and leave it alone.
fn atime_word(word: &str) -> Option<Option<u64>> {
    Some(match word {
        "rrelatime" => Some(MOUNT_ATTR_RELATIME),
        "rnoatime" => Some(MOUNT_ATTR_NOATIME),
        "rstrictatime" => Some(MOUNT_ATTR_STRICTATIME),
        "rnorelatime" | "ratime" | "rnostrictatime" => None,
        _ => return None,
    })
}

/// Parses an option list. `fstype` "bind" implies MS_BIND (runc treats a bind-typed mount
/// without "bind"/"rbind" as a plain bind).
pub(crate) fn parse(fstype: Option<&str>, options: &[String]) -> Result<MountOptions, OptionError> {
    let mut out = MountOptions::default();
    if fstype == Some("bind") {
        out.flags |= libc::MS_BIND;
    }
    for word in options {
        let word = word.as_str();
        if let Some((set, flag)) = flag_word(word) {
            if set {
                out.flags |= flag;
            } else {
                out.flags &= !flag;
            }
        } else if let Some(p) = propagation_word(word) {
            out.propagation.push(p);
        } else if let Some((set, attr)) = recursive_word(word) {
            if set {
                out.rec_attr_set |= attr;
                out.rec_attr_clr &= !attr;
            } else {
                out.rec_attr_clr |= attr;
                out.rec_attr_set &= !attr;
            }
        } else if let Some(mode) = atime_word(word) {
            if mode.is_some() {
                out.rec_atime = mode;
            }
        } else if word == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if word == "idmap" || word == "ridmap" {
            out.idmap = Some(word == "ridmap");
        } else if word.starts_with("idmap=") || word.starts_with("ridmap=") {
            return Err(OptionError::IdMap(word.to_string()));
        } else if !word.is_empty() {
            out.data.push(word.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(fstype: Option<&str>, opts: &[&str]) -> MountOptions {
        let opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse(fstype, &opts).expect("parses")
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = p(
            Some("tmpfs"),
            &[
                "nosuid",
                "nodev",
                "noexec",
                "ro",
                "rw",
                "mode=755",
                "size=65536k",
            ],
        );
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert!(!o.is_bind());
        let o = p(
            None,
            &["suid", "nosuid", "exec", "dev", "strictatime", "defaults"],
        );
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data_string(), None);
    }

    #[test]
    fn bind_and_rbind() {
        assert!(p(Some("bind"), &[]).is_bind());
        assert!(!p(Some("bind"), &[]).is_recursive_bind());
        assert!(p(Some("none"), &["rbind", "ro"]).is_recursive_bind());
        assert!(p(None, &["bind"]).is_bind());
        assert_eq!(
            p(None, &["rbind", "ro"]).flags & libc::MS_RDONLY,
            libc::MS_RDONLY
        );
    }

    #[test]
    fn propagation_words() {
        let o = p(
            Some("bind"),
            &["rbind", "rshared", "private", "slave", "runbindable"],
        );
        assert_eq!(
            o.propagation,
            vec![
                libc::MS_SHARED | libc::MS_REC,
                libc::MS_PRIVATE,
                libc::MS_SLAVE,
                libc::MS_UNBINDABLE | libc::MS_REC
            ]
        );
        assert_eq!(o.flags & (libc::MS_SHARED | libc::MS_PRIVATE), 0);
    }

    #[test]
    fn recursive_attributes() {
        let o = p(
            Some("bind"),
            &["rbind", "rro", "rnosuid", "rnoexec", "rexec"],
        );
        assert_eq!(o.rec_attr_set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(o.rec_attr_clr, MOUNT_ATTR_NOEXEC);
    }

    #[test]
    fn devpts_data_and_extensions() {
        let o = p(
            Some("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        );
        assert_eq!(
            o.data_string().as_deref(),
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5")
        );
        assert!(p(Some("tmpfs"), &["tmpcopyup"]).tmpcopyup);
    }

    #[test]
    fn idmap_words() {
        assert_eq!(p(Some("bind"), &["rbind", "idmap"]).idmap, Some(false));
        assert_eq!(p(Some("bind"), &["rbind", "ridmap"]).idmap, Some(true));
        assert_eq!(p(Some("bind"), &["rbind"]).idmap, None);
        // crun's inline form is not ours.
        let e = parse(Some("bind"), &["idmap=uids=0-1-2".into()]).expect_err("refused");
        assert!(e.to_string().contains("idmap="));
    }
}
