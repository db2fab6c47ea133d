//! OCI seccomp profile to a BPF filter through libseccomp.
//!
//! (First cut: the public API only; bodies are filled in by the "rootfs" helper.)

use oci_spec::runtime::LinuxSeccomp;

/// A compiled seccomp filter, ready to be loaded just before execve.
#[derive(Debug)]
pub struct SeccompFilter {
    _private: (),
}

/// Errors of seccomp profile compilation and loading.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// Placeholder until the module is implemented.
    #[error("seccomp: {0} not implemented yet")]
    NotImplemented(&'static str),
}

/// Validates and compiles an OCI seccomp profile.
pub fn compile(_seccomp: &LinuxSeccomp) -> Result<SeccompFilter, SeccompError> {
    Err(SeccompError::NotImplemented("compile"))
}

impl SeccompFilter {
    /// Loads the filter into the calling thread/process.
    pub fn load(&self) -> Result<(), SeccompError> {
        Err(SeccompError::NotImplemented("load"))
    }
}
