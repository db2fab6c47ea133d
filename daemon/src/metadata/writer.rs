//! Group commit for the records that change on every request (pods, containers).
//!
//! One thread owns these writes. A caller hands it a [`Change`] list and awaits the
//! commit; whatever arrives while a transaction is being committed goes into the next one
//! together, so N concurrent requests cost one fsync instead of N, and no tokio worker
//! ever waits on the disk. Each caller's changes are applied in the order sent, all of
//! them or none: if a batch of several callers fails to commit, each caller's changes are
//! retried in a transaction of their own, so one caller's failure is never another's.
//!
//! Invariant: a caller's `commit` returns `Ok` only after its changes are durable (redb's
//! default durability: the commit is fsynced before it returns).
//!
//! A caller that mirrors its changes in memory passes that as `then` ([`Writer::commit_then`]):
//! it runs on the writer thread right after the commit, in commit order, so the mirror
//! ends in the same state as the store even when two callers change the same key at once
//! (waking the callers and letting each update the mirror would apply them in any order).

use std::sync::mpsc;
use std::sync::Arc;

use super::{Error, Metadata, Table, WriteTx};

/// Most callers' changes in one transaction (bounds the latency of the first in line).
const MAX_BATCH: usize = 256;

/// One change to a table.
#[derive(Debug, Clone)]
pub enum Change {
    /// Sets `key` to `value`.
    Put {
        /// The table.
        table: Table,
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// The table.
        table: Table,
        /// The key.
        key: String,
    },
}

impl Change {
    /// A put of the JSON of `value`.
    pub fn put_json<T: serde::Serialize>(
        table: Table,
        key: &str,
        value: &T,
    ) -> Result<Change, Error> {
        let value = serde_json::to_vec(value).map_err(|source| Error::Decode {
            table,
            key: key.to_string(),
            source,
        })?;
        Ok(Change::Put {
            table,
            key: key.to_string(),
            value,
        })
    }

    fn apply(&self, tx: &mut WriteTx) -> Result<(), Error> {
        match self {
            Change::Put { table, key, value } => tx.put(*table, key, value),
            Change::Delete { table, key } => tx.delete(*table, key).map(drop),
        }
    }
}

/// Work run on the writer thread after a job's changes are committed.
type Then = Box<dyn FnOnce() + Send>;

struct Job {
    changes: Vec<Change>,
    then: Option<Then>,
    done: tokio::sync::oneshot::Sender<Result<(), Error>>,
}

impl Job {
    /// Reports `r`, having run `then` first if the changes were committed.
    fn finish(self, r: Result<(), Error>) {
        if r.is_ok() {
            if let Some(then) = self.then {
                then();
            }
        }
        let _ = self.done.send(r);
    }
}

/// The handle callers send changes through; cheap to clone. The thread exits once every
/// handle is dropped.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread of `meta`.
    pub fn start(meta: Arc<Metadata>) -> Result<Writer, Error> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("crust-meta-writer".into())
            .spawn(move || run(&meta, &rx))
            .map_err(Error::Writer)?;
        Ok(Writer { tx })
    }

    /// Commits `changes` (in order, all or none); returns once they are durable.
    pub async fn commit(&self, changes: Vec<Change>) -> Result<(), Error> {
        self.send(changes, None).await
    }

    /// Commits `changes` like [`Writer::commit`] and, once they are committed, runs `then`
    /// on the writer thread, in commit order (see the module doc). `then` must be quick.
    pub async fn commit_then(
        &self,
        changes: Vec<Change>,
        then: impl FnOnce() + Send + 'static,
    ) -> Result<(), Error> {
        self.send(changes, Some(Box::new(then))).await
    }

    async fn send(&self, changes: Vec<Change>, then: Option<Then>) -> Result<(), Error> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job {
                changes,
                then,
                done,
            })
            .map_err(|_| Error::WriterGone)?;
        wait.await.map_err(|_| Error::WriterGone)?
    }
}

fn run(meta: &Metadata, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let all = meta.write::<_, Error>(|tx| {
            for c in batch.iter().flat_map(|j| &j.changes) {
                c.apply(tx)?;
            }
            Ok(())
        });
        match all {
            Ok(()) => {
                for j in batch {
                    j.finish(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(j) = batch.pop() {
                    j.finish(Err(e));
                }
            }
            // Someone's changes failed: give each caller its own transaction and result.
            Err(_) => {
                for j in batch {
                    let r = meta.write::<_, Error>(|tx| {
                        for c in &j.changes {
                            c.apply(tx)?;
                        }
                        Ok(())
                    });
                    j.finish(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Read as _;

    fn open() -> (tempfile::TempDir, Arc<Metadata>) {
        let d = tempfile::tempdir().unwrap();
        let m = Arc::new(Metadata::open(&d.path().join("meta.redb")).unwrap());
        (d, m)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_all_commit_in_order() {
        let (_d, m) = open();
        let w = Writer::start(m.clone()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("c{i}");
                w.commit(vec![
                    Change::Put {
                        table: Table::Containers,
                        key: key.clone(),
                        value: b"first".to_vec(),
                    },
                    Change::Put {
                        table: Table::Containers,
                        key: key.clone(),
                        value: format!("v{i}").into_bytes(),
                    },
                ])
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let r = m.read().unwrap();
        for i in 0..64 {
            assert_eq!(
                r.get(Table::Containers, &format!("c{i}")).unwrap(),
                Some(format!("v{i}").into_bytes())
            );
        }
        w.commit(vec![Change::Delete {
            table: Table::Containers,
            key: "c0".into(),
        }])
        .await
        .unwrap();
        assert_eq!(
            m.read().unwrap().get(Table::Containers, "c0").unwrap(),
            None
        );
    }

    /// The mirror follows commit order: many callers rewrite one key at once, each
    /// recording its value in the mirror through `then`; the mirror ends equal to the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn then_runs_in_commit_order() {
        let (_d, m) = open();
        let w = Writer::start(m.clone()).unwrap();
        let mirror = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let log = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
        let mut tasks = Vec::new();
        for i in 0..64usize {
            let (w, mirror, log) = (w.clone(), mirror.clone(), log.clone());
            tasks.push(tokio::spawn(async move {
                let value = format!("v{i}").into_bytes();
                let put = Change::Put {
                    table: Table::Pods,
                    key: "p".into(),
                    value: value.clone(),
                };
                w.commit_then(vec![put], move || {
                    *mirror.lock().unwrap() = value;
                    log.lock().unwrap().push(i);
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(log.lock().unwrap().len(), 64, "every then ran once");
        let stored = m.read().unwrap().get(Table::Pods, "p").unwrap().unwrap();
        assert_eq!(*mirror.lock().unwrap(), stored);
    }

    #[tokio::test]
    async fn a_gone_writer_is_an_error_not_a_hang() {
        let (_d, m) = open();
        let w = Writer::start(m).unwrap();
        let (tx, _) = mpsc::channel::<Job>();
        let dead = Writer { tx };
        let c = vec![Change::Delete {
            table: Table::Pods,
            key: "p".into(),
        }];
        assert!(matches!(
            dead.commit(c.clone()).await,
            Err(Error::WriterGone)
        ));
        w.commit(c).await.unwrap();
    }
}
