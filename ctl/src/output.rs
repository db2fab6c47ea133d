//! Output formats shared by the verbs: JSON, YAML, or crictl's tables.

use clap::ValueEnum;
use serde::Serialize;

/// `-o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Prints `v` as JSON or YAML.
pub fn print<T: Serialize>(v: &T, f: Format) -> anyhow::Result<()> {
    match f {
        Format::Yaml => print!("{}", serde_yaml::to_string(v)?),
        _ => println!("{}", serde_json::to_string_pretty(v)?),
    }
    Ok(())
}

/// Prints a verbose status answer as crictl does: `{"status": …, "info": …}`, where `info`
/// is the JSON document the runtime put under the `info` key of the answer's info map.
pub fn print_verbose<T: Serialize>(
    status: &T,
    info: &std::collections::HashMap<String, String>,
    f: Format,
) -> anyhow::Result<()> {
    let info: serde_json::Value = info
        .get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    print(&serde_json::json!({ "status": status, "info": info }), f)
}

/// Size as crictl prints it: decimal units, 3 significant digits (`2.22MB`).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// The first 13 hex characters of an id, as crictl truncates.
pub fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(13)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_crictl() {
        assert_eq!(human_size(2_220_000), "2.22MB");
        assert_eq!(human_size(130_000_000), "130MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789abc");
    }
}
