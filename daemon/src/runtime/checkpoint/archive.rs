//! The container checkpoint archive, laid out as CRI-O and containerd write it (what
//! checkpointctl reads; file names from checkpointctl's metadata package):
//!
//! - `checkpoint/`      CRIU's images (plus runc's `descriptors.json`)
//! - `config.dump`      JSON: id, name, rootfsImage, rootfsImageRef, rootfsImageName,
//!   runtime, createdTime, checkpointedAt
//! - `spec.dump`        the OCI runtime spec the container ran with
//! - `rootfs-diff.tar`  the files the container added or changed (its overlay upper dir)
//! - `deleted.files`    JSON array of the image files the container deleted
//! - `container.log`    the CRI log so far
//! - `dump.log`, `stats-dump`  CRIU's log and statistics of the dump
//!
//! Written to a temporary file beside the destination and renamed into place, so kubelet
//! never sees half an archive. Reading (restore) takes the metadata first, then unpacks
//! the images, applies the rootfs diff to the new container's empty upper dir and puts
//! the deleted files back as overlay whiteouts.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const CONFIG_DUMP: &str = "config.dump";
pub const SPEC_DUMP: &str = "spec.dump";
pub const ROOTFS_DIFF: &str = "rootfs-diff.tar";
pub const DELETED_FILES: &str = "deleted.files";
pub const CONTAINER_LOG: &str = "container.log";
/// Written by CRIU into the work directory.
pub const DUMP_LOG: &str = "dump.log";
pub const STATS_DUMP: &str = "stats-dump";

/// `config.dump` (checkpointctl's ContainerConfig fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigDump {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub rootfs_image: String,
    #[serde(default)]
    pub rootfs_image_ref: String,
    #[serde(default)]
    pub rootfs_image_name: String,
    #[serde(default, rename = "runtime")]
    pub oci_runtime: String,
    #[serde(default)]
    pub created_time: String,
    #[serde(default)]
    pub checkpointed_at: String,
}

/// What goes into an archive besides the CRIU images (in `work/checkpoint`).
pub struct Contents<'a> {
    pub config: &'a ConfigDump,
    /// The bundle's config.json.
    pub spec: &'a Path,
    /// The overlay upper dir (None: no rootfs diff, e.g. a read-only snapshot).
    pub upper: Option<&'a Path>,
    /// The CRI log (may be missing).
    pub log: Option<&'a Path>,
    /// Where CRIU wrote its images (`checkpoint/`), log and stats.
    pub work: &'a Path,
}

fn err(what: &str, p: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what} {}: {e}", p.display()))
}

/// Writes the archive to `dest` (through `dest.tmp-…` and a rename).
pub fn write(dest: &Path, c: &Contents<'_>) -> std::io::Result<()> {
    let tmp = dest.with_file_name(format!(
        ".{}.crust-tmp",
        dest.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("checkpoint")
    ));
    let r = write_to(&tmp, c).and_then(|()| std::fs::rename(&tmp, dest));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn write_to(tmp: &Path, c: &Contents<'_>) -> std::io::Result<()> {
    let f = File::create(tmp).map_err(|e| err("create", tmp, e))?;
    let mut b = tar::Builder::new(BufWriter::new(f));
    b.follow_symlinks(false);
    append_bytes(&mut b, CONFIG_DUMP, &json(c.config))?;
    b.append_path_with_name(c.spec, SPEC_DUMP)
        .map_err(|e| err("add", c.spec, e))?;
    let images = c.work.join(CHECKPOINT_DIR);
    b.append_dir_all(CHECKPOINT_DIR, &images)
        .map_err(|e| err("add", &images, e))?;
    for name in [DUMP_LOG, STATS_DUMP] {
        let p = c.work.join(name);
        if p.exists() {
            b.append_path_with_name(&p, name)
                .map_err(|e| err("add", &p, e))?;
        }
    }
    if let Some(log) = c.log.filter(|l| l.is_file()) {
        b.append_path_with_name(log, CONTAINER_LOG)
            .map_err(|e| err("add", log, e))?;
    }
    let mut deleted = Vec::new();
    if let Some(upper) = c.upper {
        let mut diff = tar::Builder::new(Vec::new());
        diff.follow_symlinks(false);
        walk_upper(upper, Path::new(""), &mut diff, &mut deleted)?;
        let diff = diff.into_inner()?;
        append_bytes(&mut b, ROOTFS_DIFF, &diff)?;
    }
    append_bytes(&mut b, DELETED_FILES, &json(&deleted))?;
    b.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

fn append_bytes<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
}

/// Adds `upper/rel` to `diff`, recording overlay whiteouts (char devices 0:0) as
/// deleted files rather than archiving them.
fn walk_upper(
    upper: &Path,
    rel: &Path,
    diff: &mut tar::Builder<Vec<u8>>,
    deleted: &mut Vec<String>,
) -> std::io::Result<()> {
    let dir = upper.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| err("read", &dir, e))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = rel.join(e.file_name());
        let path = e.path();
        let md = std::fs::symlink_metadata(&path)?;
        if md.file_type().is_char_device() && md.rdev() == 0 {
            deleted.push(format!("/{}", name.display()));
            continue;
        }
        diff.append_path_with_name(&path, &name)
            .map_err(|e| err("add", &path, e))?;
        if md.is_dir() {
            walk_upper(upper, &name, diff, deleted)?;
        }
    }
    Ok(())
}

/// Whether `image` (CreateContainer's image) names a checkpoint archive: an absolute path
/// to an existing regular file, as containerd and CRI-O decide (an image reference is
/// never an absolute path).
pub fn is_archive(image: &str) -> bool {
    image.starts_with('/') && Path::new(image).is_file()
}

/// Reads `config.dump` and `spec.dump` (the spec as raw JSON) from the archive.
pub fn read_meta(archive: &Path) -> std::io::Result<(ConfigDump, serde_json::Value)> {
    let f = File::open(archive).map_err(|e| err("open", archive, e))?;
    let mut a = tar::Archive::new(BufReader::new(f));
    let (mut config, mut spec) = (None, None);
    for e in a.entries().map_err(|e| err("read", archive, e))? {
        let mut e = e.map_err(|e| err("read", archive, e))?;
        let name = e.path()?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./");
        if name == CONFIG_DUMP {
            config = Some(
                serde_json::from_reader(&mut e)
                    .map_err(|x| err("parse config.dump of", archive, x))?,
            );
        } else if name == SPEC_DUMP {
            spec = Some(
                serde_json::from_reader(&mut e)
                    .map_err(|x| err("parse spec.dump of", archive, x))?,
            );
        }
        if config.is_some() && spec.is_some() {
            break;
        }
    }
    match (config, spec) {
        (Some(c), Some(s)) => Ok((c, s)),
        _ => Err(err(
            "not a container checkpoint archive (no config.dump or spec.dump)",
            archive,
            "",
        )),
    }
}

/// A path from `deleted.files`, relative and without `..` (else None).
fn safe_rel(p: &str) -> Option<PathBuf> {
    let rel = Path::new(p.trim_start_matches('/'));
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| rel.to_path_buf())
        .filter(|r| !r.as_os_str().is_empty())
}

/// Unpacks the archive for a restore: CRIU images into `images`, the rootfs diff into
/// the (fresh) `upper` dir with deleted files as whiteouts, the CRI log to `log`.
pub fn unpack(
    archive: &Path,
    images: &Path,
    upper: Option<&Path>,
    log: Option<&Path>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(images).map_err(|e| err("create", images, e))?;
    let f = File::open(archive).map_err(|e| err("open", archive, e))?;
    let mut a = tar::Archive::new(BufReader::new(f));
    let mut deleted: Vec<String> = Vec::new();
    for e in a.entries().map_err(|e| err("read", archive, e))? {
        let mut e = e.map_err(|e| err("read", archive, e))?;
        let path = e.path()?.into_owned();
        let name = path.to_string_lossy().trim_start_matches("./").to_string();
        if let Some(rest) = name.strip_prefix("checkpoint/") {
            // CRIU's images are flat files; anything else (or a path leaving the
            // directory) is not unpacked.
            if let Some(rel) = safe_rel(rest) {
                if e.header().entry_type().is_file() {
                    let to = images.join(rel);
                    if let Some(d) = to.parent() {
                        std::fs::create_dir_all(d)?;
                    }
                    e.unpack(&to).map_err(|x| err("unpack", &path, x))?;
                }
            }
        } else if name == ROOTFS_DIFF {
            if let Some(upper) = upper {
                let mut diff = tar::Archive::new(&mut e);
                diff.set_preserve_permissions(true);
                diff.set_preserve_ownerships(true);
                diff.set_unpack_xattrs(true);
                diff.set_overwrite(true);
                for d in diff
                    .entries()
                    .map_err(|x| err("read rootfs diff of", archive, x))?
                {
                    let mut d = d.map_err(|x| err("read rootfs diff of", archive, x))?;
                    d.unpack_in(upper)
                        .map_err(|x| err("unpack rootfs diff into", upper, x))?;
                }
            }
        } else if name == DELETED_FILES {
            deleted = serde_json::from_reader(&mut e)
                .map_err(|x| err("parse deleted.files of", archive, x))?;
        } else if name == CONTAINER_LOG {
            if let Some(log) = log {
                if let Some(d) = log.parent() {
                    std::fs::create_dir_all(d)?;
                }
                let mut out = File::create(log).map_err(|x| err("create", log, x))?;
                std::io::copy(&mut e, &mut out)?;
            }
        }
    }
    if let Some(upper) = upper {
        for p in &deleted {
            let Some(rel) = safe_rel(p) else { continue };
            let target = upper.join(&rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if target.symlink_metadata().is_ok() {
                continue;
            }
            // An overlay whiteout: a 0:0 character device hides the lower file.
            nix::sys::stat::mknod(
                &target,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .map_err(|x| err("whiteout", &target, x))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        std::fs::create_dir_all(work.join(CHECKPOINT_DIR)).unwrap();
        std::fs::write(work.join(CHECKPOINT_DIR).join("pages-1.img"), b"pages").unwrap();
        std::fs::write(work.join(DUMP_LOG), b"Dumping finished successfully").unwrap();
        let spec = t.path().join("config.json");
        std::fs::write(&spec, br#"{"ociVersion":"1.0.2"}"#).unwrap();
        let upper = t.path().join("upper");
        std::fs::create_dir_all(upper.join("data/sub")).unwrap();
        std::fs::write(upper.join("data/sub/f"), b"written").unwrap();
        std::os::unix::fs::symlink("sub/f", upper.join("data/link")).unwrap();
        let root = nix::unistd::Uid::effective().is_root();
        if root {
            nix::sys::stat::mknod(
                &upper.join("gone"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap();
        }
        let log = t.path().join("0.log");
        std::fs::write(&log, b"line\n").unwrap();
        let config = ConfigDump {
            id: "abc".into(),
            name: "c".into(),
            rootfs_image_name: "img:1".into(),
            ..Default::default()
        };
        let dest = t.path().join("ck.tar");
        write(
            &dest,
            &Contents {
                config: &config,
                spec: &spec,
                upper: Some(&upper),
                log: Some(&log),
                work: &work,
            },
        )
        .unwrap();
        assert!(is_archive(dest.to_str().unwrap()));
        assert!(!is_archive("docker.io/library/busybox:latest"));
        let (c, s) = read_meta(&dest).unwrap();
        assert_eq!(c, config);
        assert_eq!(s["ociVersion"], "1.0.2");

        let out = t.path().join("out");
        let new_upper = out.join("upper");
        std::fs::create_dir_all(&new_upper).unwrap();
        let new_log = out.join("logs/0.log");
        unpack(&dest, &out.join("images"), Some(&new_upper), Some(&new_log)).unwrap();
        assert_eq!(
            std::fs::read(out.join("images/pages-1.img")).unwrap(),
            b"pages"
        );
        assert_eq!(
            std::fs::read(new_upper.join("data/sub/f")).unwrap(),
            b"written"
        );
        assert_eq!(
            std::fs::read_link(new_upper.join("data/link")).unwrap(),
            Path::new("sub/f")
        );
        assert_eq!(std::fs::read(&new_log).unwrap(), b"line\n");
        if root {
            let md = std::fs::symlink_metadata(new_upper.join("gone")).unwrap();
            assert!(md.file_type().is_char_device() && md.rdev() == 0);
        }
    }

    #[test]
    fn deleted_paths_stay_inside() {
        assert_eq!(safe_rel("/etc/x"), Some(PathBuf::from("etc/x")));
        assert_eq!(safe_rel("/../x"), None);
        assert_eq!(safe_rel("a/../../x"), None);
        assert_eq!(safe_rel("/"), None);
    }

    #[test]
    fn a_tar_without_metadata_is_not_a_checkpoint() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.tar");
        let mut b = tar::Builder::new(File::create(&p).unwrap());
        append_bytes(&mut b, "other", b"x").unwrap();
        b.into_inner().unwrap();
        let e = read_meta(&p).unwrap_err().to_string();
        assert!(e.contains("not a container checkpoint archive"), "{e}");
    }
}
