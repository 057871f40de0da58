//! Group commit: live submissions queue to writer tasks that store many in one transaction
//! and answer each only after that transaction committed, so a 201 still means durable
//! while the database syncs its log once per group instead of once per submission.
//!
//! A group that fails as a whole (a twin stored by another instance, a deadlock between two
//! writers, a row the database refuses) is rolled back and its submissions are stored one by
//! one, so one bad submission never fails the others. A full queue is answered at once with
//! 503 + Retry-After instead of letting requests pile up. On SQLite there is one writer:
//! submissions never compete for the file's write lock.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::responses::{self, Stored};
use crate::error::ApiError;
use crate::forms::submission::ValidSubmission;
use crate::index::catalog::Catalog;

/// Submissions taken into one transaction at most: enough to spread a log sync over many,
/// few enough that a group's transaction stays short.
const MAX_GROUP: usize = 128;

type Outcome = Result<Stored, ApiError>;

struct Job {
    submission: ValidSubmission,
    reply: oneshot::Sender<Outcome>,
}

/// The queue in front of the writers; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
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
        for _ in 0..writers {
            runtime.spawn(run(db.clone(), catalog.clone(), jobs.clone()));
        }
        Writer { queue }
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

async fn run(db: DatabaseConnection, catalog: Catalog, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
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
        let outcomes = match responses::insert_group(&db, &catalog, &submissions).await {
            Ok(outcomes) => outcomes,
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
        for (job, outcome) in group.into_iter().zip(outcomes) {
            // The client may have gone; what was stored stays stored (a retry replays it).
            let _ = job.reply.send(outcome);
        }
    }
}
