//! Container I/O: exec (streamed and sync), attach, port-forward. [`pipe`] holds the
//! streaming plumbing and [`process`] the exec process both exec flavours start; the verb
//! files use them and never each other.

pub(super) mod attach;
pub(super) mod exec;
pub(super) mod exec_sync;
pub(super) mod pipe;
pub(super) mod port_forward;
pub(super) mod process;
