//! Pod sandboxes: run, stop, remove; the pod PID namespace init and the pod files.

pub(super) mod files;
pub mod init;
pub(super) mod remove;
pub(super) mod run;
pub(super) mod stop;
pub mod userns;
