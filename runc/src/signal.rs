//! Signal names and numbers as `runc kill` accepts them ("KILL", "SIGKILL", "9").

use std::str::FromStr;

use nix::sys::signal::Signal;

/// An unknown signal.
#[derive(Debug, thiserror::Error)]
#[error("unknown signal {0:?}")]
pub struct BadSignal(pub String);

/// Parses a signal given by name (with or without "SIG", any case) or number.
pub fn parse(s: &str) -> Result<Signal, BadSignal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| BadSignal(s.into()));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| BadSignal(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse("KILL").expect("k"), Signal::SIGKILL);
        assert_eq!(parse("sigterm").expect("t"), Signal::SIGTERM);
        assert_eq!(parse("9").expect("9"), Signal::SIGKILL);
        assert!(parse("NOPE").is_err());
        assert!(parse("99").is_err());
    }
}
