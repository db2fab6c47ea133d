//! Output as crictl writes it: `-o json|yaml` in protobuf's JSON mapping ([`json`],
//! [`crate::proto`]), `-o go-template` ([`template`]), and crictl's tables (Go's tabwriter
//! with crictl's settings, docker's human sizes and durations).

pub mod json;
pub mod template;
pub mod yaml;

use std::collections::HashMap;

use clap::ValueEnum;
use serde::Serialize;

use self::json::J;

/// `-o` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human table (crictl's).
    #[default]
    Table,
    /// Protobuf JSON mapping, as crictl prints it.
    Json,
    /// The same document as YAML.
    Yaml,
    /// A Go template (`--template`) over the JSON document (inspect, inspectp, inspecti,
    /// info).
    GoTemplate,
}

/// Prints a list answer (`ps`, `pods`, `images`, `stats`, `statsp`) as JSON or YAML; these
/// verbs have no go-template output in crictl either.
pub fn print_list<T: Serialize>(msg: &T, f: Format) -> anyhow::Result<()> {
    let j = crate::proto::to_j(msg);
    match f {
        Format::Json => println!("{}", j.jsonpb()),
        Format::Yaml => println!("{}", j.yaml()?),
        Format::GoTemplate => {
            anyhow::bail!("-o go-template is supported by inspect, inspectp, inspecti and info")
        }
        Format::Table => anyhow::bail!("internal: table output is the verb's own"),
    }
    Ok(())
}

/// How `inspect`, `inspectp` and `inspecti` print a status answer (flattened into their
/// arguments).
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Output format: json, yaml, go-template or table.
    #[arg(long, short = 'o', value_enum, default_value = "json")]
    pub output: Format,
    /// The template for `-o go-template` (Go text/template syntax; see README for the subset).
    #[arg(long)]
    pub template: Option<String>,
    /// Do not ask for verbose info.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl StatusArgs {
    /// Whether to ask the runtime for its verbose info.
    pub fn verbose(&self) -> bool {
        !self.quiet
    }

    /// Prints one answer: for `-o table` the verb's `table` text, then the info line when
    /// verbose; otherwise the [`status_document`] of `status` and `info`.
    pub fn print(
        &self,
        table: impl FnOnce() -> String,
        status: impl FnOnce() -> J,
        info: &HashMap<String, String>,
    ) -> anyhow::Result<()> {
        if self.output == Format::Table {
            print!("{}", table());
            if self.verbose() {
                print!("{}", info_line(info));
            }
            return Ok(());
        }
        let doc = status_document(status(), info);
        print_document(&doc, self.output, self.template.as_deref())
    }
}

/// The `{"status": …, <info keys>…}` document crictl prints for a verbose status answer:
/// the status first, then each key of the runtime's info map in sorted order, its value
/// embedded as JSON when it is JSON, else as a string.
pub fn status_document(status: J, info: &HashMap<String, String>) -> J {
    let mut keys: Vec<&String> = info.keys().collect();
    keys.sort();
    let mut e = vec![("status".to_string(), status)];
    for k in keys {
        let v = &info[k];
        e.push((k.clone(), J::parse(v).unwrap_or_else(|_| J::Str(v.clone()))));
    }
    J::obj(json::Obj::Map, e)
}

/// `Info: map[k:v …]` as crictl's table outputs print the raw info map (Go's `%v`).
pub fn info_line(info: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = info.keys().collect();
    keys.sort();
    let items: Vec<String> = keys.iter().map(|k| format!("{k}:{}", info[*k])).collect();
    format!("Info: map[{}]\n", items.join(" "))
}

/// `Name:`, `UID:` and `Namespace:` lines for those that are set, as crictl's pod outputs.
pub fn pod_names(md: &k8s_cri::v1::PodSandboxMetadata) -> String {
    let mut s = String::new();
    for (k, v) in [
        ("Name", &md.name),
        ("UID", &md.uid),
        ("Namespace", &md.namespace),
    ] {
        if !v.is_empty() {
            s.push_str(&format!("{k}: {v}\n"));
        }
    }
    s
}

/// Prints a status document as JSON, YAML or through `template`.
pub fn print_document(doc: &J, f: Format, template: Option<&str>) -> anyhow::Result<()> {
    match f {
        Format::Json => println!("{}", doc.indent()),
        Format::Yaml => println!("{}", doc.yaml()?),
        Format::GoTemplate => {
            let Some(t) = template else {
                anyhow::bail!("-o go-template needs --template");
            };
            println!("{}", template::execute(t, doc)?);
        }
        Format::Table => anyhow::bail!("internal: table output is the verb's own"),
    }
    Ok(())
}

/// Go's `text/tabwriter` as crictl sets it up (`minwidth 20, tabwidth 1, padding 3`): every
/// cell but a row's last is padded to its column's widest cell plus 3, at least 20.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Adds a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter(|r| c + 1 < r.len())
                    .map(|r| r[c].chars().count() + 3)
                    .fold(20, usize::max)
            })
            .collect();
        let mut out = String::new();
        for r in &self.rows {
            for (c, cell) in r.iter().enumerate() {
                out.push_str(cell);
                if c + 1 < r.len() {
                    let pad = width[c].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }

    /// Prints it.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// docker's `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits.
pub fn human_size_p(n: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", json::go_g(v, precision), UNITS[i])
}

/// Size as crictl's `images` prints it (3 significant digits, `2.22MB`).
pub fn human_size(n: u64) -> String {
    human_size_p(n, 3)
}

/// docker's `units.HumanDuration` of the time since `ns` (nanoseconds since the epoch),
/// plus " ago", as crictl's CREATED columns.
pub fn age(ns: i64) -> String {
    let d = (now_ns() - ns).max(0) as f64 / 1e9;
    let (secs, mins) = (d as i64, (d / 60.0) as i64);
    let hours = (d / 3600.0 + 0.5) as i64;
    let s = if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".to_string()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".to_string()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (d / 3600.0) as i64 / 24 / 365)
    };
    format!("{s} ago")
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Local broken-down time of `secs` since the epoch, as Go's `time.Local` sees it.
fn local_tm(secs: i64) -> Option<libc::tm> {
    let t = libc::time_t::from(secs);
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    (!r.is_null()).then_some(tm)
}

/// `.123` for the nanoseconds, trailing zeros dropped (nothing for 0), as Go's `.999999999`.
fn fraction(frac: i64) -> String {
    if frac == 0 {
        return String::new();
    }
    format!(".{}", format!("{frac:09}").trim_end_matches('0'))
}

fn date_time(tm: &libc::tm, sep: char) -> String {
    format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `ns` since the epoch as Go's `time.Unix(0, ns).Format(time.RFC3339Nano)` in the local
/// zone, as crictl's inspect shows times.
pub fn rfc3339_nano_local(ns: i64) -> String {
    let (secs, frac) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let Some(tm) = local_tm(secs) else {
        return ns.to_string();
    };
    let off = tm.tm_gmtoff;
    let zone = if off == 0 {
        "Z".to_string()
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", off.abs() / 3600, off.abs() % 3600 / 60)
    };
    format!("{}{}{zone}", date_time(&tm, 'T'), fraction(frac))
}

/// `ns` since the epoch as Go prints a `time.Time` (`2006-01-02 15:04:05.999999999 -0700
/// MST`), as crictl's verbose listings show creation times.
pub fn go_time(ns: i64) -> String {
    let (secs, frac) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let Some(tm) = local_tm(secs) else {
        return ns.to_string();
    };
    let off = tm.tm_gmtoff;
    let sign = if off < 0 { '-' } else { '+' };
    let name = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: localtime_r set tm_zone to a NUL-terminated static zone name.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    format!(
        "{}{} {sign}{:02}{:02} {name}",
        date_time(&tm, ' '),
        fraction(frac),
        off.abs() / 3600,
        off.abs() % 3600 / 60
    )
}

/// The first 13 characters of an id (after `sha256:`), as crictl truncates.
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
        assert_eq!(human_size_p(1_234_567, 4), "1.235MB");
        assert_eq!(human_size_p(0, 4), "0B");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789abc");
    }

    #[test]
    fn tables_like_tabwriter() {
        let mut t = Table::default();
        t.row(["CONTAINER", "NAME", "STATE"]);
        t.row(["a", "a-very-long-container-name", "Running"]);
        assert_eq!(
            t.render(),
            "CONTAINER           NAME                         STATE\n\
             a                   a-very-long-container-name   Running\n"
        );
    }

    #[test]
    fn times_like_go() {
        // The zone is the machine's, as Go's Local: check the shape and the fraction.
        let t = rfc3339_nano_local(1_700_000_000_120_000_000);
        assert_eq!(
            t.len(),
            "2023-11-14T22:13:20.12".len() + if t.ends_with('Z') { 1 } else { 6 }
        );
        assert_eq!(&t[13..22], ":13:20.12", "{t}");
        assert!(!rfc3339_nano_local(0).contains('.'));
        let g = go_time(1_700_000_000_120_000_000);
        assert_eq!(&g[13..22], ":13:20.12", "{g}");
        assert_eq!(g.split(' ').count(), 4, "{g}");
        assert!(age(now_ns() - 3_000_000_000).starts_with("3 seconds ago"));
        assert_eq!(age(now_ns() - 90 * 60 * 1_000_000_000), "2 hours ago");
    }
}
