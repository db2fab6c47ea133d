//! Metadata: images, tags, snapshots and references in one embedded transactional store
//! (redb). Every change an operation makes is one write transaction, so a crash at any
//! point leaves either the old or the new state.
//!
//! On-disk format, schema version [`SCHEMA_VERSION`] (`<root>/meta.redb`), all tables
//! `&str -> &[u8]`:
//! - `meta`: `schema_version` and `next_snapshot_id` as little-endian u64;
//! - `images`: image id (config digest) → JSON `images::ImageRecord`;
//! - `tags`: normalised name (`docker.io/library/busybox:latest` or `…@sha256:…`) → image id;
//! - `snapshots`: snapshot key (chain ID for committed layers) → JSON `snapshots::Record`;
//! - `refs`: `blob/<digest>` or `snap/<chain id>` → little-endian u64 count of images
//!   using it. An entry at 0 is removed; what nothing references is garbage;
//! - `pods`: pod sandbox id → JSON `runtime::PodRecord` (its own `version` field);
//! - `containers`: container id → JSON `runtime::ContainerRecord` (its own `version`).
//!
//! Pod and container records are written through [`Writer`] (group commit on one thread);
//! everything else through [`Metadata::write`].

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ErrorKind, Kind};

mod writer;
pub use writer::{Change, Writer};

/// redb page cache size.
const CACHE_BYTES: usize = 2 * 1024 * 1024;

/// The schema version this code reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

type Def = TableDefinition<'static, &'static str, &'static [u8]>;

/// The tables.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// Bookkeeping counters.
    Meta,
    /// Image records by id.
    Images,
    /// Names to image ids.
    Tags,
    /// Snapshot records by key.
    Snapshots,
    /// Reference counts.
    Refs,
    /// Pod sandboxes by id (JSON `runtime::PodRecord`).
    Pods,
    /// Containers by id (JSON `runtime::ContainerRecord`).
    Containers,
}

impl Table {
    const fn def(self) -> Def {
        match self {
            Table::Meta => TableDefinition::new("meta"),
            Table::Images => TableDefinition::new("images"),
            Table::Tags => TableDefinition::new("tags"),
            Table::Snapshots => TableDefinition::new("snapshots"),
            Table::Refs => TableDefinition::new("refs"),
            Table::Pods => TableDefinition::new("pods"),
            Table::Containers => TableDefinition::new("containers"),
        }
    }
}

/// Metadata failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening the database file failed.
    #[error("open metadata {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<redb::Error>,
    },
    /// The database was written by a newer schema.
    #[error("metadata {path} has schema version {found}, this crust supports {SCHEMA_VERSION}")]
    Schema {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
    /// A transaction failed.
    #[error("metadata transaction")]
    Db(#[source] Box<redb::Error>),
    /// The group-commit thread could not be started.
    #[error("starting the metadata writer thread")]
    Writer(#[source] std::io::Error),
    /// The group-commit thread is gone (it only exits when crustd shuts down).
    #[error("the metadata writer has stopped")]
    WriterGone,
    /// A record did not decode.
    #[error("metadata record {key} in {table:?} is corrupt")]
    Decode {
        /// The table.
        table: Table,
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

fn db<E: Into<redb::Error>>(e: E) -> Error {
    Error::Db(Box::new(e.into()))
}

/// The metadata database.
#[derive(Debug)]
pub struct Metadata {
    db: redb::Database,
}

/// Reads shared by read and write transactions.
pub trait Read {
    /// Value at `key`.
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// All entries, sorted by key.
    fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, Error>;

    /// Value at `key`, decoded from JSON.
    fn get_json<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>, Error> {
        self.get(table, key)?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|source| Error::Decode {
                    table,
                    key: key.to_string(),
                    source,
                })
            })
            .transpose()
    }

    /// All entries decoded from JSON.
    fn list_json<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>, Error> {
        self.list(table)?
            .into_iter()
            .map(|(k, v)| match serde_json::from_slice(&v) {
                Ok(t) => Ok((k, t)),
                Err(source) => Err(Error::Decode {
                    table,
                    key: k,
                    source,
                }),
            })
            .collect()
    }

    /// A reference count (0 if absent).
    fn refs(&self, key: &str) -> Result<u64, Error> {
        Ok(self
            .get(Table::Refs, key)?
            .map(|v| decode_u64(&v))
            .unwrap_or(0))
    }
}

fn decode_u64(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[..n].copy_from_slice(&v[..n]);
    u64::from_le_bytes(b)
}

fn read_table<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
    key: &str,
) -> Result<Option<Vec<u8>>, Error> {
    Ok(t.get(key).map_err(db)?.map(|g| g.value().to_vec()))
}

fn list_table<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    for item in t.iter().map_err(db)? {
        let (k, v) = item.map_err(db)?;
        out.push((k.value().to_string(), v.value().to_vec()));
    }
    Ok(out)
}

/// A read-only snapshot of the database.
pub struct ReadTx(redb::ReadTransaction);

impl Read for ReadTx {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self.0.open_table(table.def()) {
            Ok(t) => read_table(&t, key),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(db(e)),
        }
    }

    fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, Error> {
        match self.0.open_table(table.def()) {
            Ok(t) => list_table(&t),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(db(e)),
        }
    }
}

/// A write transaction: all or nothing.
pub struct WriteTx(redb::WriteTransaction);

impl Read for WriteTx {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, Error> {
        read_table(&self.0.open_table(table.def()).map_err(db)?, key)
    }

    fn list(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, Error> {
        list_table(&self.0.open_table(table.def()).map_err(db)?)
    }
}

impl WriteTx {
    /// Sets `key` to `value`.
    pub fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), Error> {
        self.0
            .open_table(table.def())
            .map_err(db)?
            .insert(key, value)
            .map_err(db)?;
        Ok(())
    }

    /// Sets `key` to the JSON of `value`.
    pub fn put_json<T: Serialize>(
        &mut self,
        table: Table,
        key: &str,
        value: &T,
    ) -> Result<(), Error> {
        let v = serde_json::to_vec(value).map_err(|source| Error::Decode {
            table,
            key: key.to_string(),
            source,
        })?;
        self.put(table, key, &v)
    }

    /// Removes `key`; true if it existed.
    pub fn delete(&mut self, table: Table, key: &str) -> Result<bool, Error> {
        let mut t = self.0.open_table(table.def()).map_err(db)?;
        let existed = t.remove(key).map_err(db)?.is_some();
        Ok(existed)
    }

    /// Adds `delta` to a reference count and returns the new value; a count reaching 0
    /// is removed.
    pub fn add_ref(&mut self, key: &str, delta: i64) -> Result<u64, Error> {
        let n = (self.refs(key)? as i64 + delta).max(0) as u64;
        if n == 0 {
            self.delete(Table::Refs, key)?;
        } else {
            self.put(Table::Refs, key, &n.to_le_bytes())?;
        }
        Ok(n)
    }

    /// Allocates the next snapshot id.
    pub fn next_snapshot_id(&mut self) -> Result<u64, Error> {
        let n = self
            .get(Table::Meta, "next_snapshot_id")?
            .map(|v| decode_u64(&v))
            .unwrap_or(1);
        self.put(Table::Meta, "next_snapshot_id", &(n + 1).to_le_bytes())?;
        Ok(n)
    }
}

impl Metadata {
    /// Opens (creating) the database at `path` and checks its schema version.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open_err = |e: redb::Error| Error::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        // A small page cache: the records are few and small, and crustd's idle RSS counts.
        let database = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| open_err(e.into()))?;
        // Container records hold their environment: owner only.
        crate::perms::restrict_file(path).map_err(|e| open_err(e.into()))?;
        let me = Self { db: database };
        me.write(|tx| {
            for t in [
                Table::Meta,
                Table::Images,
                Table::Tags,
                Table::Snapshots,
                Table::Refs,
                Table::Pods,
                Table::Containers,
            ] {
                tx.0.open_table(t.def()).map_err(db)?;
            }
            match tx.get(Table::Meta, "schema_version")? {
                None => tx.put(Table::Meta, "schema_version", &SCHEMA_VERSION.to_le_bytes()),
                Some(v) if decode_u64(&v) == SCHEMA_VERSION => Ok(()),
                Some(v) => Err(Error::Schema {
                    path: path.to_path_buf(),
                    found: decode_u64(&v),
                }),
            }
        })?;
        Ok(me)
    }

    /// Runs `f` in a write transaction, committed only if `f` succeeds; durable (fsynced)
    /// when this returns.
    pub fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(true, f)
    }

    /// [`Metadata::write`] without the fsync: the commit is visible to every reader at
    /// once and becomes durable with the next durable commit (redb persists commits in
    /// order, so a durable commit makes every earlier one durable too); a crash before
    /// that loses it. For records whose loss a later durable commit or the start-up
    /// cleanup covers (see `snapshots::overlay`'s prepare).
    pub fn write_volatile<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(false, f)
    }

    fn write_with<T, E: From<Error>>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut tx = WriteTx(self.db.begin_write().map_err(db)?);
        if !durable {
            tx.0.set_durability(redb::Durability::None).map_err(db)?;
        }
        match f(&mut tx) {
            Ok(v) => {
                tx.0.commit().map_err(db)?;
                Ok(v)
            }
            Err(e) => {
                let _ = tx.0.abort();
                Err(e)
            }
        }
    }

    /// A consistent read snapshot.
    pub fn read(&self) -> Result<ReadTx, Error> {
        Ok(ReadTx(self.db.begin_read().map_err(db)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_refs_and_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.redb");
        {
            let m = Metadata::open(&p).unwrap();
            m.write::<_, Error>(|tx| {
                tx.put(Table::Tags, "a", b"x")?;
                assert_eq!(tx.add_ref("blob/x", 1)?, 1);
                assert_eq!(tx.add_ref("blob/x", 1)?, 2);
                assert_eq!(tx.next_snapshot_id()?, 1);
                Ok(())
            })
            .unwrap();
            // A failing transaction changes nothing.
            let r: Result<(), Error> = m.write(|tx| {
                tx.put(Table::Tags, "b", b"y")?;
                tx.add_ref("blob/x", -2)?;
                Err(Error::Schema {
                    path: p.clone(),
                    found: 9,
                })
            });
            assert!(r.is_err());
            let rt = m.read().unwrap();
            assert_eq!(rt.get(Table::Tags, "b").unwrap(), None);
            assert_eq!(rt.refs("blob/x").unwrap(), 2);
        }
        // Reopen: data persisted, schema accepted.
        let m = Metadata::open(&p).unwrap();
        assert_eq!(
            m.read().unwrap().list(Table::Tags).unwrap(),
            vec![("a".into(), b"x".to_vec())]
        );
        m.write::<_, Error>(|tx| tx.put(Table::Meta, "schema_version", &7u64.to_le_bytes()))
            .unwrap();
        drop(m);
        assert!(matches!(
            Metadata::open(&p),
            Err(Error::Schema { found: 7, .. })
        ));
    }

    /// A volatile commit is visible at once, and a later durable commit persists it with
    /// its own changes (what the snapshotter's prepare relies on).
    #[test]
    fn volatile_commit_is_visible_and_made_durable_by_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.redb");
        {
            let m = Metadata::open(&p).unwrap();
            m.write_volatile::<_, Error>(|tx| tx.put(Table::Snapshots, "active", b"a"))
                .unwrap();
            assert_eq!(
                m.read().unwrap().get(Table::Snapshots, "active").unwrap(),
                Some(b"a".to_vec())
            );
            m.write::<_, Error>(|tx| tx.put(Table::Containers, "c", b"c"))
                .unwrap();
        }
        let m = Metadata::open(&p).unwrap();
        let r = m.read().unwrap();
        assert_eq!(
            r.get(Table::Snapshots, "active").unwrap(),
            Some(b"a".to_vec())
        );
        assert_eq!(r.get(Table::Containers, "c").unwrap(), Some(b"c".to_vec()));
    }
}
