//! `pause` / `resume`: freeze and thaw the container's cgroup.

use std::path::Path;

use anyhow::{bail, Context, Result};
use crust_runc::state::Status;

/// Freezes the container.
pub fn pause(root: &Path, id: &str) -> Result<i32> {
    let st = super::load(root, id)?;
    match st.status(root) {
        Status::Running | Status::Created => {}
        Status::Paused => return Ok(0),
        Status::Stopped => bail!("container not running"),
    }
    let cg = st.cgroup.as_ref().context("container has no cgroup")?;
    cg.freeze().context("freeze")?;
    Ok(0)
}

/// Thaws the container.
pub fn resume(root: &Path, id: &str) -> Result<i32> {
    let st = super::load(root, id)?;
    if st.status(root) != Status::Paused {
        bail!("container not paused");
    }
    let cg = st.cgroup.as_ref().context("container has no cgroup")?;
    cg.thaw().context("thaw")?;
    Ok(0)
}
