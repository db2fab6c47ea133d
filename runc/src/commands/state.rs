//! `state`: prints the runc state JSON of a container.

use std::path::Path;

use anyhow::Result;

/// Prints the state of `id`.
pub fn run(root: &Path, id: &str) -> Result<i32> {
    let st = super::load(root, id)?;
    println!("{}", serde_json::to_string_pretty(&st.to_oci(root))?);
    Ok(0)
}
