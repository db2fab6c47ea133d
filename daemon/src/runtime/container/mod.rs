//! Container verbs: create, start, stop, remove, update.

pub(super) mod create;
pub(super) mod remove;
pub(super) mod start;
pub(super) mod stop;
pub(super) mod update;
