//! Modes of what crustd creates under its root and state (CVE-2021-41103 class): an
//! unprivileged local user must read no container's configuration (environment, secrets)
//! and list no image's layers.
//!
//! As containerd: the root and state directories are [`TOP`] (0711: traversable, not
//! listable), every directory crustd makes directly in them is [`PRIVATE_DIR`] (0700), and
//! files that hold container configuration are [`PRIVATE_FILE`] (0600). Directories that
//! already exist (made by an older crustd) are tightened to the mode, never loosened
//! elsewhere. What containers themselves read (resolv.conf, hosts, the rootfs) keeps its
//! own mode: it is reached through mounts, not through these paths.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// The root and state directories: traversable by all, listable by root only.
pub const TOP: u32 = 0o711;
/// Every directory crustd creates in its root or state.
pub const PRIVATE_DIR: u32 = 0o700;
/// Files holding container configuration (bundles' `config.json`, the metadata store).
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `path` (missing parents with the same mode) and sets its mode to `mode`.
pub fn dir(path: &Path, mode: u32) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(mode).create(path)?;
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}

/// Writes `data` to `path` (created or truncated) with mode [`PRIVATE_FILE`], whatever the
/// umask or the mode of a file already there.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(PRIVATE_FILE))?;
    f.write_all(data)
}

/// Sets the mode of an existing file to [`PRIVATE_FILE`].
pub fn restrict_file(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(PRIVATE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn creates_and_tightens() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        dir(&d, PRIVATE_DIR).unwrap();
        assert_eq!((mode(&d), mode(&t.path().join("a"))), (0o700, 0o700));
        std::fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        dir(&d, TOP).unwrap();
        assert_eq!(mode(&d), 0o711);
        let f = d.join("f");
        std::fs::write(&f, b"old").unwrap();
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        write_private(&f, b"new").unwrap();
        assert_eq!(
            (mode(&f), std::fs::read(&f).unwrap()),
            (0o600, b"new".to_vec())
        );
        std::fs::set_permissions(&f, Permissions::from_mode(0o666)).unwrap();
        restrict_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
    }
}
