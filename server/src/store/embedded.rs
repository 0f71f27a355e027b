//! The default store: redb, an embedded, pure-Rust, ACID B-tree in one file under the data
//! directory. A commit is fsynced before it returns (`Durability::Immediate`), so an acknowledged
//! write survives `kill -9` and power loss.
//!
//! Writes go through one writer thread that commits whatever writes are queued together in one
//! transaction (group commit): concurrent writers share one fsync instead of queueing for one each.
//! Reads run on the blocking pool against MVCC snapshots and never wait for the writer.
//!
//! After an I/O error (a full disk, say) redb refuses every later write until the database is
//! reopened. The writer then closes and reopens it, before its next batch, until that works; in
//! between, calls and the health round-trip answer UNAVAILABLE, naming a full disk when it is one,
//! and writes succeed again as soon as the cause is gone, without a restart.

use std::{
    ops::Bound,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::{Candidate, CandidateStore, Page, Result, StoreError, decode_name_cursor, paginate};
use crate::name::CandidateName;

/// name -> nothing: the key is the whole document (`{"CandidateName": name}`).
const CANDIDATES: TableDefinition<&str, ()> = TableDefinition::new("candidates");
/// One key, written by the health check only after a write failed (to see that writes work again).
const PROBE: TableDefinition<&str, ()> = TableDefinition::new("probe");
/// The file inside the data directory.
pub const FILE_NAME: &str = "candidates.redb";
/// The most writes one group commit takes; bounds the latency a single batch adds.
const MAX_BATCH: usize = 256;
/// Queue of writes waiting for the writer thread; callers wait (back-pressure) when it is full.
const QUEUE: usize = 4096;

/// The embedded store's flags.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "embedded_store")]
#[command(next_help_heading = "Embedded store (--store embedded, the default)")]
pub struct Args {
    /// Directory of the embedded store (created if missing; must be writable).
    #[arg(long, env = "CANDIDATES_DATA_DIR", default_value = "candidates-data")]
    pub data_dir: PathBuf,
}

pub async fn open(args: &Args, _context: &super::OpenContext) -> Result<super::DynStore, OpenError> {
    Ok(Arc::new(EmbeddedStore::open(&args.data_dir)?))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot start the embedded store's writer thread: {source}")]
    Thread { source: std::io::Error },
    #[error("{path} is already open in another process (is another candidate-server running?)")]
    AlreadyOpen { path: PathBuf },
    #[error(
        "embedded store {path} exists but is empty (0 bytes), so it is not a store: its data is gone or it was never written; restore it from a backup, or delete it to start an empty store"
    )]
    Empty { path: PathBuf },
    #[error("cannot read embedded store {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot open embedded store {path} (not a valid store file?): {source}")]
    Open { path: PathBuf, source: redb::DatabaseError },
    #[error("cannot initialise embedded store {path}: {source}")]
    Init { path: PathBuf, source: redb::Error },
}

/// A local file has nothing to wait for: each of these needs the operator (a second process on
/// the same directory is refused at once rather than waited for).
impl super::Transient for OpenError {
    fn transient(&self) -> Option<&'static str> {
        None
    }
}

#[derive(Debug)]
enum Op {
    Put(String),
    Delete(String),
    /// A write to the probe table: the health check's test that writes work again.
    Probe,
}

struct Job {
    op: Op,
    /// `Ok(true)` when the op changed something (a delete found its key).
    reply: oneshot::Sender<Result<bool>>,
}

/// The open database, or none while it is being reopened after an I/O error.
#[derive(Debug)]
struct Handle {
    path: PathBuf,
    db: RwLock<Option<Arc<Database>>>,
    /// Why the last reopen failed (`None` once the database is open again).
    broken: RwLock<Option<String>>,
    /// Why the last write failed with an I/O error (`None` after a successful write): health
    /// reports the store down until a write (or the health check's own probe write) succeeds.
    write_failure: RwLock<Option<String>>,
}

impl Handle {
    fn get(&self) -> Result<Arc<Database>> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        db.clone().ok_or_else(|| {
            let why = self.broken.read().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or_default();
            StoreError::Unavailable {
                message: format!("the embedded store is reopening after a write error: {why}"),
                source: None,
            }
        })
    }

    /// Closes the database (waiting, briefly, for reads in progress) and opens it again.
    fn reopen(&self) -> Result<(), redb::DatabaseError> {
        let taken = self.db.write().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut db) = taken {
            // Readers hold a clone for microseconds; the file lock is freed only when the last goes.
            let deadline = Instant::now() + Duration::from_secs(5);
            let db = loop {
                match Arc::try_unwrap(db) {
                    Ok(db) => break Some(db),
                    Err(shared) if Instant::now() < deadline => {
                        db = shared;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => break None,
                }
            };
            if let Some(db) = db
                && let Err(error) = db.close()
            {
                tracing::warn!(%error, "closing the embedded store after a write error failed");
            }
        }
        let db = Database::open(&self.path)?;
        *self.db.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(db));
        *self.broken.write().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }
}

#[derive(Clone)]
pub struct EmbeddedStore {
    handle: Arc<Handle>,
    writes: mpsc::Sender<Job>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.handle.path).finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) `<data_dir>/candidates.redb` and starts the writer thread, which
    /// ends when the last handle to the store is dropped.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| OpenError::CreateDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join(FILE_NAME);
        // Only a missing file starts a new store: `Database::create` would also initialise an
        // existing empty file, silently serving an empty store where data was expected.
        let db = match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => return Err(OpenError::Empty { path }),
            Ok(_) => Database::open(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Database::create(&path),
            Err(source) => return Err(OpenError::Read { path, source }),
        };
        let db = db.map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen { path: path.clone() },
            source => OpenError::Open { path: path.clone(), source },
        })?;
        let init = || -> Result<(), redb::Error> {
            let tx = db.begin_write()?;
            tx.open_table(CANDIDATES)?;
            tx.commit()?;
            Ok(())
        };
        init().map_err(|source| OpenError::Init { path: path.clone(), source })?;

        let handle = Arc::new(Handle {
            path,
            db: RwLock::new(Some(Arc::new(db))),
            broken: RwLock::new(None),
            write_failure: RwLock::new(None),
        });
        let (writes, queue) = mpsc::channel(QUEUE);
        let writer_handle = Arc::clone(&handle);
        std::thread::Builder::new()
            .name("embedded-writer".into())
            .spawn(move || writer(&writer_handle, queue))
            .map_err(|source| OpenError::Thread { source })?;
        Ok(Self { handle, writes })
    }

    async fn write(&self, op: Op) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::Unavailable { message: "embedded store is closed".into(), source: None })?;
        answer.await.map_err(|_| StoreError::Internal { message: "embedded writer stopped".into(), source: None })?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    {
        let db = self.handle.get()?;
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::internal("embedded read task failed", e))?
            .map_err(|e| read_error(&e).unwrap_or_else(|| StoreError::internal("embedded read failed", e)))
    }
}

/// The writer loop: take one job (blocking), then whatever else is queued, commit them together,
/// and answer each. A failed commit fails every job in the batch: none of them is acknowledged.
/// After an I/O error the database is reopened before the next batch.
fn writer(handle: &Handle, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = match handle.get() {
            Ok(db) => apply(&db, &batch).map_err(|e| {
                let needs_reopen = is_io(&e);
                (write_error(&e), needs_reopen)
            }),
            // Closed after an earlier I/O error: reopen first (the cause may be gone by now).
            Err(_) => match handle.reopen() {
                Ok(()) => {
                    tracing::info!(path = %handle.path.display(), "embedded store reopened after a write error");
                    handle.get().and_then(|db| apply(&db, &batch).map_err(|e| write_error(&e))).map_err(|e| (e, false))
                }
                Err(e) => Err((reopen_error(handle, &e), false)),
            },
        };
        let failure = match &result {
            Err((StoreError::Unavailable { message, .. }, _)) => Some(message.clone()),
            _ => None,
        };
        let previous = std::mem::replace(
            &mut *handle.write_failure.write().unwrap_or_else(PoisonError::into_inner),
            failure.clone(),
        );
        // One line when writes start failing and one when they work again, not one per write: a
        // full disk at thousands of writes a second must not flood the log (often on that disk).
        match (&previous, &failure) {
            (None, Some(why)) => tracing::error!(error = %why, "embedded store writes are failing"),
            (Some(_), None) => tracing::info!("embedded store writes work again"),
            _ => {}
        }
        match result {
            Ok(changed) => {
                for (job, changed) in batch.drain(..).zip(changed) {
                    let _ = job.reply.send(Ok(changed));
                }
            }
            Err((error, needs_reopen)) => {
                if failure.is_none() {
                    tracing::error!(%error, writes = batch.len(), "embedded store commit failed");
                }
                if needs_reopen {
                    // redb refuses all later writes after an I/O error until reopened.
                    if let Err(e) = handle.reopen() {
                        reopen_error(handle, &e);
                    }
                }
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(match &error {
                        StoreError::Unavailable { message, .. } => {
                            StoreError::Unavailable { message: message.clone(), source: None }
                        }
                        _ => StoreError::Internal { message: "embedded store commit failed".into(), source: None },
                    }));
                }
            }
        }
    }
}

/// Records why a reopen failed (health reports it) and returns it as a store error.
fn reopen_error(handle: &Handle, error: &redb::DatabaseError) -> StoreError {
    let why = match error {
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) if is_disk_full(io) => DISK_FULL.to_owned(),
        other => other.to_string(),
    };
    tracing::debug!(error = %why, path = %handle.path.display(), "cannot reopen the embedded store");
    *handle.broken.write().unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
    StoreError::Unavailable { message: format!("the embedded store cannot be reopened: {why}"), source: None }
}

const DISK_FULL: &str = "the disk of the embedded store is full (no space left on device); retry later";

fn is_disk_full(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::StorageFull || error.raw_os_error() == Some(28 /* ENOSPC */)
}

/// An I/O error (or the refusal that follows one): the database must be reopened.
fn is_io(error: &redb::Error) -> bool {
    matches!(error, redb::Error::Io(_) | redb::Error::PreviousIo)
}

/// A failed write as a client should see it: a full disk or another I/O error is UNAVAILABLE
/// (retryable, elsewhere or later), anything else internal.
fn write_error(error: &redb::Error) -> StoreError {
    match error {
        redb::Error::Io(io) if is_disk_full(io) => StoreError::Unavailable { message: DISK_FULL.into(), source: None },
        redb::Error::Io(_) | redb::Error::PreviousIo => StoreError::Unavailable {
            message: format!("the embedded store could not write ({error}); retry later"),
            source: None,
        },
        _ => StoreError::Internal { message: format!("embedded store commit failed: {error}"), source: None },
    }
}

/// A failed read that is the database's state rather than a bug: UNAVAILABLE.
fn read_error(error: &redb::Error) -> Option<StoreError> {
    is_io(error)
        .then(|| StoreError::Unavailable { message: format!("the embedded store cannot read ({error})"), source: None })
}

fn apply(db: &Database, batch: &[Job]) -> Result<Vec<bool>, redb::Error> {
    let tx = db.begin_write()?;
    let mut changed = Vec::with_capacity(batch.len());
    {
        let mut table = tx.open_table(CANDIDATES)?;
        for job in batch {
            changed.push(match &job.op {
                Op::Put(name) => {
                    table.insert(name.as_str(), ())?;
                    true
                }
                Op::Delete(name) => table.remove(name.as_str())?.is_some(),
                Op::Probe => {
                    tx.open_table(PROBE)?.insert("probe", ())?;
                    true
                }
            });
        }
    }
    tx.commit()?;
    Ok(changed)
}

#[async_trait]
impl CandidateStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn get(&self, name: &CandidateName) -> Result<Candidate> {
        // A point read is a few microseconds on a cached B-tree: done inline, it costs less than
        // the hop to the blocking pool it would otherwise take (measured: bench/run.py).
        let db = self.handle.get()?;
        let lookup = || -> Result<bool, redb::Error> {
            let tx = db.begin_read()?;
            let table = tx.open_table(CANDIDATES)?;
            Ok(table.get(name.as_str())?.is_some())
        };
        match lookup() {
            Ok(true) => Ok(name.into()),
            Ok(false) => Err(StoreError::NotFound),
            Err(e) => Err(read_error(&e).unwrap_or_else(|| StoreError::internal("embedded read failed", e))),
        }
    }

    async fn put(&self, name: &CandidateName) -> Result<Candidate> {
        self.write(Op::Put(name.as_str().to_owned())).await?;
        Ok(name.into())
    }

    async fn delete(&self, name: &CandidateName) -> Result<()> {
        if self.write(Op::Delete(name.as_str().to_owned())).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn list(&self, page_size: usize, page_token: Option<&str>) -> Result<Page> {
        let after = page_token.map(decode_name_cursor).transpose()?;
        let mut rows = self
            .read(move |db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(CANDIDATES)?;
                let lower = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                let mut rows = Vec::with_capacity(page_size + 1);
                for entry in table.range::<&str>((lower, Bound::Unbounded))?.take(page_size + 1) {
                    let (key, _) = entry?;
                    rows.push(Candidate { name: key.value().to_owned() });
                }
                Ok(rows)
            })
            .await?;
        Ok(paginate(&mut rows, page_size))
    }

    /// A read round-trip; after a failed write, also a probe write: a store that cannot write
    /// (a full disk) is down until it can again.
    async fn ping(&self) -> Result<()> {
        self.read(|db| {
            let tx = db.begin_read()?;
            tx.open_table(CANDIDATES)?;
            Ok(())
        })
        .await?;
        let failed = self.handle.write_failure.read().unwrap_or_else(PoisonError::into_inner).is_some();
        if failed {
            self.write(Op::Probe).await?;
        }
        Ok(())
    }
}
