//! Per-pod containerd shim v2 (Task API over ttrpc) driving a runc-compatible runtime.
