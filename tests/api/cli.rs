//! The `sipas` binary as an operator runs it: demo, serve (logs, graceful shutdown),
//! units import, users add, and settings it refuses.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use sipas::auth;

use crate::helpers::{TestDb, fixture, forms_dir};

fn sipas(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipas"));
    cmd.arg("--database-url")
        .arg(&db.url)
        .env("SIPAS_FORMS_DIR", forms_dir())
        .env("SIPAS_LOG", "info")
        .env_remove("RUST_LOG")
        .env_remove("SIPAS_CONFIG");
    cmd
}

#[tokio::test]
async fn demo_then_serve_shows_a_survey_that_stores_submissions_and_logs_nothing_identifying() {
    let db = TestDb::new().await;
    let out = sipas(&db).args(["demo", "--responses", "300"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("73 units created, 300 responses created"), "{stdout}");
    assert!(stdout.contains("admin@demo.sipas.vn"), "{stdout}");
    // Running it again adds nothing.
    let out = sipas(&db).args(["demo", "--responses", "300"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 units created, 0 responses created"));

    let mut child =
        sipas(&db).args(["serve", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let port = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("server starts");
        log.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.rsplit(':').next().unwrap().trim().parse::<u16>().unwrap();
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/s/DN.HAICHAU?lang=en&secret=QUERY-SECRET")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Phường Hải Châu"));
    let body = json!({
        "submission_id": uuid::Uuid::new_v4(), "unit": "DN.HAICHAU", "form": "sipas-2017",
        "respondent_type": "citizen", "channel": "online",
        "answers": {"A1": 5, "B3": 2}, "comment": "COMMENT-SECRET-42"
    });
    let res = client.post(format!("{base}/api/v1/responses")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let res =
        client.post(format!("{base}/api/v1/responses")).json(&json!({"unit": "ANSWER-SECRET"})).send().await.unwrap();
    assert_eq!(res.status(), 400);

    // SIGTERM: graceful shutdown, clean exit.
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = wait_with_timeout(&mut child, Duration::from_secs(40));
    assert!(exit.is_some_and(|s| s.success()), "exit status {exit:?}");
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let all = format!("{}\n{stderr}", log.join("\n"));
    let requests: Vec<&String> = log.iter().filter(|l| l.contains("request")).collect();
    assert!(requests.len() >= 3, "access log lines: {all}");
    assert!(requests.iter().any(|l| l.contains("/s/{unit_code}")), "routes are logged as patterns: {all}");
    for secret in ["QUERY-SECRET", "COMMENT-SECRET", "ANSWER-SECRET", "DN.HAICHAU", "127.0.0.1:", "reqwest"] {
        for line in &requests {
            assert!(!line.contains(secret), "{secret} leaked into the access log: {line}");
        }
    }
    for secret in ["QUERY-SECRET", "COMMENT-SECRET", "ANSWER-SECRET"] {
        assert!(!all.contains(secret), "{secret} leaked into the logs:\n{all}");
    }
    assert!(all.contains("email is off: smtp_host is not configured"), "a clear line when mail is off:\n{all}");

    // The submission is in the database.
    let conn = sipas::store::connect(&db.url, 1).await.unwrap();
    let tree = sipas::store::units::tree(&conn).await.unwrap();
    let ids = tree.subtree(tree.by_code("DN").unwrap().id);
    assert_eq!(sipas::store::responses::count_in(&conn, &ids).await.unwrap(), 301);
}

fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    while started.elapsed() < timeout {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[tokio::test]
async fn units_import_reports_bad_lines_and_imports_good_files() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "code,parent,level,name_vi\nQNM,,province,Tỉnh\nQNM.X,QNM,planet,X\n").unwrap();
    let out = sipas(&db).args(["units", "import"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3: level"), "{stderr}");
    assert!(stderr.contains("nothing imported"), "{stderr}");

    let out = sipas(&db).args(["units", "import"]).arg(fixture("units.csv")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("9 created, 0 updated, 0 unchanged"));
    let out = sipas(&db).args(["units", "import"]).arg(fixture("units.csv")).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 created, 0 updated, 9 unchanged"));
}

#[tokio::test]
async fn users_add_reads_the_password_from_standard_input() {
    let db = TestDb::new().await;
    let out = sipas(&db).args(["units", "import"]).arg(fixture("units.csv")).output().unwrap();
    assert!(out.status.success());

    let add = |args: &[&str], password: &str| {
        let mut child = sipas(&db)
            .args(["users", "add"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out =
        add(&["--email", "Head@TK.gov.vn", "--role", "unit_manager", "--unit", "QNM.TK"], "a long enough secret\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = add(&["--email", "short@tk.gov.vn", "--role", "admin"], "short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 15 characters"));
    let out = add(&["--email", "nounit@tk.gov.vn", "--role", "unit_manager"], "a long enough secret\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --unit"));
    let out = add(&["--email", "head@tk.gov.vn", "--role", "admin"], "a long enough secret\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has an account"));

    let conn = sipas::store::connect(&db.url, 1).await.unwrap();
    let user = sipas::store::users::by_email(&conn, "head@tk.gov.vn").await.unwrap().expect("stored lower-cased");
    assert_eq!(user.role, "unit_manager");
    assert!(auth::verify_password("a long enough secret", Some(&user.password_hash)));
    assert_eq!(sipas::store::users::count(&conn).await.unwrap(), 1);
}

#[tokio::test]
async fn migrate_applies_the_schema_and_records_the_forms() {
    let db = TestDb::new().await;
    let out = sipas(&db).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 forms recorded"));
}

/// A k under the floor from the environment stops every command that loads the settings,
/// with the key, the variable, the value and the floor, before anything touches the database.
#[tokio::test]
async fn every_command_refuses_suppression_k_below_5_from_the_environment() {
    let db = TestDb::new().await;
    for args in [&["serve", "--port", "0"][..], &["migrate"], &["demo", "--responses", "10"], &["healthcheck"]] {
        let out = sipas(&db).args(args).env("SIPAS_SUPPRESSION_K", "0").output().unwrap();
        assert!(!out.status.success(), "{args:?} ran with k = 0");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("suppression_k (SIPAS_SUPPRESSION_K) is 0; it must be at least 5"),
            "{args:?}: {stderr}"
        );
    }
    // Nothing was migrated or seeded: the schema is not there.
    let conn = sipas::store::connect(&db.url, 1).await.unwrap();
    assert!(sipas::store::units::tree(&conn).await.is_err(), "a command ran its work with k = 0");

    let out = sipas(&db).arg("migrate").env("SIPAS_SUPPRESSION_K", "5").output().unwrap();
    assert!(out.status.success(), "k = 5 is the floor itself: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn units_restructure_dry_run_prints_every_change_and_a_bad_plan_names_its_lines() {
    let db = TestDb::new().await;
    let units = fixture("units.csv");
    let out = sipas(&db).args(["units", "import"]).arg(&units).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.csv");
    std::fs::write(
        &plan,
        "effective,operation,old,new,name_vi,parent,level\n2025-07-01,merge,QNM.TK.HH;QNM.TK.TT,QNM.HUONGTRA,Phường Hương Trà,QNM,ward\n",
    )
    .unwrap();
    let out = sipas(&db).args(["units", "restructure", "--dry-run"]).arg(&plan).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "line 2, 2025-07-01: create QNM.HUONGTRA \"Phường Hương Trà\" (ward) under QNM",
        "line 2, 2025-07-01: QNM.TK.HH merged into QNM.HUONGTRA",
        "line 2, 2025-07-01: end QNM.TK.TT; its responses count under QNM.HUONGTRA from now on",
        "would make 5 changes; no response changes its unit",
        "dry run: nothing was changed",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}");
    }
    // Applying it twice: the second run finds the units already ended, names the line, exits 1.
    assert!(sipas(&db).args(["units", "restructure"]).arg(&plan).output().unwrap().status.success());
    let out = sipas(&db).args(["units", "restructure"]).arg(&plan).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nothing changed") && stderr.contains("line 2: old: QNM.TK.HH has already ended"),
        "{stderr}"
    );
}
