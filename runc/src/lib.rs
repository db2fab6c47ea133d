//! OCI runtime, a drop-in for runc.
