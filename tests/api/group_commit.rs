//! Group commit: submissions that queue while a group is being written go into the next
//! transaction together; each is answered only after that commit; one bad submission fails
//! alone; a full queue answers 503 + Retry-After at once. The database's write lock is
//! held from another connection to make submissions queue.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait};
use serde_json::json;
use sipas::forms::submission::ValidSubmission;
use sipas::store;
use sipas::store::responses::Stored;

use crate::helpers::*;

/// Holds what every submission's transaction needs: SQLite's write lock (`BEGIN IMMEDIATE`),
/// on PostgreSQL a lock on the responses table that makes inserts wait.
async fn block_writes(app: &TestApp) -> DatabaseTransaction {
    let txn = store::begin_write(&app.db).await.expect("begin");
    if app.db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE responses IN EXCLUSIVE MODE").await.expect("lock");
    }
    txn
}

/// Holds the write lock and lets one stored submission take the writer, which then waits
/// on the lock: whatever is stored next queues into one group. Returns the lock and the
/// first submission's outcome.
async fn hold_the_writer(
    app: &TestApp,
    unit: i32,
) -> (DatabaseTransaction, tokio::task::JoinHandle<Result<Stored, sipas::error::ApiError>>) {
    let lock = block_writes(app).await;
    let writer = app.state.writer.clone();
    let first = tokio::spawn(async move { writer.store(stored_submission(unit)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    (lock, first)
}

fn spawn_submit(
    app: &TestApp,
    body: serde_json::Value,
) -> tokio::task::JoinHandle<(u16, Option<String>, serde_json::Value)> {
    let (client, url, secret) = (app.client.clone(), app.url("/api/v1/responses"), app.state.form_secret.clone());
    tokio::spawn(async move {
        let mut body = body;
        let minted = chrono::Utc::now().timestamp_millis() - 60_000;
        body["form_token"] = json!(sipas::reach::limits::form_token(&secret, minted));
        let res = client.post(url).json(&body).send().await.expect("send");
        let status = res.status().as_u16();
        let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from);
        (status, retry, res.json().await.unwrap_or(serde_json::Value::Null))
    })
}

/// Tallies as stored equal tallies recomputed from the raw answers.
async fn assert_tallies_exact(app: &TestApp) {
    app.state.writer.settled().await;
    let stored = store::tallies::snapshot(&app.db).await.expect("snapshot");
    store::tallies::rebuild(&app.db, &app.state.catalog).await.expect("rebuild");
    assert_eq!(stored, store::tallies::snapshot(&app.db).await.expect("snapshot"), "tallies drifted from the answers");
}

#[tokio::test]
async fn submissions_queued_behind_a_busy_database_commit_together_and_are_answered_after_the_commit() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let today = sipas::vietnam_today();
    let codes =
        sipas::reach::codes::issue(&app.db, unit_id(&app, "QNM.TK.AM").await, 1, today + chrono::TimeDelta::days(5))
            .await
            .expect("codes");

    let lock = block_writes(&app).await;
    // The first submission takes the writer, which then waits for the lock; the rest queue.
    let first = spawn_submit(&app, valid_submission("QNM.TK.AM"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut plain = Vec::new();
    for _ in 0..10 {
        plain.push(spawn_submit(&app, valid_submission("QNM.TK.HH")));
    }
    // A retry sent while the original still waits in the queue.
    let twin = valid_submission("QNM.TK.AM");
    let twins = [spawn_submit(&app, twin.clone()), spawn_submit(&app, twin.clone())];
    // One receipt code used by two different submissions in the same group.
    let with_code = |_: u8| {
        let mut b = valid_submission("QNM.TK.AM");
        b["code"] = json!(codes[0]);
        b
    };
    let coded = [spawn_submit(&app, with_code(1)), spawn_submit(&app, with_code(2))];
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!first.is_finished(), "answered before its transaction could commit");
    assert!(plain.iter().all(|h| !h.is_finished()), "a queued submission was answered before it was stored");
    assert_eq!(app.response_count().await, 0);
    lock.rollback().await.expect("release");

    assert_eq!(first.await.unwrap().0, 201);
    let mut ids = std::collections::HashSet::new();
    for h in plain {
        let (status, _, body) = h.await.unwrap();
        assert_eq!(status, 201, "{body}");
        assert!(ids.insert(body["id"].as_str().unwrap().to_string()), "two submissions answered with one id");
    }
    let [a, b] = twins;
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "a retry in the same group is a replay: {a:?} {b:?}");
    assert_eq!(a.2["id"], b.2["id"], "the replay names the stored response");
    let [c, d] = coded;
    let (c, d) = (c.await.unwrap(), d.await.unwrap());
    let mut statuses = [c.0, d.0];
    statuses.sort();
    assert_eq!(statuses, [201, 422], "one receipt code unlocks one response, in a group too: {c:?} {d:?}");
    let refused = if c.0 == 422 { &c.2 } else { &d.2 };
    assert!(refused["fields"]["code"].is_array(), "{refused}");
    // 1 + 10 + 1 (twins) + 1 (code): nothing more, nothing less.
    assert_eq!(app.response_count().await, 13);
    assert_eq!(app.answer_count().await, 13 * 22);
    assert_tallies_exact(&app).await;
}

#[tokio::test]
async fn one_submission_the_database_refuses_fails_alone_and_its_group_is_stored() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let unit = unit_id(&app, "QNM.TK.AM").await;
    let (lock, first) = hold_the_writer(&app, unit).await;
    let writer = app.state.writer.clone();
    let mut group = Vec::new();
    for i in 0..9 {
        // The fifth names a unit that does not exist: the foreign key refuses it.
        let s = stored_submission(if i == 4 { 987_654 } else { unit });
        let w = writer.clone();
        group.push(tokio::spawn(async move { w.store(s).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.rollback().await.expect("release");
    assert!(matches!(first.await.unwrap(), Ok(Stored::Created(_))));
    for (i, h) in group.into_iter().enumerate() {
        let outcome = h.await.unwrap();
        if i == 4 {
            assert!(outcome.is_err(), "the refused submission was acknowledged: {outcome:?}");
        } else {
            assert!(matches!(outcome, Ok(Stored::Created(_))), "submission {i}: {outcome:?}");
        }
    }
    assert_eq!(app.response_count().await, 9);
    assert_tallies_exact(&app).await;
    // The writer keeps serving.
    assert!(matches!(writer.store(stored_submission(unit)).await, Ok(Stored::Created(_))));
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_at_once_and_stores_only_what_it_acknowledged() {
    // One writer (PostgreSQL's second would take one more off the queue).
    let app = spawn_app_with(|s| {
        s.ingest_queue = 3;
        s.ingest_writers = 1;
    })
    .await;
    app.seed_reference_units().await;
    let lock = block_writes(&app).await;
    let first = spawn_submit(&app, valid_submission("QNM.TK.AM"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rest: Vec<_> = (0..10).map(|_| spawn_submit(&app, valid_submission("QNM.TK.AM"))).collect();
    // Seven find the queue full and are told so while the database is still busy.
    let t = std::time::Instant::now();
    while rest.iter().filter(|h| h.is_finished()).count() < 7 && t.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rest.iter().filter(|h| h.is_finished()).count(), 7, "queued beyond its capacity or refused too many");
    lock.rollback().await.expect("release");
    assert_eq!(first.await.unwrap().0, 201);
    let (mut created, mut refused) = (0, 0);
    for h in rest {
        let (status, retry, body) = h.await.unwrap();
        match status {
            201 => created += 1,
            503 => {
                refused += 1;
                assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)), "503 without Retry-After");
                assert_eq!(body["error"], "service_unavailable", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, refused), (3, 7));
    assert_eq!(app.response_count().await, 4, "stored = acknowledged");
    // The queue drained: the next submission is taken at once.
    assert_eq!(app.submit(&valid_submission("QNM.TK.AM")).await.status(), 201);
}

async fn unfolded_count(app: &TestApp) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    sipas::entities::unfolded::Entity::find().count(&app.db).await.expect("count")
}

#[tokio::test]
async fn rows_wait_to_be_folded_only_briefly_and_a_figure_read_after_a_201_counts_it() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let token = app.login_as(sipas::auth::Role::Admin, None).await;
    let year = chrono::Datelike::year(&sipas::vietnam_today());
    let query = format!("/api/v1/indices?unit=QNM.TK.AM&period={year}");
    for round in 1..=3u64 {
        let handles: Vec<_> = (0..7).map(|_| spawn_submit(&app, valid_submission("QNM.TK.AM"))).collect();
        for h in handles {
            assert_eq!(h.await.unwrap().0, 201);
        }
        // Read at once: the request waits for the fold of what this instance acknowledged.
        let res = app.get_as(&query, &token).await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["n"], 7 * round, "a figure read after the 201s missed some: {body}");
    }
    // Nobody reads: the folder still empties the queue within its delay.
    for _ in 0..20 {
        assert_eq!(app.submit(&valid_submission("QNM.TK.HH")).await.status(), 201);
    }
    let t = std::time::Instant::now();
    while unfolded_count(&app).await > 0 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(unfolded_count(&app).await, 0, "responses lingered unfolded");
    assert_tallies_exact(&app).await;
}

#[tokio::test]
async fn responses_a_stopped_instance_did_not_fold_are_counted_once_by_the_next() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let unit = unit_id(&app, "QNM.TK.AM").await;
    // Stored as a writer stores them, with nobody left to fold them (an instance killed
    // between its commit and its fold).
    let subs: Vec<ValidSubmission> = (0..700).map(|_| stored_submission(unit)).collect();
    let refs: Vec<&ValidSubmission> = subs.iter().collect();
    let outcomes = store::responses::insert_group(&app.db, &app.state.catalog, &refs, true).await.expect("group");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Stored::Created(_)))));
    assert_eq!(unfolded_count(&app).await, 700);
    // Two instances fold at once: each response is added exactly once.
    let (db, catalog) = (app.db.clone(), app.state.catalog.clone());
    let other = tokio::spawn(async move { store::fold::drain(&db, &catalog).await.expect("fold") });
    let here = store::fold::drain(&app.db, &app.state.catalog).await.expect("fold");
    let there = other.await.unwrap();
    // The app's own folder may have swept some of them too.
    assert!(here + there <= 700, "{here} + {there}");
    assert_eq!(unfolded_count(&app).await, 0);
    let stored = store::tallies::snapshot(&app.db).await.expect("snapshot");
    let total: u64 = stored
        .iter()
        .filter(|(k, _)| {
            k.grain == sipas::index::period::Grain::Year
                && k.respondent_type == "*"
                && k.channel == "*"
                && k.service == "*"
        })
        .map(|(_, t)| t.responses())
        .sum();
    assert_eq!(total, 700, "a response was added twice or not at all");
    assert_tallies_exact(&app).await;
}

#[tokio::test]
async fn rows_another_instance_left_behind_are_folded_by_this_one_within_two_sweeps() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let unit = unit_id(&app, "QNM.TK.AM").await;
    // Committed by "another instance" that stopped before its fold.
    let subs: Vec<ValidSubmission> = (0..5).map(|_| stored_submission(unit)).collect();
    let refs: Vec<&ValidSubmission> = subs.iter().collect();
    store::responses::insert_group(&app.db, &app.state.catalog, &refs, true).await.expect("group");
    let t = std::time::Instant::now();
    while unfolded_count(&app).await > 0 && t.elapsed() < Duration::from_secs(16) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(unfolded_count(&app).await, 0, "left-behind responses were never folded");
    assert_tallies_exact(&app).await;
}

#[tokio::test]
async fn a_group_with_new_submissions_a_replay_a_mismatch_and_a_flagged_one_answers_each_and_stores_each_once() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let unit = unit_id(&app, "QNM.TK.AM").await;
    let earlier = stored_submission(unit);
    let Ok(Stored::Created(earlier_id)) = app.state.writer.store(earlier.clone()).await else { panic!("first store") };
    let (lock, first) = hold_the_writer(&app, unit).await;
    let writer = app.state.writer.clone();
    let mut mismatch = earlier.clone();
    mismatch.body_hash = "y".repeat(64);
    let mut flagged = stored_submission(unit);
    flagged.flagged = true;
    let mut comment = stored_submission(unit);
    comment.comment = Some("Cán bộ nhiệt tình".into());
    comment.service = Some("land".into());
    let group = vec![stored_submission(unit), earlier.clone(), mismatch, flagged, comment, stored_submission(unit)];
    let handles: Vec<_> = group
        .into_iter()
        .map(|s| {
            let w = writer.clone();
            tokio::spawn(async move { w.store(s).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.rollback().await.expect("release");
    assert!(matches!(first.await.unwrap(), Ok(Stored::Created(_))));
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await.unwrap());
    }
    assert!(matches!(outcomes[0], Ok(Stored::Created(_))), "{outcomes:?}");
    assert!(matches!(outcomes[1], Ok(Stored::Replayed(id)) if id == earlier_id), "{outcomes:?}");
    assert!(matches!(outcomes[2], Err(sipas::error::ApiError::IdempotencyMismatch)), "{outcomes:?}");
    for o in &outcomes[3..] {
        assert!(matches!(o, Ok(Stored::Created(_))), "{outcomes:?}");
    }
    // The earlier one, the first, and four new ones: each with its six answers.
    assert_eq!(app.response_count().await, 6);
    assert_eq!(app.answer_count().await, 36);
    let Ok(Stored::Created(commented)) = outcomes[4] else { unreachable!() };
    let row = sipas::entities::response::Entity::find_by_id(commented).one(&app.db).await.unwrap().expect("row");
    assert_eq!((row.comment.as_deref(), row.service.as_deref()), (Some("Cán bộ nhiệt tình"), Some("land")));
    let Ok(Stored::Created(flagged_id)) = outcomes[3] else { unreachable!() };
    let row = sipas::entities::response::Entity::find_by_id(flagged_id).one(&app.db).await.unwrap().expect("row");
    assert!(row.flagged);
    // The flagged one stays out of the tallies: they equal a rebuild, which leaves it out.
    assert_tallies_exact(&app).await;
    assert_eq!(unfolded_count(&app).await, 0);
}

/// Where autovacuum does not run (off on this machine's server), the service refreshes the
/// statistics itself: without it, ingest on a fresh database fell fivefold within a minute.
#[tokio::test]
async fn statistics_are_refreshed_where_autovacuum_does_not_run() {
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        assert!(store::upkeep::once(&app.db).await.expect("look").is_empty(), "SQLite has nothing of the kind");
        return;
    }
    app.seed_reference_units().await;
    // Whatever the server's own setting, autovacuum leaves these two alone.
    for table in ["responses", "answers"] {
        let sql = format!("ALTER TABLE {table} SET (autovacuum_enabled = false)");
        app.db.execute_unprepared(&sql).await.expect("alter");
    }
    let unit = unit_id(&app, "QNM.TK.AM").await;
    let subs: Vec<ValidSubmission> = (0..300).map(|_| stored_submission(unit)).collect();
    let refs: Vec<&ValidSubmission> = subs.iter().collect();
    store::responses::insert_group(&app.db, &app.state.catalog, &refs, true).await.expect("group");
    let reltuples = |table: &'static str| {
        let db = app.db.clone();
        async move {
            let sql = format!("SELECT reltuples::float8 AS n FROM pg_class WHERE oid = '{table}'::regclass");
            let row =
                db.query_one_raw(sea_orm::Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
            row.try_get::<f64>("", "n").unwrap()
        }
    };
    // The server's counters reach its statistics views within a second or so; the service
    // looks every two seconds (this test looks itself, so as not to wait on that timing).
    let t = std::time::Instant::now();
    while (reltuples("responses").await < 300.0 || reltuples("answers").await < 1800.0)
        && t.elapsed() < Duration::from_secs(20)
    {
        store::upkeep::once(&app.db).await.expect("look");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(reltuples("responses").await, 300.0, "responses never analysed");
    assert_eq!(reltuples("answers").await, 1800.0, "answers never analysed");
    // Analysed: nothing is due until they change again.
    let again = store::upkeep::once(&app.db).await.expect("look");
    assert!(!again.iter().any(|t| t == "responses" || t == "answers"), "{again:?}");
}
