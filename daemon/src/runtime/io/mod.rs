//! Container I/O: exec (streamed and sync), attach, port-forward.

pub(super) mod attach;
pub(super) mod exec;
pub(super) mod exec_sync;
pub(super) mod port_forward;
