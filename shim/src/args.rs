//! Command-line flags, in containerd's shim v2 form (Go `flag` syntax: `-name value`,
//! `-name=value`, `--name value`; booleans alone), followed by the action.
//!
//! containerd passes `-namespace -address -publish-binary -id [-bundle] [-debug]` and
//! the action `start` or `delete`. crust adds `-state-dir`, `-runtime`, `-runtime-root`
//! and `-shim-cgroup` (each also from `CRUST_SHIM_*` environment variables, so a shim
//! started by containerd can be configured too), and the boolean `-keep-empty`
//! (`CRUST_SHIM_KEEP_EMPTY=1`): the shim does not exit by itself when its last container
//! is deleted, only on Shutdown or SIGTERM while it has none (for a client that owns the
//! shim's lifetime, e.g. crustd starting the pod's shim at RunPodSandbox). `serve` is
//! internal: the daemon mode.

use std::path::PathBuf;

/// What the shim was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Delete,
    Serve,
    Version,
    Help,
}

/// What `crust-shim -h` prints.
pub const USAGE: &str = "\
crust-shim: crust's per-pod containerd shim v2 (also installed as containerd-shim-crust-v2,
runtime type io.containerd.crust.v2). It serves containerd's Task API over ttrpc and runs
each container with a runc-compatible OCI runtime (crust-runc by default). crustd starts one
per pod; containerd starts it as any v2 shim. It reads no configuration file: only these
flags and the CRUST_SHIM_* environment variables, and each container's bundle config.json.

Usage: crust-shim [FLAGS] start|delete
       crust-shim -v | -h

Flags (Go flag syntax: -name value, -name=value or --name value):
  -namespace NS         containerd namespace (env NAMESPACE; default \"default\")
  -address ADDR         containerd's socket, for events
  -publish-binary PATH  binary that publishes events to containerd
  -id ID                the shim's id (required for start and delete)
  -bundle DIR           the bundle of the task (delete)
  -debug                debug logging
  -state-dir DIR        shim sockets and logs (env CRUST_SHIM_STATE_DIR; default /run/crust/shim)
  -runtime PATH         OCI runtime binary (env CRUST_SHIM_RUNTIME; default crust-runc)
  -runtime-root DIR     the runtime's --root (env CRUST_SHIM_RUNTIME_ROOT; default <state-dir>/runtime)
  -shim-cgroup PATH     cgroup the shim moves itself into (env CRUST_SHIM_CGROUP)
  -keep-empty           stay up after the last container is deleted, until Shutdown or
                        SIGTERM (env CRUST_SHIM_KEEP_EMPTY=1)
  -v, -version          print the version
  -h, -help             print this help

Actions: start (start the shim daemon, print its address), delete (clean up a task whose
shim is gone).
";

/// Parsed flags.
#[derive(Debug, Clone)]
pub struct Args {
    pub namespace: String,
    pub address: String,
    pub publish_binary: String,
    pub id: String,
    pub bundle: Option<PathBuf>,
    pub debug: bool,
    pub state_dir: PathBuf,
    pub runtime: String,
    pub runtime_root: Option<PathBuf>,
    pub shim_cgroup: Option<String>,
    /// Stay up when the last container is deleted (exit on Shutdown/SIGTERM only).
    pub keep_empty: bool,
    pub action: Action,
}

/// Default state directory for shim sockets and logs.
pub const DEFAULT_STATE_DIR: &str = "/run/crust/shim";

impl Args {
    /// Parses `argv[1..]`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut a = Args {
            namespace: env("NAMESPACE").unwrap_or_else(|| "default".into()),
            address: String::new(),
            publish_binary: String::new(),
            id: String::new(),
            bundle: None,
            debug: false,
            state_dir: env("CRUST_SHIM_STATE_DIR")
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into())
                .into(),
            runtime: env("CRUST_SHIM_RUNTIME")
                .unwrap_or_else(|| crate::runtime::DEFAULT_BINARY.into()),
            runtime_root: env("CRUST_SHIM_RUNTIME_ROOT").map(PathBuf::from),
            shim_cgroup: env("CRUST_SHIM_CGROUP"),
            keep_empty: env("CRUST_SHIM_KEEP_EMPTY").is_some_and(|v| v != "0" && v != "false"),
            action: Action::Serve,
        };
        let mut action = None;
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            if let Some(flag) = arg.strip_prefix('-') {
                let flag = flag.strip_prefix('-').unwrap_or(flag);
                let (name, inline) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (flag, None),
                };
                if matches!(name, "h" | "help") {
                    // As Go's flag package: help wins over everything else on the line.
                    return Ok(Args {
                        action: Action::Help,
                        ..a
                    });
                }
                if matches!(name, "debug" | "keep-empty" | "v" | "version") {
                    let on = inline.as_deref() != Some("false");
                    match name {
                        "debug" => a.debug = on,
                        "keep-empty" => a.keep_empty = on,
                        _ => action = Some(Action::Version),
                    }
                    continue;
                }
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| format!("flag -{name} needs a value"))?,
                };
                match name {
                    "namespace" => a.namespace = value,
                    "address" => a.address = value,
                    "publish-binary" => a.publish_binary = value,
                    "id" => a.id = value,
                    "bundle" => a.bundle = Some(value.into()),
                    "state-dir" => a.state_dir = value.into(),
                    "runtime" => a.runtime = value,
                    "runtime-root" => a.runtime_root = Some(value.into()),
                    "shim-cgroup" => a.shim_cgroup = Some(value),
                    // Flags of newer containerd we do not need.
                    "socket" | "debug-level" => {}
                    _ => return Err(format!("unknown flag -{name}")),
                }
            } else {
                action = Some(match arg.as_str() {
                    "start" => Action::Start,
                    "delete" => Action::Delete,
                    "serve" => Action::Serve,
                    "version" => Action::Version,
                    other => return Err(format!("unknown action {other:?}")),
                });
            }
        }
        a.action = action.ok_or("no action given (start, delete)")?;
        if a.action != Action::Version && a.id.is_empty() {
            return Err("-id is required".into());
        }
        if a.namespace.is_empty() {
            return Err("-namespace is empty".into());
        }
        Ok(a)
    }

    /// Flags to hand to the re-executed daemon (everything but the action).
    pub fn to_flags(&self) -> Vec<String> {
        let mut v = vec![
            "-namespace".into(),
            self.namespace.clone(),
            "-address".into(),
            self.address.clone(),
            "-publish-binary".into(),
            self.publish_binary.clone(),
            "-id".into(),
            self.id.clone(),
            "-state-dir".into(),
            self.state_dir.display().to_string(),
            "-runtime".into(),
            self.runtime.clone(),
        ];
        if let Some(r) = &self.runtime_root {
            v.extend(["-runtime-root".into(), r.display().to_string()]);
        }
        if let Some(c) = &self.shim_cgroup {
            v.extend(["-shim-cgroup".into(), c.clone()]);
        }
        if self.debug {
            v.push("-debug".into());
        }
        if self.keep_empty {
            v.push("-keep-empty".into());
        }
        v
    }

    /// Root directory handed to the runtime (`--root`, plus the namespace).
    pub fn runtime_root(&self) -> PathBuf {
        self.runtime_root
            .clone()
            .unwrap_or_else(|| self.state_dir.join("runtime"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, String> {
        Args::parse(s.split(' ').map(String::from))
    }

    #[test]
    fn parses_containerd_flags() {
        let a = parse(
            "-namespace k8s.io -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id abc -debug start",
        )
        .unwrap();
        assert_eq!(a.namespace, "k8s.io");
        assert_eq!(a.id, "abc");
        assert!(a.debug);
        assert_eq!(a.action, Action::Start);
        let a = parse("--namespace=x -id y -bundle /b delete").unwrap();
        assert_eq!(a.bundle.as_deref(), Some(std::path::Path::new("/b")));
        assert_eq!(a.action, Action::Delete);
        assert!(!a.keep_empty);
        let a = parse("-id y -keep-empty start").unwrap();
        assert!(a.keep_empty);
        assert!(a.to_flags().contains(&"-keep-empty".to_string()));
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(parse("-id x").is_err());
        assert!(parse("-nope 1 -id x start").is_err());
        assert!(parse("-namespace x start").is_err());
        assert!(parse("-id x frobnicate").is_err());
    }

    #[test]
    fn help_needs_nothing_else() {
        for line in ["-h", "--help", "-help", "-id x -h start", "--h"] {
            assert_eq!(parse(line).unwrap().action, Action::Help, "{line}");
        }
    }
}
