//! OCI seccomp profile to a BPF filter through libseccomp.
