//! crust's version and the git commit it was built from (see `client/build.rs`).

/// The git commit (12 hex digits), or "unknown" when built outside a git checkout without
/// `$CRUST_GIT_COMMIT`.
pub const COMMIT: &str = env!("CRUST_GIT_COMMIT");

/// The package version.
pub const PACKAGE: &str = env!("CARGO_PKG_VERSION");

/// `--version` text of crustd and crustctl: `0.1.0 (commit 0123456789ab)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CRUST_GIT_COMMIT"),
    ")"
);

/// The CRI `runtime_version`: `0.1.0+0123456789ab` (semver build metadata), or the bare
/// package version when the commit is unknown.
pub fn runtime_version() -> String {
    if COMMIT == "unknown" {
        PACKAGE.to_string()
    } else {
        format!("{PACKAGE}+{COMMIT}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_version_names_the_commit() {
        assert!(super::LONG.starts_with(super::PACKAGE));
        assert!(super::LONG.contains(super::COMMIT));
        assert!(!super::COMMIT.is_empty());
        assert!(super::runtime_version().starts_with(super::PACKAGE));
    }
}
