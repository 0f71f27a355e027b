//! The default store: redb, an embedded, pure-Rust, ACID B-tree in one file under the data
//! directory. A commit is fsynced before it returns (`Durability::Immediate`), so an acknowledged
//! write survives `kill -9` and power loss.
//!
//! Writes go through one writer thread that commits whatever writes are queued together in one
//! transaction (group commit): concurrent writers share one fsync instead of queueing for one each.
//! Reads run on the blocking pool against MVCC snapshots and never wait for the writer.

use std::{
    ops::Bound,
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::{Candidate, CandidateStore, Page, Result, StoreError, decode_name_cursor, memory::paginate};
use crate::name::CandidateName;

/// name -> nothing: the key is the whole document (`{"CandidateName": name}`).
const CANDIDATES: TableDefinition<&str, ()> = TableDefinition::new("candidates");
/// The file inside the data directory.
pub const FILE_NAME: &str = "candidates.redb";
/// The most writes one group commit takes; bounds the latency a single batch adds.
const MAX_BATCH: usize = 256;
/// Queue of writes waiting for the writer thread; callers wait (back-pressure) when it is full.
const QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("{path} is already open in another process (is another candidate-server running?)")]
    AlreadyOpen { path: PathBuf },
    #[error("cannot open embedded store {path}: {source}")]
    Open { path: PathBuf, source: redb::DatabaseError },
    #[error("cannot initialise embedded store {path}: {source}")]
    Init { path: PathBuf, source: redb::Error },
}

#[derive(Debug)]
enum Op {
    Put(String),
    Delete(String),
}

struct Job {
    op: Op,
    /// `Ok(true)` when the op changed something (a delete found its key).
    reply: oneshot::Sender<Result<bool>>,
}

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writes: mpsc::Sender<Job>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) `<data_dir>/candidates.redb` and starts the writer thread, which
    /// ends when the last handle to the store is dropped.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| OpenError::CreateDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|source| match source {
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

        let db = Arc::new(db);
        let (writes, queue) = mpsc::channel(QUEUE);
        let writer_db = Arc::clone(&db);
        std::thread::Builder::new()
            .name("embedded-writer".into())
            .spawn(move || writer(writer_db, queue))
            .map_err(|source| OpenError::CreateDir { path: data_dir.to_owned(), source })?;
        Ok(Self { db, writes, path: Arc::new(path) })
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
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::internal("embedded read task failed", e))?
            .map_err(|e| StoreError::internal("embedded read failed", e))
    }
}

/// The writer loop: take one job (blocking), then whatever else is queued, commit them together,
/// and answer each. A failed commit fails every job in the batch: none of them is acknowledged.
fn writer(db: Arc<Database>, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match apply(&db, &batch) {
            Ok(changed) => {
                for (job, changed) in batch.drain(..).zip(changed) {
                    let _ = job.reply.send(Ok(changed));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "embedded store commit failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Internal {
                        message: "embedded store commit failed".into(),
                        source: None,
                    }));
                }
            }
        }
    }
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
        let lookup = || -> Result<bool, redb::Error> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(CANDIDATES)?;
            Ok(table.get(name.as_str())?.is_some())
        };
        match lookup() {
            Ok(true) => Ok(name.into()),
            Ok(false) => Err(StoreError::NotFound),
            Err(e) => Err(StoreError::internal("embedded read failed", e)),
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

    async fn ping(&self) -> Result<()> {
        self.read(|db| {
            let tx = db.begin_read()?;
            tx.open_table(CANDIDATES)?;
            Ok(())
        })
        .await
    }
}
