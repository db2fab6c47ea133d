//! What the list verbs (`ps`, `pods`, `stats`, `statsp`) share: `--label key=value`
//! selectors and crictl's regular-expression name filters.

use std::collections::HashMap;

/// `--label` values as a selector map; crictl refuses anything but `key=value`.
pub fn labels(l: &[String]) -> anyhow::Result<HashMap<String, String>> {
    l.iter()
        .map(|kv| match kv.split('=').collect::<Vec<_>>()[..] {
            [k, v] => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("incorrectly specified label: {kv}"),
        })
        .collect()
}

/// A `--name`/`--namespace` filter: a regular expression (RE2 syntax, as crictl's Go
/// regexp) that must match somewhere in the value; no pattern matches everything.
pub struct Pattern(Option<regex_lite::Regex>);

impl Pattern {
    /// Compiles `p` (named `flag` in errors).
    pub fn new(flag: &str, p: Option<&str>) -> anyhow::Result<Self> {
        Ok(Self(match p.filter(|p| !p.is_empty()) {
            Some(p) => {
                Some(regex_lite::Regex::new(p).map_err(|e| {
                    anyhow::anyhow!("--{flag} {p:?} is not a regular expression: {e}")
                })?)
            }
            None => None,
        }))
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        self.0.as_ref().is_none_or(|r| r.is_match(s))
    }
}

/// The flags `ps` and `pods` share.
#[derive(Debug, clap::Args)]
pub struct ListFlags {
    /// Only ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// One block of details per item.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Only the most recently created (any state).
    #[arg(long, short = 'l')]
    pub latest: bool,
    /// Only the N most recently created (any state; 0: all).
    #[arg(long, short = 'n', default_value_t = 0)]
    pub last: usize,
    /// Full ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format: table, json or yaml.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: crate::output::Format,
}

impl ListFlags {
    /// How many of the newest to keep: `--latest` (1), `--last N` (N; 0: all).
    pub fn newest(&self) -> Option<usize> {
        newest(self.latest, self.last)
    }
}

fn newest(latest: bool, last: usize) -> Option<usize> {
    if latest {
        Some(1)
    } else {
        (last > 0).then_some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_patterns() {
        assert_eq!(labels(&["a=b".into()]).unwrap()["a"], "b");
        assert!(labels(&["a".into()]).is_err());
        assert!(labels(&["a=b=c".into()]).is_err());
        let p = Pattern::new("name", Some("^box$")).unwrap();
        assert!(p.matches("box") && !p.matches("box2"));
        assert!(Pattern::new("name", Some("bo")).unwrap().matches("abox"));
        assert!(Pattern::new("name", None).unwrap().matches("x"));
        assert!(Pattern::new("name", Some("(")).is_err());
        assert_eq!(newest(false, 0), None);
        assert_eq!(newest(true, 5), Some(1));
    }
}
