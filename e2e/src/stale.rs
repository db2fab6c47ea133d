//! Whether a workspace binary is older than its sources, for [`crate::workspace_bin`].
//!
//! The sources of a package are every file below its directory but its `tests/` and
//! `benches/` (what its binaries cannot include), and the same for each workspace crate it
//! depends on, transitively, plus the workspace's `Cargo.toml` and `Cargo.lock`. A change
//! that does not reach the binary (a comment in a test helper of `src/`) only costs a cargo
//! build that finds nothing to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A source of `package` (in the workspace at `root`) modified after `built`, if any.
pub fn newer_source(root: &Path, package: &str, built: SystemTime) -> Option<PathBuf> {
    let members = members(root);
    let mut todo = vec![package.to_string()];
    let mut seen = BTreeSet::new();
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    while let Some(p) = todo.pop() {
        let Some(dir) = members.get(&p) else {
            continue;
        };
        if !seen.insert(p.clone()) {
            continue;
        }
        walk(dir, dir, &mut files);
        todo.extend(
            dependencies(&dir.join("Cargo.toml"))
                .into_iter()
                .filter(|d| members.contains_key(d)),
        );
    }
    files.into_iter().find(|f| {
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built)
    })
}

/// The workspace's packages: name -> directory.
fn members(root: &Path) -> BTreeMap<String, PathBuf> {
    let ws = read_toml(&root.join("Cargo.toml"));
    let dirs = ws
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    dirs.iter()
        .filter_map(|d| d.as_str())
        .filter_map(|d| {
            let t = read_toml(&root.join(d).join("Cargo.toml"));
            let name = t.get("package")?.get("name")?.as_str()?.to_string();
            Some((name, root.join(d)))
        })
        .collect()
}

/// The names in the `[dependencies]` and `[build-dependencies]` of a manifest.
fn dependencies(manifest: &Path) -> Vec<String> {
    let t = read_toml(manifest);
    ["dependencies", "build-dependencies"]
        .iter()
        .filter_map(|s| t.get(*s).and_then(|d| d.as_table()))
        .flat_map(|d| d.keys().cloned())
        .collect()
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    toml::from_str(&text).unwrap_or_default()
}

/// The files below `dir`, leaving out `tests/`, `benches/` and `target/` of the package at
/// `top`.
fn walk(top: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(t) = e.file_type() else {
            continue;
        };
        if t.is_dir() {
            let skip = dir == top
                && ["tests", "benches", "target"]
                    .iter()
                    .any(|s| e.file_name() == *s);
            if !skip {
                walk(top, &p, out);
            }
        } else if t.is_file() {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// A fake workspace: `app` uses `lib`, `other` is unrelated.
    fn workspace() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            r,
            "Cargo.toml",
            "[workspace]\nmembers = [\"app\", \"lib\", \"other\"]\n",
        );
        write(r, "Cargo.lock", "");
        write(
            r,
            "app/Cargo.toml",
            "[package]\nname = \"x-app\"\n[dependencies]\nx-lib.workspace = true\nserde = \"1\"\n",
        );
        write(r, "app/src/main.rs", "");
        write(r, "app/tests/t.rs", "");
        write(r, "lib/Cargo.toml", "[package]\nname = \"x-lib\"\n");
        write(r, "lib/src/lib.rs", "");
        write(r, "other/Cargo.toml", "[package]\nname = \"x-other\"\n");
        write(r, "other/src/lib.rs", "");
        t
    }

    fn touch(root: &Path, rel: &str) {
        let f = std::fs::File::options()
            .write(true)
            .open(root.join(rel))
            .unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(10))
            .unwrap();
    }

    #[test]
    fn a_change_in_the_package_or_a_crate_it_uses_is_newer() {
        let t = workspace();
        let built = SystemTime::now() + Duration::from_secs(5);
        assert_eq!(newer_source(t.path(), "x-app", built), None);
        touch(t.path(), "lib/src/lib.rs");
        assert_eq!(
            newer_source(t.path(), "x-app", built),
            Some(t.path().join("lib/src/lib.rs"))
        );
    }

    #[test]
    fn tests_and_unrelated_crates_are_not_sources() {
        let t = workspace();
        let built = SystemTime::now() + Duration::from_secs(5);
        touch(t.path(), "app/tests/t.rs");
        touch(t.path(), "other/src/lib.rs");
        assert_eq!(newer_source(t.path(), "x-app", built), None);
        touch(t.path(), "app/src/main.rs");
        assert!(newer_source(t.path(), "x-app", built).is_some());
    }
}
