//! Three instances of the service on one database, as behind a load balancer: the one under
//! test in this process and two `sipas serve` processes. Whatever instance a request reaches,
//! a retried submission is stored once, a receipt code unlocks one response, the tallies equal
//! a recount, and the limits that guard secrets hold for the three together.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::store;

use crate::helpers::*;

/// A `sipas serve` process on the test's database; killed when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_instance(app: &TestApp, limits: &[(&str, &str)]) -> Instance {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipas"));
    cmd.arg("serve")
        .env_remove("SIPAS_CONFIG")
        .env("SIPAS_DATABASE_URL", app.state.settings.database_url.expose())
        .env("SIPAS_PORT", port.to_string())
        .env("SIPAS_FORMS_DIR", forms_dir())
        .env("SIPAS_LOG", "warn")
        .env("SIPAS_COOKIE_SECURE", "false")
        .env("SIPAS_MIN_FILL_SECONDS", "0")
        .env("SIPAS_MAX_DB_CONNECTIONS", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in limits {
        cmd.env(k, v);
    }
    let instance = Instance { child: cmd.spawn().expect("sipas serve"), base: format!("http://127.0.0.1:{port}") };
    for _ in 0..200 {
        if let Ok(res) = app.client.get(format!("{}/readyz", instance.base)).send().await
            && res.status() == 200
        {
            return instance;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the instance on port {port} did not become ready");
}

/// Posts `body` as a survey page would (with a form token a minute old, unless it has one).
async fn post(app: &TestApp, base: &str, path: &str, body: &Value) -> (u16, Value) {
    let mut body = body.clone();
    if path == "/api/v1/responses" && body.get("form_token").is_none() {
        let minted = chrono::Utc::now().timestamp_millis() - 60_000;
        body["form_token"] = json!(sipas::reach::limits::form_token(&app.state.form_secret, minted));
    }
    let res = app.client.post(format!("{base}{path}")).json(&body).send().await.expect("send");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn unfolded(app: &TestApp) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    sipas::entities::unfolded::Entity::find().count(&app.db).await.expect("count")
}

const LIFTED: [(&str, &str); 3] = [
    ("SIPAS_SUBMIT_PER_MINUTE", "1000000"),
    ("SIPAS_CODE_ATTEMPTS_PER_HOUR", "1000000"),
    ("SIPAS_SIGN_INS_PER_MINUTE", "1000000"),
];

#[tokio::test]
async fn three_instances_store_each_submission_once_use_each_code_once_and_keep_tallies_exact() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let unit = store::units::by_code(&app.db, "QNM.TK.AM").await.unwrap().unwrap().id;
    let codes = sipas::reach::codes::issue(&app.db, unit, 20, sipas::vietnam_today() + chrono::TimeDelta::days(5))
        .await
        .expect("codes");
    let (b, c) = (start_instance(&app, &LIFTED).await, start_instance(&app, &LIFTED).await);
    let bases = [app.address.clone(), b.base.clone(), c.base.clone()];
    let units = ["QNM.TK.AM", "QNM.TK.HH", "QNM.TK.TT", "QNM.HA.MA", "QNM.SNV"];

    // Each submission and its retry reach two different instances at the same moment.
    let minted = chrono::Utc::now().timestamp_millis() - 60_000;
    let token = sipas::reach::limits::form_token(&app.state.form_secret, minted);
    let bodies: Vec<Value> = (0..150)
        .map(|i| {
            let mut body = valid_submission(units[i % units.len()]);
            body["form_token"] = json!(token);
            body
        })
        .collect();
    let app_ref = &app;
    let pairs = bodies.iter().enumerate().map(|(i, body)| {
        let (first, second) = (&bases[i % 3], &bases[(i + 1) % 3]);
        let app = app_ref;
        async move {
            let (a, b) =
                tokio::join!(post(app, first, "/api/v1/responses", body), post(app, second, "/api/v1/responses", body));
            (a, b)
        }
    });
    for ((s1, b1), (s2, b2)) in join_all(pairs).await {
        let mut statuses = [s1, s2];
        statuses.sort();
        assert_eq!(statuses, [200, 201], "one stored, one replay: {b1} {b2}");
        assert_eq!(b1["id"], b2["id"], "the replay names the stored response");
    }

    // Each receipt code sent with three different submissions, one to each instance.
    let tries = codes.iter().map(|code| {
        let bases = &bases;
        let app = &app;
        async move {
            let sends = bases.iter().map(|base| {
                let mut body = valid_submission("QNM.TK.AM");
                body["code"] = json!(code);
                async move { post(app, base, "/api/v1/responses", &body).await.0 }
            });
            let mut statuses = join_all(sends).await;
            statuses.sort();
            statuses
        }
    });
    for statuses in join_all(tries).await {
        assert_eq!(statuses, [201, 422, 422], "a receipt code unlocked more or less than one response");
    }
    assert_eq!(app.response_count().await, 150 + 20);
    assert_eq!(app.answer_count().await, 170 * 22);

    // Every instance folds what it stored; then the tallies equal a recount of the answers.
    let t = std::time::Instant::now();
    while unfolded(&app).await > 0 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(unfolded(&app).await, 0, "an instance left responses unfolded");
    let stored = store::tallies::snapshot(&app.db).await.unwrap();
    assert!(!stored.is_empty(), "nothing was tallied");
    store::tallies::rebuild(&app.db, &app.state.catalog).await.unwrap();
    assert_eq!(stored, store::tallies::snapshot(&app.db).await.unwrap(), "tallies drifted from the answers");

    // A figure read on any instance counts everything (all three folded).
    let token = app.login_as(Role::Admin, None).await;
    let year = chrono::Datelike::year(&sipas::vietnam_today());
    let mut seen = Vec::new();
    for base in &bases {
        let res = app
            .client
            .get(format!("{base}/api/v1/indices?unit=QNM&period={year}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        seen.push(res.json::<Value>().await.unwrap()["n"].clone());
    }
    assert_eq!(seen, [json!(170), json!(170), json!(170)]);
}

#[tokio::test]
async fn limits_that_guard_codes_and_passwords_hold_across_instances() {
    let app = spawn_app_with(|s| s.code_attempts_per_hour = 6).await;
    app.seed_reference_units().await;
    let limits = [
        ("SIPAS_SUBMIT_PER_MINUTE", "1000000"),
        ("SIPAS_CODE_ATTEMPTS_PER_HOUR", "6"),
        ("SIPAS_SIGN_INS_PER_MINUTE", "1000000"),
    ];
    let (b, c) = (start_instance(&app, &limits).await, start_instance(&app, &limits).await);
    let bases = [app.address.clone(), b.base.clone(), c.base.clone()];

    // Nine guessed receipt codes from one address, spread over the three instances: the
    // address has six an hour in all, not six per instance.
    let mut statuses = Vec::new();
    for i in 0..9 {
        let mut body = valid_submission("QNM.TK.AM");
        body["code"] = json!(format!("GUESS{i:04}"));
        statuses.push(post(&app, &bases[i % 3], "/api/v1/responses", &body).await.0);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 6, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");

    // Fifteen password guesses for one email over the three instances: ten a minute for the
    // email (an account or not, alike), whichever instance counts them.
    let email = format!("guessed-{}@example.gov.vn", uuid::Uuid::new_v4().simple());
    let mut statuses = Vec::new();
    for i in 0..15 {
        let body = json!({"email": email, "password": format!("wrong guess number {i}")});
        statuses.push(post(&app, &bases[i % 3], "/api/v1/auth/login", &body).await.0);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
    assert_eq!(app.response_count().await, 0);
}

/// An instance stopped with SIGTERM folds what it acknowledged before it exits: the figures
/// need not wait for another instance to find the rows it left (two looks 5 s apart).
#[tokio::test]
async fn an_instance_stopped_with_sigterm_folds_what_it_acknowledged_before_it_exits() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let mut other = start_instance(&app, &LIFTED).await;
    for _ in 0..20 {
        assert_eq!(post(&app, &other.base, "/api/v1/responses", &valid_submission("QNM.TK.AM")).await.0, 201);
    }
    let term = Command::new("kill").args(["-TERM", &other.child.id().to_string()]).status().expect("kill");
    assert!(term.success());
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(status) = other.child.try_wait().expect("wait") {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "the instance did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    assert_eq!(app.response_count().await, 20);
    assert_eq!(unfolded(&app).await, 0, "the stopped instance left responses unfolded");
    let stored = store::tallies::snapshot(&app.db).await.expect("snapshot");
    store::tallies::rebuild(&app.db, &app.state.catalog).await.expect("rebuild");
    assert_eq!(stored, store::tallies::snapshot(&app.db).await.expect("snapshot"), "tallies drifted");
}
