//! YAML 1.1 timestamps quoted. crictl's YAML comes from yaml.v2, a YAML 1.1 emitter, which
//! quotes any string a YAML 1.1 reader would take for another type; serde_yaml emits YAML
//! 1.2, where timestamps are plain strings, so it leaves `createdAt: 2026-12-06T14:51:41Z`
//! (inspectp's times) unquoted, and a YAML 1.1 reader (PyYAML, as scripts use it) reads a
//! datetime where crictl's output gives it a string. [`quote_timestamps`] double-quotes such
//! plain scalars in serde_yaml's output, as yaml.v2 does.
//!
//! Hand-written: serde_yaml has no per-scalar style control. It works on serde_yaml's output
//! line by line, which is safe because that output puts every plain scalar on its own line
//! (`key: value`, `- value`, `- key: value`) and multi-line strings in block scalars (`|-`),
//! whose content lines are skipped.

use std::sync::LazyLock;

/// The YAML 1.1 timestamp type's pattern (yaml.org/type/timestamp.html).
static TIMESTAMP: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, covered by the tests
    regex_lite::Regex::new(
        r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$",
    )
    .unwrap()
});

/// Length of a quoted key at the start of `s` (`'…'` with `''` escapes, or `"…"` with
/// backslash escapes), including the quotes.
fn quoted_len(s: &str) -> Option<usize> {
    let mut it = s.char_indices();
    let (_, q) = it.next()?;
    let mut escaped = false;
    let mut prev_quote = false;
    for (i, c) in it {
        if q == '"' {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                return Some(i + 1);
            }
        } else if prev_quote {
            if c == '\'' {
                prev_quote = false; // '' is an escaped quote
            } else {
                return Some(i);
            }
        } else if c == '\'' {
            prev_quote = true;
        }
    }
    prev_quote.then_some(s.len())
}

/// Splits a line's content (indentation and `- ` markers removed) into the part before its
/// value and the value: `key: value` or a bare `value`.
fn split_value(rest: &str) -> (usize, &str) {
    let key_end = if rest.starts_with('\'') || rest.starts_with('"') {
        match quoted_len(rest) {
            Some(n) if rest[n..].starts_with(": ") => Some(n),
            Some(n) if &rest[n..] == ":" => return (rest.len(), ""),
            _ => None,
        }
    } else {
        rest.find(": ")
    };
    match key_end {
        Some(n) => (n + 2, &rest[n + 2..]),
        None if rest.ends_with(':') => (rest.len(), ""),
        None => (0, rest),
    }
}

/// Double-quotes every plain scalar of serde_yaml's `yaml` that YAML 1.1 reads as a timestamp.
pub fn quote_timestamps(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    // Inside a block scalar: content lines are indented deeper than this.
    let mut block: Option<usize> = None;
    for line in yaml.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let indent = body.len() - body.trim_start_matches(' ').len();
        if let Some(b) = block {
            if body.trim().is_empty() || indent > b {
                out.push_str(line);
                continue;
            }
            block = None;
        }
        let mut start = indent;
        while body[start..].starts_with("- ") {
            start += 2;
        }
        let (at, value) = split_value(&body[start..]);
        let at = start + at;
        if value.starts_with('|') || value.starts_with('>') {
            block = Some(indent);
        } else if TIMESTAMP.is_match(value) {
            out.push_str(&body[..at]);
            out.push('"');
            out.push_str(value);
            out.push('"');
            out.push_str(&line[body.len()..]);
            continue;
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quote_timestamps as q;

    #[test]
    fn timestamps_are_quoted_as_yaml_v2_does() {
        assert_eq!(
            q("createdAt: 2026-12-06T14:51:41.933646586Z\n"),
            "createdAt: \"2026-12-06T14:51:41.933646586Z\"\n"
        );
        assert_eq!(q("- 2001-12-14\n"), "- \"2001-12-14\"\n");
        assert_eq!(
            q("a:\n  - b: 2001-12-14 21:59:43.10 -5\n"),
            "a:\n  - b: \"2001-12-14 21:59:43.10 -5\"\n"
        );
        assert_eq!(q("'x: y': 2001-12-14\n"), "'x: y': \"2001-12-14\"\n");
    }

    #[test]
    fn everything_else_is_left_alone() {
        for y in [
            "createdAt: '1796568701933646586'\n",
            "name: 2026-12-06 is not a date\n",
            "a: 2026-1-6\n",
            "a: \"2026-12-06\"\n",
            "a:\n- b\n",
            "k: |-\n  2026-12-06\n  2026-12-06T14:51:41Z\nz: 1\n",
            "empty: {}\n",
        ] {
            assert_eq!(q(y), y);
        }
        assert_eq!(
            q("k: |-\n  x\n  2026-12-06\nz: 2026-12-06\n"),
            "k: |-\n  x\n  2026-12-06\nz: \"2026-12-06\"\n"
        );
    }
}
