//! Group commit: live submissions queue to writer tasks that store many in one transaction
//! and answer each only after that transaction committed, so a 201 still means durable
//! while the database syncs its log once per group instead of once per submission.
//!
//! A group that fails as a whole (a twin stored by another instance, a deadlock between two
//! writers, a row the database refuses) is rolled back and its submissions are stored one by
//! one, so one bad submission never fails the others. A full queue is answered at once with
//! 503 + Retry-After instead of letting requests pile up. On SQLite there is one writer:
//! submissions never compete for the file's write lock.
//!
//! On PostgreSQL a folder task adds the stored responses to the tallies a little later, many
//! at once (see `store::fold`); on SQLite a group's tallies are written in its own
//! transaction, and the folder only picks up rows left by a fold that never ran. A reader in this instance that needs figures calls `settled` first and so
//! sees every submission this instance acknowledged before; another instance's submissions
//! show once its folder ran (within `FOLD_DELAY`, or at once when its readers ask).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::{Mutex, Notify, mpsc, oneshot, watch};

use std::collections::BTreeMap;

use uuid::Uuid;

use super::responses::{self, Stored};
use super::tallies::CellKey;
use crate::error::ApiError;
use crate::forms::submission::ValidSubmission;
use crate::index::catalog::Catalog;
use crate::index::tally::Tally;

/// Submissions taken into one transaction at most: enough to spread a log sync over many,
/// few enough that a group's transaction stays short.
const MAX_GROUP: usize = 128;

type Outcome = Result<Stored, ApiError>;

struct Job {
    submission: ValidSubmission,
    reply: oneshot::Sender<Outcome>,
}

/// How long the folder lets acknowledged submissions gather before it adds them, unless a
/// reader asks: long enough that a busy unit's cells are written once for many submissions
/// (at 2,000 submissions/s over 300 units, a fold of 250 ms wrote most cells for one or two).
const FOLD_DELAY: Duration = Duration::from_millis(1000);

/// How often the folder looks for rows left by a crash or by another instance.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How long a reader waits for the folder before it reads what is there.
const SETTLE_WAIT: Duration = Duration::from_millis(1500);

/// Responses stored but not folded, with their counts as the writers computed them.
#[derive(Default)]
struct Batch {
    ids: Vec<Uuid>,
    deltas: BTreeMap<CellKey, Tally>,
    /// Too many to hold (the database was away a while): the next fold reads them back.
    overflow: bool,
}

/// Responses held in one batch at most; past that the folder reads them back in pieces.
const BATCH_MAX: usize = 4096;

/// What the writers and the folder share.
struct Fold {
    batch: std::sync::Mutex<Batch>,
    /// Groups committed with responses still to fold.
    committed: AtomicU64,
    /// The highest `committed` value whose groups are all folded.
    folded: watch::Sender<u64>,
    /// A reader is waiting.
    urgent: Notify,
    /// On SQLite, whose turn it is to write: the writer and the folder take turns instead
    /// of meeting in the busy handler.
    turn: Option<Mutex<()>>,
}

/// The queue in front of the writers; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    fold: Arc<Fold>,
}

impl Writer {
    /// Starts the writer tasks on `runtime`. `writers` 0 means one on SQLite (a single
    /// writer) and two on PostgreSQL (one group commits while the next is being built).
    pub fn start(
        db: &DatabaseConnection,
        catalog: &Catalog,
        writers: usize,
        capacity: usize,
        runtime: &tokio::runtime::Handle,
    ) -> Writer {
        let writers = match (writers, db.get_database_backend()) {
            (0, DbBackend::Sqlite) => 1,
            (0, _) => 2,
            (n, _) => n,
        };
        let (queue, jobs) = mpsc::channel(capacity.max(1));
        let jobs = Arc::new(Mutex::new(jobs));
        let sqlite = db.get_database_backend() == DbBackend::Sqlite;
        let fold = Arc::new(Fold {
            batch: std::sync::Mutex::default(),
            committed: AtomicU64::new(0),
            folded: watch::Sender::new(0),
            urgent: Notify::new(),
            turn: sqlite.then(|| Mutex::new(())),
        });
        for _ in 0..writers {
            runtime.spawn(run(db.clone(), catalog.clone(), jobs.clone(), fold.clone()));
        }
        runtime.spawn(folder(db.clone(), catalog.clone(), fold.clone()));
        Writer { queue, fold }
    }

    /// Waits until every submission this instance acknowledged so far is in the tallies
    /// (or `SETTLE_WAIT` passed: the database is struggling, and the reader reads anyway).
    pub async fn settled(&self) {
        let target = self.fold.committed.load(Ordering::Acquire);
        let mut folded = self.fold.folded.subscribe();
        if *folded.borrow() >= target {
            return;
        }
        self.fold.urgent.notify_one();
        let _ = tokio::time::timeout(SETTLE_WAIT, folded.wait_for(|f| *f >= target)).await;
    }

    /// Stores a validated submission; returns once it is committed (or refused).
    pub async fn store(&self, submission: ValidSubmission) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { submission, reply }).map_err(|_| ApiError::Unavailable)?;
        // A writer that went away without answering: the submission may or may not be
        // stored, and a retry with the same submission id is safe either way.
        answer.await.unwrap_or(Err(ApiError::Unavailable))
    }
}

impl Fold {
    /// Keeps the counts of a committed group's new responses for the folder.
    fn hold(&self, catalog: &Catalog, subs: &[&ValidSubmission], outcomes: &[Outcome]) {
        let mut ids = Vec::new();
        let mut fresh = Vec::new();
        for (s, o) in subs.iter().zip(outcomes) {
            if let Ok(Stored::Created(id)) = o
                && !s.flagged
            {
                ids.push(*id);
                fresh.push(*s);
            }
        }
        let counted = responses::deltas(catalog, fresh);
        let mut batch = self.batch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match counted {
            Ok(deltas) if !batch.overflow && batch.ids.len() + ids.len() <= BATCH_MAX => {
                batch.ids.extend(ids);
                for (key, t) in deltas {
                    batch.deltas.entry(key).or_insert_with(|| Tally { data: vec![] }).add(&t);
                }
            }
            _ => batch.overflow = true,
        }
    }

    fn take(&self) -> Batch {
        std::mem::take(&mut *self.batch.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.turn {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }
}

async fn run(db: DatabaseConnection, catalog: Catalog, jobs: Arc<Mutex<mpsc::Receiver<Job>>>, fold: Arc<Fold>) {
    loop {
        let mut group = Vec::new();
        {
            let mut jobs = jobs.lock().await;
            match jobs.recv().await {
                Some(job) => group.push(job),
                None => return,
            }
            // Whatever queued while the last group committed joins this one: no waiting.
            while group.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
        }
        let submissions: Vec<&ValidSubmission> = group.iter().map(|j| &j.submission).collect();
        let turn = fold.turn().await;
        // On SQLite a group's cells are written in its own transaction: one writer, cells
        // updated in place, so a fold would cost as much and make the next group wait behind
        // it. On PostgreSQL every write of a cell leaves a dead row version and locks it
        // against the other writer: folded later, once for many submissions.
        let fold_later = fold.turn.is_none();
        let outcomes = match responses::insert_group(&db, &catalog, &submissions, fold_later).await {
            Ok(outcomes) => {
                if fold_later {
                    fold.hold(&catalog, &submissions, &outcomes);
                }
                outcomes
            }
            // The database is down or locked: one by one would only wait as long again for
            // each. Everyone is told to retry (503), which the submission id makes safe.
            Err(e) if crate::error::connection_lost(&e) => group.iter().map(|_| Err(ApiError::Unavailable)).collect(),
            Err(e) => {
                if group.len() > 1 {
                    tracing::warn!(error = %e, submissions = group.len(), "group commit failed; storing one by one");
                }
                let mut outcomes = Vec::with_capacity(group.len());
                for s in &submissions {
                    outcomes.push(responses::insert(&db, &catalog, s).await);
                }
                outcomes
            }
        };
        drop(turn);
        if fold_later && outcomes.iter().any(|o| matches!(o, Ok(Stored::Created(_)))) {
            fold.committed.fetch_add(1, Ordering::AcqRel);
        }
        for (job, outcome) in group.into_iter().zip(outcomes) {
            // The client may have gone; what was stored stays stored (a retry replays it).
            let _ = job.reply.send(outcome);
        }
    }
}

/// Adds what the writers stored to the tallies: every `FOLD_DELAY`, or at once when a
/// reader waits. Every `SWEEP_EVERY` it also looks for rows nobody will fold (an instance
/// that stopped between its commit and its fold): rows still there at the next look.
async fn folder(db: DatabaseConnection, catalog: Catalog, fold: Arc<Fold>) {
    let mut last_sweep = Instant::now();
    let mut seen: Vec<Uuid> = Vec::new();
    let mut read_back = false;
    loop {
        tokio::select! {
            _ = fold.urgent.notified() => {}
            _ = tokio::time::sleep(FOLD_DELAY) => {}
        }
        let target = fold.committed.load(Ordering::Acquire);
        let mut batch = fold.take();
        read_back |= batch.overflow;
        if !batch.ids.is_empty() && !read_back {
            let turn = fold.turn().await;
            let done = super::fold::fold_known(&db, &mut batch.ids, &batch.deltas).await;
            drop(turn);
            match done {
                Ok(true) => {}
                // Another instance folded some of them: read back whatever is left.
                Ok(false) => read_back = true,
                Err(e) => {
                    tracing::warn!(error = %e, "folding into the tallies failed; retrying shortly");
                    read_back = true;
                    continue;
                }
            }
        }
        if !read_back && last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            match super::fold::sample(&db, 64).await {
                Ok(now) => {
                    read_back = now.iter().any(|id| seen.contains(id));
                    seen = now;
                }
                Err(e) => tracing::warn!(error = %e, "looking for unfolded responses failed"),
            }
        }
        if read_back {
            let turn = fold.turn().await;
            let drained = super::fold::fold_some(&db, &catalog).await;
            drop(turn);
            match drained {
                // More to read back: the next round continues at once.
                Ok(n) if n >= super::fold::FOLD_MAX => {
                    fold.urgent.notify_one();
                    continue;
                }
                Ok(_) => read_back = false,
                Err(e) => {
                    tracing::warn!(error = %e, "folding into the tallies failed; retrying shortly");
                    continue;
                }
            }
        }
        fold.folded.send_if_modified(|f| {
            let raised = target > *f;
            *f = (*f).max(target);
            raised
        });
    }
}
