//! The attach request: which of a container's output streams go to which FIFO.

use serde::{Deserialize, Serialize};

/// The value of [`crate::ATTACH_ANNOTATION`], JSON `{"stdout":"<fifo>","stderr":"<fifo>"}`:
/// absolute FIFO paths, at least one stream, no other key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// The FIFO to copy the container's stdout (its terminal, with a tty) into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// The FIFO to copy the container's stderr into (never with a tty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

/// Why an attach annotation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttachError {
    /// Not JSON of the right shape (an unknown stream is named here).
    #[error("attach annotation: {0}")]
    Decode(String),
    /// No stream asked for.
    #[error("attach annotation names no stream")]
    Empty,
}

impl AttachRequest {
    /// The annotation value.
    pub fn encode(&self) -> String {
        // Two optional strings always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an annotation value; refuses unknown keys and a request for nothing.
    pub fn decode(value: &str) -> Result<AttachRequest, AttachError> {
        let r: AttachRequest =
            serde_json::from_str(value).map_err(|e| AttachError::Decode(e.to_string()))?;
        if r.stdout.is_none() && r.stderr.is_none() {
            return Err(AttachError::Empty);
        }
        Ok(r)
    }

    /// `(stream index, FIFO path)` of each asked stream: 0 stdout, 1 stderr.
    pub fn streams(&self) -> impl Iterator<Item = (usize, &str)> {
        [&self.stdout, &self.stderr]
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_deref().map(|p| (i, p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let both = AttachRequest {
            stdout: Some("/a/stdout".into()),
            stderr: Some("/a/stderr".into()),
        };
        let cases: [(&str, Result<AttachRequest, ()>); 6] = [
            (
                r#"{"stdout":"/a/stdout","stderr":"/a/stderr"}"#,
                Ok(both.clone()),
            ),
            (
                r#"{"stdout":"/a/stdout"}"#,
                Ok(AttachRequest {
                    stdout: Some("/a/stdout".into()),
                    stderr: None,
                }),
            ),
            (r#"{}"#, Err(())),
            (r#"{"stdin":"/a/stdin"}"#, Err(())),
            ("not json", Err(())),
            (r#"{"stdout":1}"#, Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(AttachRequest::decode(text).map_err(|_| ()), want, "{text}");
        }
        assert_eq!(AttachRequest::decode(&both.encode()), Ok(both.clone()));
        let streams: Vec<_> = both.streams().collect();
        assert_eq!(streams, [(0, "/a/stdout"), (1, "/a/stderr")]);
        match AttachRequest::decode(r#"{"stdin":"/x"}"#) {
            Err(AttachError::Decode(m)) => assert!(m.contains("stdin"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
