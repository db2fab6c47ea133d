//! Stamps the git commit into crustd and crustctl through this crate's `version` module
//! (`--version`, CRI Version's `runtime_version`): `git rev-parse` of the source tree when it
//! is a git checkout, else `$CRUST_GIT_COMMIT` (a source tarball or package build may set
//! it), else "unknown".
//! Sets `CRUST_GIT_COMMIT` for the crate.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CRUST_GIT_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match git(&dir, &["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs.
            let abs = |p: String| {
                let p = PathBuf::from(p);
                if p.is_absolute() {
                    p
                } else {
                    dir.join(p)
                }
            };
            if let Some(g) = git(&dir, &["rev-parse", "--git-dir"]).map(abs) {
                println!("cargo:rerun-if-changed={}", g.join("HEAD").display());
            }
            if let Some(common) = git(&dir, &["rev-parse", "--git-common-dir"]).map(abs) {
                if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
                    println!("cargo:rerun-if-changed={}", common.join(r).display());
                }
                // Only if it exists: cargo counts a missing file as changed, and reran this
                // script (and rebuilt everything above this crate) on every build in a
                // repository without packed refs (a worktree of a fresh repository).
                let packed = common.join("packed-refs");
                if packed.exists() {
                    println!("cargo:rerun-if-changed={}", packed.display());
                }
            }
            c
        }
        None => std::env::var("CRUST_GIT_COMMIT")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".into()),
    };
    println!("cargo:rustc-env=CRUST_GIT_COMMIT={commit}");
}
