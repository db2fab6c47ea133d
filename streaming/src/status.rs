//! The `metav1.Status` that remotecommand v4+ writes on the error stream, shaped exactly as
//! kubelet's `json.Marshal` output (field order, `omitempty`), e.g.
//! `{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`.

use serde::{Deserialize, Serialize};

/// `metav1.Status` (the fields remotecommand uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i32,
}

fn is_zero(c: &i32) -> bool {
    *c == 0
}

/// `metav1.ListMeta`, always empty here but always present (no `omitempty` upstream).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMeta {}

/// `metav1.StatusDetails` (causes only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

/// `metav1.StatusCause`; its Go field `Type` is serialized as `reason`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

pub const STATUS_SUCCESS: &str = "Success";
pub const STATUS_FAILURE: &str = "Failure";
pub const REASON_NON_ZERO_EXIT: &str = "NonZeroExitCode";
pub const CAUSE_EXIT_CODE: &str = "ExitCode";

impl Status {
    /// The command succeeded.
    pub fn success() -> Self {
        Self {
            status: STATUS_SUCCESS.into(),
            ..Self::default()
        }
    }

    /// The command exited with `code` != 0 (message worded as containerd + kubelet do).
    pub fn exit_code(cmd: &[String], code: i32) -> Self {
        Self {
            status: STATUS_FAILURE.into(),
            message: format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                cmd.join(" ")
            ),
            reason: REASON_NON_ZERO_EXIT.into(),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: CAUSE_EXIT_CODE.into(),
                    message: code.to_string(),
                }],
            }),
            ..Self::default()
        }
    }

    /// The session failed (kubelet's `apierrors.NewInternalError`).
    pub fn internal(err: &str) -> Self {
        Self {
            status: STATUS_FAILURE.into(),
            message: format!("Internal error occurred: {err}"),
            reason: "InternalError".into(),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: String::new(),
                    message: err.to_string(),
                }],
            }),
            code: 500,
            metadata: ListMeta {},
        }
    }

    /// JSON bytes as written on the error stream.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The exit code this status reports: `Some(0)` for success, `Some(n)` for
    /// NonZeroExitCode, `None` for other failures.
    pub fn reported_exit_code(&self) -> Option<i32> {
        if self.status == STATUS_SUCCESS {
            return Some(0);
        }
        if self.reason != REASON_NON_ZERO_EXIT {
            return None;
        }
        self.details
            .as_ref()?
            .causes
            .iter()
            .find(|c| c.reason == CAUSE_EXIT_CODE)
            .and_then(|c| c.message.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_json_matches_kubelet_bytes() {
        let cmd = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        let s = Status::exit_code(&cmd, 3);
        assert_eq!(
            String::from_utf8(s.to_json()).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        assert_eq!(s.reported_exit_code(), Some(3));
        assert_eq!(
            String::from_utf8(Status::success().to_json()).unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let i = Status::internal("boom");
        assert_eq!(
            String::from_utf8(i.to_json()).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError","details":{"causes":[{"message":"boom"}]},"code":500}"#
        );
        assert_eq!(i.reported_exit_code(), None);
        let parsed: Status = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(parsed, s);
    }
}
