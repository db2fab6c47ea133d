//! `update`: changes resource limits of a container, from `--resources r.json` ("-" for
//! stdin) and/or the individual flags; the merged result is applied and kept in the state.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

/// `update` flags (runc 1.1).
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Path to a file containing the resources to update, or '-' to read from stdin.
    #[arg(short, long)]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Memory limit (in bytes, or with k/m/g suffix; -1 = unlimited).
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "l3-cache-schema", hide = true)]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema", hide = true)]
    pub mem_bw_schema: Option<String>,
    /// Container id.
    pub id: String,
}

/// Parses "-1", "1024", "64k", "512m", "1g".
fn bytes(flag: &str, v: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    let lower = v.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.find('k').unwrap_or(0)], 1i64 << 10),
        Some('m') => (&lower[..lower.find('m').unwrap_or(0)], 1 << 20),
        Some('g') => (&lower[..lower.find('g').unwrap_or(0)], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    let n: i64 = num
        .trim()
        .parse()
        .with_context(|| format!("--{flag}: invalid size {v:?}"))?;
    Ok(n * mult)
}

/// Recursively overlays `b` onto `a`.
fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn flags_json(a: &UpdateArgs) -> Result<Value> {
    let mut v = json!({});
    let mut set = |path: &[&str], val: Value| {
        let mut cur = &mut v;
        for p in &path[..path.len() - 1] {
            cur = cur
                .as_object_mut()
                .map(|o| o.entry(p.to_string()).or_insert(json!({})))
                .unwrap_or_else(|| unreachable!("objects only"));
        }
        cur[path[path.len() - 1]] = val;
    };
    if let Some(w) = a.blkio_weight {
        set(&["blockIO", "weight"], w.into());
    }
    if let Some(x) = a.cpu_period {
        set(&["cpu", "period"], x.into());
    }
    if let Some(x) = a.cpu_quota {
        set(&["cpu", "quota"], x.into());
    }
    if let Some(x) = a.cpu_share {
        set(&["cpu", "shares"], x.into());
    }
    if let Some(x) = a.cpu_rt_period {
        set(&["cpu", "realtimePeriod"], x.into());
    }
    if let Some(x) = a.cpu_rt_runtime {
        set(&["cpu", "realtimeRuntime"], x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        set(&["cpu", "mems"], x.clone().into());
    }
    if let Some(x) = &a.memory {
        set(&["memory", "limit"], bytes("memory", x)?.into());
    }
    if let Some(x) = &a.memory_reservation {
        set(
            &["memory", "reservation"],
            bytes("memory-reservation", x)?.into(),
        );
    }
    if let Some(x) = &a.memory_swap {
        set(&["memory", "swap"], bytes("memory-swap", x)?.into());
    }
    if let Some(x) = a.pids_limit {
        set(&["pids", "limit"], x.into());
    }
    Ok(v)
}

/// Applies the update.
pub fn run(root: &Path, a: &UpdateArgs) -> Result<i32> {
    let mut st = super::load(root, &a.id)?;
    if st.status(root) == crust_runc::state::Status::Stopped {
        bail!("container {} is not running", a.id);
    }
    let cg = st.cgroup.clone().context("container has no cgroup")?;
    let mut current = serde_json::to_value(
        st.config
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default(),
    )?;
    if let Some(r) = &a.resources {
        let text = if r == "-" {
            let mut s = Vec::new();
            std::io::stdin()
                .read_to_end(&mut s)
                .context("read resources from stdin")?;
            s
        } else {
            std::fs::read(r).with_context(|| format!("read resources {r:?}"))?
        };
        let given: Value = crust_runc::config::parse_json(Path::new(r), &text)?;
        merge(&mut current, given);
    }
    merge(&mut current, flags_json(a)?);
    let resources: LinuxResources =
        crust_runc::config::parse_json(Path::new("resources"), current.to_string().as_bytes())?;
    let full = crust_runc::config::cgroup_resources(&resources);
    cg.apply(&full).context("apply resources")?;
    let mut linux = st.config.linux().clone().unwrap_or_default();
    linux.set_resources(Some(resources));
    st.config.set_linux(Some(linux));
    st.save(&crust_runc::state::dir(root, &a.id))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes("m", "-1").expect("x"), -1);
        assert_eq!(bytes("m", "1024").expect("x"), 1024);
        assert_eq!(bytes("m", "64k").expect("x"), 65536);
        assert_eq!(bytes("m", "2m").expect("x"), 2 << 20);
        assert_eq!(bytes("m", "1G").expect("x"), 1 << 30);
        assert!(bytes("m", "x").is_err());
    }

    #[test]
    fn merges() {
        let mut a = json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 3}});
        merge(&mut a, json!({"memory": {"limit": 5}}));
        assert_eq!(
            a,
            json!({"memory": {"limit": 5, "swap": 2}, "pids": {"limit": 3}})
        );
    }
}
