//! `list [--format table|json] [-q]`.

use std::path::Path;

use anyhow::{bail, Result};
use crust_runc::state::ContainerState;

/// `list` flags.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Select one of: table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Display only container IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Pads columns like Go's tabwriter(minwidth 12, padding 3).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

/// Lists containers.
pub fn run(root: &Path, a: &ListArgs) -> Result<i32> {
    let states: Vec<ContainerState> = ContainerState::list_ids(root)
        .iter()
        .filter_map(|id| ContainerState::load(root, id).ok())
        .collect();
    if a.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => {
            let v: Vec<_> = states.iter().map(|s| s.to_oci(root)).collect();
            // runc prints a nil slice ("null") when there are no containers.
            if v.is_empty() {
                println!("null");
            } else {
                println!("{}", serde_json::to_string(&v)?);
            }
        }
        "table" => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()];
            for s in &states {
                let o = s.to_oci(root);
                rows.push(vec![
                    s.id.clone(),
                    o.pid.to_string(),
                    o.status.into(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    if s.owner.is_empty() {
                        "root".into()
                    } else {
                        s.owner.clone()
                    },
                ]);
            }
            print!("{}", table(&rows));
        }
        f => bail!("invalid format option {f:?}"),
    }
    Ok(0)
}
