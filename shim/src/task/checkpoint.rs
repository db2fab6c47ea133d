//! Checkpoint: `runtime checkpoint` of a running container's init (CRIU images into the
//! request's path), with containerd's runc CheckpointOptions. Restore is Create with a
//! checkpoint path (recorded, see create.rs) and Start (start.rs runs `runtime restore`).

use containerd_shim_protos::api;
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::empty::Empty;
use protobuf::{Message, UnknownValueRef};

use super::{ProcState, Service};
use crate::error::{Result, ShimError};
use crate::runtime::CheckpointOptions;

/// Decodes `containerd.runc.v1.CheckpointOptions` (other types: the defaults). Read from
/// the unknown fields of an empty message, as the runc options in create.rs: the type is
/// not in containerd-shim-protos.
pub fn checkpoint_options(any: Option<&Any>) -> Result<CheckpointOptions> {
    let mut o = CheckpointOptions::default();
    let Some(any) = any else { return Ok(o) };
    if !any
        .type_url
        .ends_with("containerd.runc.v1.CheckpointOptions")
    {
        return Ok(o);
    }
    let m = Empty::parse_from_bytes(&any.value).map_err(|e| ShimError::Decode {
        what: "checkpoint options",
        message: e.to_string(),
    })?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (field, v) in m.special_fields.unknown_fields().iter() {
        match (field, v) {
            (1, UnknownValueRef::Varint(x)) => o.exit = x != 0,
            (2, UnknownValueRef::Varint(x)) => o.open_tcp = x != 0,
            (3, UnknownValueRef::Varint(x)) => o.external_unix_sockets = x != 0,
            (4, UnknownValueRef::Varint(x)) => o.terminal = x != 0,
            (5, UnknownValueRef::Varint(x)) => o.file_locks = x != 0,
            (6, UnknownValueRef::LengthDelimited(b)) => o.empty_namespaces.push(text(b)),
            (7, UnknownValueRef::LengthDelimited(b)) => o.cgroups_mode = text(b),
            (8, UnknownValueRef::LengthDelimited(b)) => o.image_path = text(b),
            (9, UnknownValueRef::LengthDelimited(b)) => o.work_path = text(b),
            _ => {}
        }
    }
    Ok(o)
}

impl Service {
    pub(super) async fn do_checkpoint(&self, r: api::CheckpointTaskRequest) -> Result<()> {
        let o = checkpoint_options(r.options.as_ref())?;
        if o.terminal {
            return Err(ShimError::Unsupported(
                "checkpoint of a container with a terminal",
            ));
        }
        if !o.empty_namespaces.is_empty() {
            return Err(ShimError::Unsupported("checkpoint with empty namespaces"));
        }
        let images = if o.image_path.is_empty() {
            r.path.clone()
        } else {
            o.image_path.clone()
        };
        if images.is_empty() || !images.starts_with('/') {
            return Err(ShimError::InvalidRequest(format!(
                "checkpoint path {images:?} must be absolute"
            )));
        }
        let work = if o.work_path.is_empty() {
            images.clone()
        } else {
            o.work_path.clone()
        };
        let runtime = {
            let st = self.lock();
            let c = st.container(&r.id)?;
            if c.init.state != ProcState::Running || c.init.exiting {
                return Err(ShimError::WrongState {
                    id: r.id.clone(),
                    state: c.init.state.name(),
                    op: "checkpoint",
                });
            }
            if c.init.terminal {
                return Err(ShimError::Unsupported(
                    "checkpoint of a container with a terminal",
                ));
            }
            c.runtime.clone()
        };
        runtime
            .checkpoint(
                &self.inner.reaper,
                &r.id,
                images.as_ref(),
                work.as_ref(),
                &o,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_checkpoint_options() {
        // exit = true (1), file_locks = true (5), cgroups_mode = "soft" (7),
        // work_path = "/w" (9)
        let mut any = Any::new();
        any.type_url = "containerd.runc.v1.CheckpointOptions".into();
        any.value = vec![
            0x08, 1, 0x28, 1, 0x3a, 4, b's', b'o', b'f', b't', 0x4a, 2, b'/', b'w',
        ];
        let o = checkpoint_options(Some(&any)).unwrap();
        assert_eq!(
            o,
            CheckpointOptions {
                exit: true,
                file_locks: true,
                cgroups_mode: "soft".into(),
                work_path: "/w".into(),
                ..Default::default()
            }
        );
        any.type_url = "other.Type".into();
        assert_eq!(
            checkpoint_options(Some(&any)).unwrap(),
            CheckpointOptions::default()
        );
    }
}
