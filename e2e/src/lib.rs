//! End-to-end tests live in `tests/`; this library holds the shared harness.
