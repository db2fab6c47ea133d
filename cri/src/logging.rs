//! crustd's log setup: a tracing filter from `RUST_LOG`, else `--log-level`, else the
//! config's `log_level` (default `info`), text or JSON lines on stderr, and a handle that
//! swaps the filter at run time (SIGHUP reloads the config's `log_level`).
//!
//! The HTTP/2 and gRPC plumbing (h2, hyper, tower, tonic, ...) logs every frame at debug
//! and trace level: with a debug or trace default those crates are held at `info`, unless
//! the filter names them itself (`debug,h2=trace` gets h2's frames).

use tracing_subscriber::filter::{Directive, LevelFilter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Default filter.
pub const DEFAULT_LEVEL: &str = "info";

/// Crates whose debug/trace output is transport noise, held at `info` by default.
pub const NOISY: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "want",
    "mio",
    "rustls",
    "reqwest",
    "tokio_util",
    "netlink_proto",
    "netlink_sys",
    "ttrpc",
];

/// Log setup failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The filter does not parse.
    #[error("invalid log filter {spec:?} (from {origin})")]
    Filter {
        /// The filter text.
        spec: String,
        /// Where it came from: "RUST_LOG", "--log-level", "log_level".
        origin: &'static str,
        /// Cause.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The filter could not be swapped.
    #[error("reload log filter")]
    Reload(#[source] reload::Error),
}

/// Where the active filter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `RUST_LOG` environment variable.
    Env,
    /// The `--log-level` flag.
    Flag,
    /// The config file's `log_level` (or the default).
    Config,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Env => "RUST_LOG",
            Origin::Flag => "--log-level",
            Origin::Config => "log_level",
        }
    }
}

/// The installed logger.
pub struct Logging {
    handle: reload::Handle<EnvFilter, Registry>,
    origin: Origin,
    spec: String,
}

/// Builds the filter for `spec`: its directives, plus `info` caps on [`NOISY`] crates it
/// does not name when its default level is debug or trace.
pub fn filter(spec: &str, origin: Origin) -> Result<EnvFilter, Error> {
    let err = |source| Error::Filter {
        spec: spec.into(),
        origin: origin.name(),
        source,
    };
    let mut f = EnvFilter::builder()
        .with_default_directive(LevelFilter::ERROR.into())
        .parse(spec)
        .map_err(err)?;
    let default = spec
        .split(',')
        .map(str::trim)
        .filter(|d| !d.contains('=') && !d.contains('['))
        .filter_map(|d| d.parse::<LevelFilter>().ok())
        .next_back();
    if default.is_some_and(|l| l > LevelFilter::INFO) {
        for t in NOISY {
            let named = spec
                .split(',')
                .any(|d| d.trim().split(['=', '[']).next() == Some(t));
            if !named {
                f = f.add_directive(format!("{t}=info").parse::<Directive>().map_err(err)?);
            }
        }
    }
    Ok(f)
}

/// Installs the global logger. The filter is `RUST_LOG` if set, else `flag`, else
/// `config` (the config file's `log_level`), else [`DEFAULT_LEVEL`].
pub fn init(flag: Option<&str>, config: Option<&str>, json: bool) -> Result<Logging, Error> {
    let env = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
    let (spec, origin) = match (env, flag) {
        (Some(e), _) => (e, Origin::Env),
        (None, Some(f)) => (f.to_string(), Origin::Flag),
        (None, None) => (config.unwrap_or(DEFAULT_LEVEL).to_string(), Origin::Config),
    };
    let (layer, handle) = reload::Layer::new(filter(&spec, origin)?);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Client-supplied strings in a log line have their line breaks escaped.
    let text = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(crate::logwriter::MakeEscaped { ansi })
            .with_ansi(ansi)
    });
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(crate::logwriter::MakeEscaped { ansi })
    });
    tracing_subscriber::registry()
        .with(layer)
        .with(text)
        .with(json)
        .init();
    Ok(Logging {
        handle,
        origin,
        spec,
    })
}

/// What [`Logging::reload`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The filter changed to this.
    Changed(String),
    /// The filter is already this.
    Unchanged(String),
    /// The filter comes from `RUST_LOG` or `--log-level`, which the config does not override.
    Pinned(&'static str),
}

impl Logging {
    /// Applies the config's `log_level` (None: the default), unless `RUST_LOG` or the flag
    /// set the filter. An invalid filter changes nothing.
    pub fn reload(&mut self, config: Option<&str>) -> Result<Reloaded, Error> {
        if self.origin != Origin::Config {
            return Ok(Reloaded::Pinned(self.origin.name()));
        }
        let spec = config.unwrap_or(DEFAULT_LEVEL);
        if spec == self.spec {
            return Ok(Reloaded::Unchanged(spec.into()));
        }
        let f = filter(spec, Origin::Config)?;
        self.handle.reload(f).map_err(Error::Reload)?;
        self.spec = spec.into();
        Ok(Reloaded::Changed(spec.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(spec: &str) -> String {
        filter(spec, Origin::Config).unwrap().to_string()
    }

    #[test]
    fn debug_default_caps_transport_crates_unless_named() {
        let f = text("debug");
        for t in NOISY {
            assert!(f.contains(&format!("{t}=info")), "{t} capped: {f}");
        }
        let f = text("debug,h2=trace");
        assert!(f.contains("h2=trace") && !f.contains("h2=info"), "{f}");
        assert!(f.contains("hyper=info"), "{f}");
        let f = text("trace");
        assert!(f.contains("tonic=info"), "{f}");
    }

    #[test]
    fn info_and_quieter_or_targeted_filters_are_left_alone() {
        for spec in [
            "info",
            "warn",
            "error",
            "crust_daemon=debug",
            "info,crust_cri=trace",
        ] {
            let f = text(spec);
            assert!(!f.contains("h2="), "{spec}: {f}");
        }
    }

    #[test]
    fn invalid_filter_is_an_error_naming_its_origin() {
        let e = filter("info,foo=loud", Origin::Flag).unwrap_err();
        let m = crate::status::message(&e);
        assert!(m.contains("--log-level") && m.contains("foo=loud"), "{m}");
    }
}
