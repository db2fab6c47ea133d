//! Attach (the CRI `Attach` behind crustd's streaming server): the caller's streams joined
//! to a running container's main process without disturbing its CRI log.
//!
//! Output follows the attach request of the daemon <-> shim contract
//! ([`crust_shim_contract::ATTACH_ANNOTATION`]): crustd makes
//! FIFOs under `<state>/attach/<container>-<random>/`, opens their read ends, and asks the
//! shim with an `Update` annotation to copy the container's raw output into them as well as
//! into the log. The shim closes them when the stream ends; a reader that goes away is
//! dropped by the shim. Input goes to the container's `<bundle>/stdin` FIFO (held open by
//! the shim); with `stdin_once` the first attach's stdin EOF closes the container's stdin.
//!
//! Invariants: the FIFO files are unlinked once the shim has opened them (or on failure);
//! nothing of the session outlives the client's connection.

use crust_shim_contract::{AttachRequest, ATTACH_ANNOTATION};
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

use super::pipe::{
    client_gone, copy_in, copy_out, forward_resizes, open_reader, FifoDir, Output, StreamIo,
};
use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::{new_id, Runtime};

impl Runtime {
    /// Attaches `stdio` to running container `id` until its output streams end (the
    /// container exited), its stdin ends when no output was asked for, or the client goes.
    pub async fn attach(&self, id: &str, stdio: StreamIo) -> Result<()> {
        let (rec, shim) = self.running_with_shim(id, "attach to").await?;
        let tty = rec.spec.tty;
        let dir = FifoDir::create(self.cfg.state.join("attach").join(format!(
            "{}-{}",
            rec.id,
            &new_id()[..12]
        )))?;
        let mut subscribe = AttachRequest::default();
        let mut readers: Vec<(pipe::Receiver, Output)> = Vec::new();
        // With a tty the container's only output stream is stdout.
        let wanted = [
            ("stdout", stdio.stdout),
            ("stderr", if tty { None } else { stdio.stderr }),
        ];
        for (name, out) in wanted {
            let Some(out) = out else { continue };
            let Some(p) = dir.fifo(name, true)? else {
                continue;
            };
            readers.push((open_reader(&p)?, out));
            let path = Some(p.display().to_string());
            if name == "stdout" {
                subscribe.stdout = path;
            } else {
                subscribe.stderr = path;
            }
        }
        if !readers.is_empty() {
            shim.update(&rec.id, None, &[(ATTACH_ANNOTATION, &subscribe.encode())])
                .await?;
        }
        drop(dir);

        let outputs: Vec<JoinHandle<()>> = readers
            .into_iter()
            .map(|(r, w)| tokio::spawn(copy_out(r, w)))
            .collect();
        let mut input = None;
        if let (Some(client), true) = (stdio.stdin, rec.spec.stdin) {
            let path = rec.bundle.join("stdin");
            let mut w = pipe::OpenOptions::new()
                .open_sender(&path)
                .map_err(io("open stdin fifo", &path))?;
            let (shim, id, once) = (shim.clone(), rec.id.clone(), rec.spec.stdin_once);
            input = Some(tokio::spawn(async move {
                copy_in(client, &mut w).await;
                // The shim's CloseIO delivers what the FIFO holds before closing.
                if once {
                    if let Err(e) = shim.close_stdin(&id, "").await {
                        tracing::debug!(id, error = %e, "close container stdin");
                    }
                }
            }));
        }
        if let (Some(rx), true) = (stdio.resize, tty) {
            tokio::spawn(forward_resizes(
                shim.clone(),
                rec.id.clone(),
                String::new(),
                rx,
            ));
        }

        let gone = client_gone(stdio.gone.clone());
        let result = if outputs.is_empty() {
            let exited = {
                let (shim, id) = (shim.clone(), rec.id.clone());
                async move { shim.wait(&id, "").await }
            };
            tokio::select! {
                _ = async { if let Some(i) = &mut input { let _ = i.await; } } => Ok(()),
                _ = exited => Ok(()),
                _ = gone => Err(RuntimeError::ClientGone { op: "attach to", id: rec.id.clone() }),
            }
        } else {
            let mut outs = outputs;
            let all = async {
                for o in &mut outs {
                    let _ = o.await;
                }
            };
            let r = tokio::select! {
                _ = all => Ok(()),
                _ = gone => Err(RuntimeError::ClientGone { op: "attach to", id: rec.id.clone() }),
            };
            // Dropping the readers tells the shim to drop this subscriber.
            for o in &outs {
                o.abort();
            }
            r
        };
        if let Some(i) = input {
            i.abort();
        }
        result
    }
}
