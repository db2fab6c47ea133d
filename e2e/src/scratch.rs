//! A fresh ext4 filesystem for a benchmark run: a sparse file in /var/tmp, a loop device,
//! a mount point. Dropping it unmounts, detaches and deletes it.
//!
//! Why: this VM's root is ext4 without a journal, where ext4 refuses to reuse an inode freed
//! less than 60 s ago (`recently_deleted()`); scanning past the inodes freed by earlier
//! deletions (builds, the previous runtime's teardown) made file creation slow by a varying
//! amount for whichever runtime ran next. A fresh journaled filesystem per runtime, as on a
//! node, takes that out of the comparison.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Runs `cmd args`; its trimmed stdout, or an error with its stderr.
pub fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("run {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One fresh filesystem (see the module docs).
pub struct Scratch {
    mnt: Option<tempfile::TempDir>,
    dev: String,
    backing: PathBuf,
}

impl Scratch {
    pub fn new() -> anyhow::Result<Self> {
        let backing = tempfile::Builder::new()
            .prefix("crust-bench-fs-")
            .suffix(".ext4")
            .tempfile_in("/var/tmp")?
            .into_temp_path()
            .keep()?;
        let mut me = Self {
            mnt: None,
            dev: String::new(),
            backing,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&me.backing)?
            .set_len(4 << 30)?;
        let b = me.backing.display().to_string();
        // Inode tables and journal written now, not by ext4lazyinit during the pull.
        sh(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
                &b,
            ],
        )?;
        me.dev = sh("losetup", &["--find", "--show", &b])?;
        let mnt = tempfile::tempdir()?;
        sh("mount", &[&me.dev, &mnt.path().display().to_string()])?;
        me.mnt = Some(mnt);
        Ok(me)
    }

    pub fn path(&self) -> &Path {
        self.mnt
            .as_ref()
            .map_or(Path::new("/nonexistent"), |m| m.path())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(m) = self.mnt.take() {
            let p = m.path().display().to_string();
            if sh("umount", &[&p]).is_err() {
                let _ = sh("umount", &["-l", &p]);
            }
        }
        if !self.dev.is_empty() {
            let _ = sh("losetup", &["-d", &self.dev]);
        }
        let _ = std::fs::remove_file(&self.backing);
    }
}
