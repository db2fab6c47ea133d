//! Reading and writing cgroupfs interface files.
//!
//! Every function names the file in its error. Values are written with a single `write(2)`
//! (the kernel parses each write as one command) and without truncation or creation: a
//! missing interface file means the controller or feature is absent, which the caller
//! reports as such.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::CgroupError;

/// Writes `value` to `dir/file` with one write(2). The file is opened with O_TRUNC as runc
/// does (cgroupfs ignores it; on a fake tree the file then holds the last value written).
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    #[cfg(test)]
    write_log::record(&path, value);
    let res = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Reads `dir/file` as a string.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Reads `dir/file` if it exists (`Ok(None)` when it does not).
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Whether `dir/file` exists.
pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Parses one unsigned value; "max" (v2) maps to `u64::MAX`.
pub(crate) fn parse_u64(path: &Path, s: &str) -> Result<u64, CgroupError> {
    let t = s.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        reason: format!("{t:?} is not an unsigned integer"),
    })
}

/// Reads one unsigned value from `dir/file`.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let s = read(dir, file)?;
    parse_u64(&dir.join(file), &s)
}

/// Reads one unsigned value from `dir/file`, 0 when the file does not exist.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    match read_opt(dir, file)? {
        Some(s) => parse_u64(&dir.join(file), &s),
        None => Ok(0),
    }
}

/// Parses a flat keyed file ("key value" per line: memory.stat, cpu.stat, memory.events).
/// Lines whose value is not an unsigned integer are skipped.
pub(crate) fn parse_flat_keyed(s: &str) -> impl Iterator<Item = (&str, u64)> {
    s.lines().filter_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?;
        let v = it.next()?.parse().ok()?;
        Some((k, v))
    })
}

/// Value of `key` in a flat keyed file `dir/file`, `None` if the file or key is absent.
pub(crate) fn read_keyed(dir: &Path, file: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    Ok(read_opt(dir, file)?.and_then(|s| {
        parse_flat_keyed(&s)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }))
}

/// Parses a pid list (cgroup.procs).
pub(crate) fn read_pids(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let s = read(dir, "cgroup.procs")?;
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                reason: format!("{l:?} is not a pid"),
            })
        })
        .collect()
}

/// Pids of `dir` and every cgroup below it.
pub(crate) fn read_pids_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    out.extend(read_pids(dir)?);
    for sub in subdirs(dir)? {
        read_pids_recursive(&sub, out)?;
    }
    Ok(())
}

/// Child cgroups (subdirectories) of `dir`; empty if `dir` does not exist.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            v.push(e.path());
        }
    }
    Ok(v)
}

/// `mkdir -p` of a cgroup directory.
pub(crate) fn mkdir_all(dir: &Path) -> Result<(), CgroupError> {
    fs::create_dir_all(dir).map_err(|source| CgroupError::Create {
        path: dir.to_path_buf(),
        source,
    })
}

/// Removes `dir` and the cgroups below it, leaf first. A cgroup directory can only be removed
/// once its tasks are gone, so EBUSY is retried briefly (tasks may still be exiting);
/// ENOENT is success.
pub(crate) fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for sub in subdirs(dir)? {
        remove_tree(&sub)?;
    }
    let mut delay = std::time::Duration::from_millis(2);
    let mut tries = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 8 => {
                std::thread::sleep(delay);
                delay *= 2;
                tries += 1;
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Test-only record of every write made by the current thread, in order, so tests can check
/// exactly what would reach the kernel.
#[cfg(test)]
pub(crate) mod write_log {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    thread_local! {
        static LOG: RefCell<Vec<(PathBuf, String)>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn record(path: &Path, value: &str) {
        LOG.with(|l| l.borrow_mut().push((path.to_path_buf(), value.to_string())));
    }

    /// Takes the writes recorded so far, paths relative to `base`.
    pub(crate) fn take(base: &Path) -> Vec<(String, String)> {
        LOG.with(|l| {
            l.borrow_mut()
                .drain(..)
                .map(|(p, v)| {
                    let rel = p.strip_prefix(base).unwrap_or(&p);
                    (rel.to_string_lossy().into_owned(), v)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_skips_non_numeric() {
        let v: Vec<_> = parse_flat_keyed("a 1\nb x\nc 3 4\n\n").collect();
        assert_eq!(v, vec![("a", 1), ("c", 3)]);
    }

    #[test]
    fn parse_max() {
        assert_eq!(parse_u64(Path::new("x"), "max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(Path::new("x"), " 12\n").unwrap(), 12);
        assert!(parse_u64(Path::new("x"), "-1").is_err());
    }

    #[test]
    fn remove_tree_leaf_first_and_missing_ok() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a");
        fs::create_dir_all(d.join("b/c")).unwrap();
        fs::create_dir_all(d.join("d")).unwrap();
        remove_tree(&d).unwrap();
        assert!(!d.exists());
        remove_tree(&d).unwrap();
    }
}
