//! `-o go-template --template T`: the part of Go's text/template that scripts written for
//! crictl use, applied to the same JSON document `-o json` prints (crictl decodes that JSON
//! and runs the template on it, with `missingkey=error`).
//!
//! Supported: text; `{{.a.b}}` and `{{.}}` field paths; string and integer literals;
//! pipelines `{{.a | json}}`; the functions `json`, `upper`, `lower`, `title` (crictl's) and
//! `index`, `len`, `print`, `println` (Go's); `{{if P}}…{{else}}…{{end}}`;
//! `{{range P}}…{{else}}…{{end}}` (dot is the element); `{{/* comments */}}`; trim markers
//! `{{-` and `-}}`. Anything else (variables, `with`, `define`, `printf`, comparisons) is
//! refused with an error naming it, never printed wrong. Values print as Go prints the
//! decoded JSON: strings bare, numbers as written, `map[k:v]`, `[a b]`, `<no value>`.

use super::json::J;

/// A template error.
#[derive(Debug, thiserror::Error)]
#[error("go-template: {0}")]
pub struct Error(String);

fn err<T>(m: impl Into<String>) -> Result<T, Error> {
    Err(Error(m.into()))
}

/// Runs template `t` on `data`.
pub fn execute(t: &str, data: &J) -> Result<String, Error> {
    let nodes = parse(t)?;
    let mut out = String::new();
    run(&nodes, data, &mut out)?;
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Path(Vec<String>),
    Str(String),
    Int(i64),
    Func(String),
}

type Pipeline = Vec<Vec<Arg>>;

#[derive(Debug)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

const FUNCS: &[&str] = &[
    "json", "upper", "lower", "title", "index", "len", "print", "println",
];

/// Splits `t` into text and actions (trim markers applied).
fn lex(t: &str) -> Result<Vec<(bool, String)>, Error> {
    let mut parts: Vec<(bool, String)> = vec![];
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        let mut text = rest[..i].to_string();
        let mut body = &rest[i + 2..];
        if let Some(b) = body.strip_prefix("- ") {
            text = text.trim_end().to_string();
            body = b;
        }
        let Some(j) = body.find("}}") else {
            return err("unclosed action: {{ without }}");
        };
        let mut action = body[..j].to_string();
        rest = &body[j + 2..];
        if let Some(a) = action.strip_suffix(" -") {
            action = a.to_string();
            rest = rest.trim_start();
        }
        parts.push((false, text));
        parts.push((true, action.trim().to_string()));
    }
    parts.push((false, rest.to_string()));
    Ok(parts)
}

fn tokens(s: &str) -> Result<Vec<String>, Error> {
    let mut out = vec![];
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
        } else if c == '"' {
            it.next();
            let mut lit = String::from('"');
            let mut closed = false;
            while let Some(c) = it.next() {
                if c == '\\' {
                    match it.next() {
                        Some('n') => lit.push('\n'),
                        Some('t') => lit.push('\t'),
                        Some(o) => lit.push(o),
                        None => break,
                    }
                } else if c == '"' {
                    closed = true;
                    break;
                } else {
                    lit.push(c);
                }
            }
            if !closed {
                return err(format!("unterminated string in {{{{{s}}}}}"));
            }
            out.push(lit);
        } else if c == '|' || c == '(' || c == ')' {
            it.next();
            out.push(c.to_string());
        } else {
            let mut w = String::new();
            while let Some(&c) = it.peek() {
                if c.is_whitespace() || c == '|' || c == '(' || c == ')' || c == '"' {
                    break;
                }
                w.push(c);
                it.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn pipeline(s: &str) -> Result<Pipeline, Error> {
    let toks = tokens(s)?;
    if toks.is_empty() {
        return err("empty action {{}}");
    }
    let mut cmds = vec![vec![]];
    for t in toks {
        let arg = match t.as_str() {
            "|" => {
                cmds.push(vec![]);
                continue;
            }
            "(" | ")" => return err(format!("parenthesised pipelines are not supported: {s}")),
            "." => Arg::Path(vec![]),
            _ if t.starts_with('"') => Arg::Str(t[1..].to_string()),
            _ if t.starts_with('.') => {
                let p: Vec<String> = t[1..].split('.').map(str::to_string).collect();
                if p.iter().any(|k| k.is_empty()) {
                    return err(format!("bad field path {t}"));
                }
                Arg::Path(p)
            }
            _ if t.starts_with('$') => {
                return err(format!("variables ({t}) are not supported"));
            }
            _ if t.parse::<i64>().is_ok() => Arg::Int(t.parse().unwrap_or(0)),
            _ if FUNCS.contains(&t.as_str()) => Arg::Func(t),
            _ => {
                return err(format!(
                    "{t:?} is not supported (functions: {})",
                    FUNCS.join(", ")
                ))
            }
        };
        if let Some(last) = cmds.last_mut() {
            last.push(arg);
        }
    }
    if cmds.iter().any(Vec::is_empty) {
        return err(format!("empty command in pipeline {s}"));
    }
    Ok(cmds)
}

fn parse(t: &str) -> Result<Vec<Node>, Error> {
    let parts = lex(t)?;
    let mut it = parts.into_iter();
    let (nodes, end) = block(&mut it)?;
    match end {
        None => Ok(nodes),
        Some(e) => err(format!("unexpected {{{{{e}}}}}")),
    }
}

/// Parses nodes until `{{end}}`/`{{else}}` (returned) or the end of input (None).
fn block(
    it: &mut impl Iterator<Item = (bool, String)>,
) -> Result<(Vec<Node>, Option<String>), Error> {
    let mut nodes = vec![];
    while let Some((action, s)) = it.next() {
        if !action {
            if !s.is_empty() {
                nodes.push(Node::Text(s));
            }
            continue;
        }
        if s.starts_with("/*") && s.ends_with("*/") {
            continue;
        }
        let (word, rest) = s.split_once(char::is_whitespace).unwrap_or((&s, ""));
        match word {
            "end" | "else" if rest.trim().is_empty() => return Ok((nodes, Some(word.into()))),
            "if" | "range" => {
                let p = pipeline(rest)?;
                let (body, end) = block(it)?;
                let other = match end.as_deref() {
                    Some("else") => match block(it)? {
                        (o, Some(e)) if e == "end" => o,
                        _ => {
                            return err(format!(
                                "{{{{{word}}}}} … {{{{else}}}} without {{{{end}}}}"
                            ))
                        }
                    },
                    Some("end") => vec![],
                    _ => return err(format!("{{{{{word}}}}} without {{{{end}}}}")),
                };
                nodes.push(if word == "if" {
                    Node::If(p, body, other)
                } else {
                    Node::Range(p, body, other)
                });
            }
            "with" | "define" | "template" | "block" | "break" | "continue" | "else" => {
                return err(format!("{{{{{word}}}}} is not supported"))
            }
            _ => nodes.push(Node::Action(pipeline(&s)?)),
        }
    }
    Ok((nodes, None))
}

fn run(nodes: &[Node], dot: &J, out: &mut String) -> Result<(), Error> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => out.push_str(&show(&eval(p, dot)?)),
            Node::If(p, a, b) => run(if truthy(&eval(p, dot)?) { a } else { b }, dot, out)?,
            Node::Range(p, body, other) => {
                let items: Vec<J> = match eval(p, dot)? {
                    J::Arr(a) => a,
                    J::Obj(_, mut e) => {
                        e.sort_by(|x, y| x.0.cmp(&y.0));
                        e.into_iter().map(|(_, v)| v).collect()
                    }
                    J::Null => vec![],
                    v => return err(format!("range can't iterate over {}", show(&v))),
                };
                if items.is_empty() {
                    run(other, dot, out)?;
                }
                for i in &items {
                    run(body, i, out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval(p: &Pipeline, dot: &J) -> Result<J, Error> {
    let mut prev: Option<J> = None;
    for cmd in p {
        let mut args: Vec<J> = vec![];
        let (head, rest) = cmd
            .split_first()
            .ok_or_else(|| Error("empty command".into()))?;
        for a in rest {
            args.push(value(a, dot)?);
        }
        if let Some(p) = prev.take() {
            args.push(p);
        }
        prev = Some(match head {
            Arg::Func(f) => call(f, args)?,
            a if args.is_empty() => value(a, dot)?,
            a => return err(format!("{a:?} is not a function and takes no arguments")),
        });
    }
    prev.ok_or_else(|| Error("empty pipeline".into()))
}

fn value(a: &Arg, dot: &J) -> Result<J, Error> {
    match a {
        Arg::Str(s) => Ok(J::Str(s.clone())),
        Arg::Int(i) => Ok(J::Num(i.to_string())),
        Arg::Func(f) => call(f, vec![]),
        Arg::Path(p) => {
            let mut cur = dot;
            for k in p {
                cur = match cur {
                    J::Obj(..) => cur
                        .get(k)
                        .ok_or_else(|| Error(format!("map has no entry for key {k:?}")))?,
                    J::Null => return err(format!("nil pointer evaluating .{k}")),
                    v => return err(format!("can't evaluate field {k} in {}", show(v))),
                };
            }
            Ok(cur.clone())
        }
    }
}

fn one(f: &str, mut args: Vec<J>) -> Result<J, Error> {
    match (args.pop(), args.is_empty()) {
        (Some(v), true) => Ok(v),
        _ => err(format!("{f} takes one argument")),
    }
}

fn call(f: &str, args: Vec<J>) -> Result<J, Error> {
    Ok(match f {
        "json" => {
            let mut s = one(f, args)?.compact_sorted();
            s.push('\n');
            J::Str(s)
        }
        "upper" => J::Str(show(&one(f, args)?).to_uppercase()),
        "lower" => J::Str(show(&one(f, args)?).to_lowercase()),
        "title" => J::Str(title(&show(&one(f, args)?))),
        "len" => J::Num(
            match one(f, args)? {
                J::Str(s) => s.len(),
                J::Arr(a) => a.len(),
                J::Obj(_, e) => e.len(),
                v => return err(format!("len of {}", show(&v))),
            }
            .to_string(),
        ),
        "index" => {
            let mut it = args.into_iter();
            let mut cur = it
                .next()
                .ok_or_else(|| Error("index needs arguments".into()))?;
            for k in it {
                cur = match (&cur, &k) {
                    (J::Obj(..), J::Str(k)) => cur.get(k).cloned().unwrap_or(J::Null),
                    (J::Arr(a), J::Num(n)) => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| a.get(i).cloned())
                        .ok_or_else(|| Error(format!("index out of range: {n}")))?,
                    _ => return err(format!("can't index {} with {}", show(&cur), show(&k))),
                };
            }
            cur
        }
        "print" | "println" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                let is_str = matches!(a, J::Str(_));
                let prev_str = i > 0 && matches!(args[i - 1], J::Str(_));
                if i > 0 && (f == "println" || !(is_str || prev_str)) {
                    s.push(' ');
                }
                s.push_str(&show(a));
            }
            if f == "println" {
                s.push('\n');
            }
            J::Str(s)
        }
        _ => return err(format!("{f} is not supported")),
    })
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn truthy(v: &J) -> bool {
    match v {
        J::Null => false,
        J::Bool(b) => *b,
        J::Num(n) | J::Str(n) => !n.is_empty(),
        J::Arr(a) => !a.is_empty(),
        J::Obj(_, e) => !e.is_empty(),
    }
}

/// Go's `%v` of a decoded JSON value.
fn show(v: &J) -> String {
    match v {
        J::Null => "<no value>".into(),
        J::Bool(b) => b.to_string(),
        J::Num(n) | J::Str(n) => n.clone(),
        J::Arr(a) => format!(
            "[{}]",
            a.iter().map(show_inner).collect::<Vec<_>>().join(" ")
        ),
        J::Obj(..) => show_inner(v),
    }
}

fn show_inner(v: &J) -> String {
    match v {
        J::Null => "<nil>".into(),
        J::Obj(_, e) => {
            let mut e: Vec<&(String, J)> = e.iter().collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            let items: Vec<String> = e
                .iter()
                .map(|(k, v)| format!("{k}:{}", show_inner(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        v => show(v),
    }
}

impl J {
    /// Compact JSON with object keys sorted, as Go's `json.Marshal` of decoded JSON.
    pub fn compact_sorted(&self) -> String {
        let mut s = String::new();
        self.compact_into(&mut s);
        s
    }

    fn compact_into(&self, s: &mut String) {
        match self {
            J::Arr(a) => {
                s.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    v.compact_into(s);
                }
                s.push(']');
            }
            J::Obj(_, e) => {
                let mut e: Vec<&(String, J)> = e.iter().collect();
                e.sort_by(|a, b| a.0.cmp(&b.0));
                s.push('{');
                for (i, (k, v)) in e.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    super::json::quote(s, k);
                    s.push(':');
                    v.compact_into(s);
                }
                s.push('}');
            }
            v => s.push_str(&v.indent()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> J {
        J::parse(
            r#"{"status":{"id":"abc","state":"CONTAINER_RUNNING","labels":{"b":"2","a":"x<y"},
                "mounts":[{"containerPath":"/a"},{"containerPath":"/b"}],"exitCode":0,"image":null},
               "info":{"pid":42,"runtimeSpec":{"process":{"args":["sh","-c"]}}}}"#,
        )
        .expect("json")
    }

    fn ok(t: &str) -> String {
        execute(t, &doc()).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    #[test]
    fn the_common_paths() {
        assert_eq!(ok("{{.info.pid}}"), "42");
        assert_eq!(ok("{{.status.state}}\n"), "CONTAINER_RUNNING\n");
        assert_eq!(ok("{{ .status.id }}-{{.status.exitCode}}"), "abc-0");
        assert_eq!(ok(r#"{{index .status.labels "a"}}"#), "x<y");
        assert_eq!(ok("{{.status.labels}}"), "map[a:x<y b:2]");
        assert_eq!(ok("{{.info.runtimeSpec.process.args}}"), "[sh -c]");
        assert_eq!(
            ok("{{json .status.labels}}"),
            "{\"a\":\"x\\u003cy\",\"b\":\"2\"}\n"
        );
        assert_eq!(
            ok("{{.status.labels | json}}"),
            "{\"a\":\"x\\u003cy\",\"b\":\"2\"}\n"
        );
        assert_eq!(ok("{{.status.state | lower}}"), "container_running");
        assert_eq!(
            ok("{{range .status.mounts}}{{.containerPath}} {{end}}"),
            "/a /b "
        );
        assert_eq!(ok("{{len .status.mounts}}"), "2");
        assert_eq!(ok("{{if .status.image}}img{{else}}none{{end}}"), "none");
        assert_eq!(ok("{{- /* c */ -}} {{.status.id}}"), "abc");
        assert_eq!(ok("{{.status.image}}"), "<no value>");
        assert_eq!(ok(r#"{{print "a" 1 2 "b"}}"#), "a1 2b");
        assert_eq!(ok("{{title \"hello world\"}}"), "Hello World");
    }

    #[test]
    fn what_is_not_supported_or_missing_is_an_error() {
        let e = |t: &str| execute(t, &doc()).expect_err(t).to_string();
        assert!(e("{{.status.nope}}").contains("no entry for key \"nope\""));
        assert!(e("{{.status.image.name}}").contains("nil pointer"));
        assert!(e("{{$x := .status}}").contains("variables"));
        assert!(e("{{printf \"%s\" .status.id}}").contains("\"printf\" is not supported"));
        assert!(e("{{with .status}}{{end}}").contains("with"));
        assert!(e("{{if .status}}x").contains("without {{end}}"));
        assert!(e("{{.status.id").contains("unclosed"));
        assert!(e("{{end}}").contains("unexpected"));
    }
}
