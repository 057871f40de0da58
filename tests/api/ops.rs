//! Operations: health, readiness and `sipas healthcheck`, the OpenAPI document (valid, checked
//! by openapi-spec-validator), error shapes, headers, PostgreSQL over TLS, the Docker files,
//! the README against the code (configuration table, commands run on the demo), and settings
//! the service refuses to run with.

use serde_json::Value;

use sipas::config::Secret;

use crate::helpers::{error_body, python, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn readiness_is_503_with_retry_after_when_the_database_is_unreachable() {
    let app = spawn_app().await;
    app.db.close_by_ref().await.unwrap();
    // The probe has its own connection (it never queues behind the shared pool): close it too.
    app.state.probe.close_by_ref().await.unwrap();
    let res = app.get("/readyz").await;
    assert_eq!(res.headers()["retry-after"], "5");
    error_body(res, 503, "service_unavailable").await;
    assert_eq!(app.get("/healthz").await.status(), 200, "alive all the same");
}

#[tokio::test]
async fn openapi_document_is_3_1_and_describes_every_endpoint() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let expected = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/api/openapi.json"),
        ("get", "/api/v1/forms"),
        ("get", "/api/v1/forms/{form_id}"),
        ("get", "/api/v1/units/{unit_code}"),
        ("post", "/api/v1/responses"),
        ("get", "/s/{unit_code}"),
        ("post", "/s/{unit_code}"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/me"),
        ("get", "/api/v1/admin/units"),
        ("post", "/api/v1/admin/units"),
        ("get", "/api/v1/admin/units/{unit_code}"),
        ("patch", "/api/v1/admin/units/{unit_code}"),
        ("get", "/api/v1/indices"),
        ("get", "/api/v1/rankings"),
        ("get", "/api/v1/trends"),
        ("get", "/api/v1/admin/volumes"),
        ("put", "/api/v1/admin/volumes"),
        ("post", "/api/v1/auth/password-reset"),
        ("post", "/api/v1/auth/password-reset/confirm"),
        ("get", "/api/v1/plans"),
        ("post", "/api/v1/plans"),
        ("get", "/api/v1/plans/{id}"),
        ("patch", "/api/v1/plans/{id}"),
        ("post", "/api/v1/plans/{id}/comments"),
        ("get", "/api/v1/exports/indices.{format}"),
        ("get", "/api/v1/exports/microdata.{format}"),
        ("post", "/api/v1/exports/microdata.{format}/jobs"),
        ("get", "/api/v1/exports/jobs"),
        ("get", "/api/v1/exports/jobs/{id}"),
        ("delete", "/api/v1/exports/jobs/{id}"),
        ("get", "/api/v1/exports/jobs/{id}/file"),
        ("get", "/api/v1/admin/users"),
        ("post", "/api/v1/admin/users"),
        ("patch", "/api/v1/admin/users/{id}"),
        ("get", "/api/v1/admin/audit"),
        ("get", "/api/v1/admin/audit.csv"),
        ("get", "/api/v1/units/{unit_code}/qr.svg"),
        ("get", "/api/v1/units/{unit_code}/qr.png"),
        ("post", "/api/v1/units/{unit_code}/codes"),
        ("post", "/api/v1/units/{unit_code}/invitations"),
        ("post", "/api/v1/admin/units/{unit_code}/keys"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    for (method, path) in expected {
        assert!(paths.get(path).is_some_and(|p| p.get(method).is_some()), "{method} {path} undocumented");
        // And the route really exists: anything but the catch-all 404 body.
        let res = app
            .client
            .request(
                method.to_uppercase().parse().unwrap(),
                app.url(
                    &path
                        .replace("{form_id}", "sipas-2017")
                        .replace("{unit_code}", "X")
                        .replace("{format}", "csv")
                        .replace("{id}", "1"),
                ),
            )
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        assert!(!body.contains("no such endpoint") && status != 405, "{method} {path} is not routed ({status})");
    }
    assert_eq!(documented, expected.len(), "every documented operation is in this list");
    // The answers the shared machinery gives are declared wherever they can occur.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let declared = |status: &str| op["responses"].get(status).is_some();
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let body = op.get("requestBody").is_some();
            if body {
                for status in ["400", "413"] {
                    assert!(declared(status), "{method} {path} does not declare {status}");
                }
            }
            if op.get("security").is_some_and(|s| s.as_array().is_some_and(|s| !s.is_empty())) {
                assert!(declared("401"), "{method} {path} does not declare 401");
            }
            if params.iter().any(|p| p["in"] == "path") {
                assert!(declared("404"), "{method} {path} does not declare 404");
            }
            if path != "/healthz" && path != "/api/openapi.json" {
                assert!(declared("503"), "{method} {path} does not declare 503");
            }
        }
    }
    let create = &paths["/api/v1/admin/users"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let user = &doc["components"]["schemas"][create["$ref"].as_str().unwrap().rsplit('/').next().unwrap()];
    assert_eq!(user["properties"]["password"]["minLength"], 15, "the password policy is in the schema");
    assert_eq!(user["properties"]["email"]["format"], "email");
    let submit = &paths["/api/v1/responses"]["post"]["responses"];
    for status in ["201", "200", "400", "413", "422"] {
        assert!(submit.get(status).is_some(), "POST /api/v1/responses documents {status}");
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_the_common_json_error() {
    let app = spawn_app().await;
    error_body(app.get("/api/v1/nothing-here").await, 404, "not_found").await;
    let res = app.client.delete(app.url("/api/v1/responses")).send().await.unwrap();
    error_body(res, 405, "method_not_allowed").await;
    let res = app.client.get(app.url("/api/v1/responses")).send().await.unwrap();
    error_body(res, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/forms").await;
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
}

/// The document as a validator sees it: openapi-spec-validator (the reference checker of
/// OpenAPI 3.1 documents; scripts/test.sh installs it) must find nothing wrong.
#[tokio::test]
async fn openapi_document_passes_openapi_spec_validator() {
    let app = spawn_app().await;
    let body = app.get("/api/openapi.json").await.text().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new(python())
        .args(["-m", "openapi_spec_validator", "--schema", "3.1", "--validation-errors", "all"])
        .arg(&file)
        .output()
        .expect("python -m openapi_spec_validator: run scripts/test.sh, or set SIPAS_PYTHON");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openapi-spec-validator: {said}");
    assert!(said.contains("OK"), "{said}");
}

/// The same mistakes caught without Python: a query parameter declared in the path (utoipa's
/// default for `IntoParams`), a path parameter missing from its template or the other way
/// round, an operation id used twice.
#[tokio::test]
async fn openapi_parameters_sit_where_they_are_and_operation_ids_are_unique() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let template: Vec<&str> = path.split('{').skip(1).filter_map(|s| s.split_once('}')).map(|(n, _)| n).collect();
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = ids.insert(id.to_string(), format!("{method} {path}")) {
                panic!("operationId {id} used by {other} and {method} {path}");
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut in_path = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for p in &params {
                let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                assert!(seen.insert((name, place)), "{method} {path} declares {place} parameter {name} twice");
                if place == "path" {
                    assert!(template.contains(&name), "{method} {path}: path parameter {name} is not in the path");
                    assert_eq!(p["required"], true, "{method} {path}: path parameter {name} must be required");
                    in_path.push(name);
                }
            }
            for name in &template {
                assert!(in_path.contains(name), "{method} {path}: {{{name}}} is not declared");
            }
        }
    }
    // The query parameters the handlers read really are declared as query parameters.
    let query = |path: &str, name: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == name && p["in"] == "query" && p["required"] != true)
    };
    for (path, name) in [
        ("/api/v1/indices", "period"),
        ("/api/v1/indices", "unit"),
        ("/api/v1/rankings", "within"),
        ("/api/v1/trends", "interval"),
        ("/api/v1/exports/indices.{format}", "within"),
        ("/api/v1/exports/microdata.{format}", "comments"),
        ("/api/v1/admin/audit", "action"),
        ("/api/v1/admin/volumes", "period"),
    ] {
        assert!(query(path, name), "GET {path}: {name} is not an optional query parameter");
    }
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    format!("{url}{}{param}", if url.contains('?') { '&' } else { '?' })
}

async fn connection_is_encrypted(db: &sea_orm::DatabaseConnection) -> bool {
    use sea_orm::{ConnectionTrait, Statement};
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get::<bool>("", "ssl").unwrap()
}

/// A remote PostgreSQL is reached over TLS (`sslmode=require`, rustls): the application
/// starts on such a URL and the server reports the session as encrypted. The local server
/// has `ssl = on` (.ci/postgres.sh turns it on where it is off).
#[tokio::test]
async fn postgresql_over_tls_is_encrypted() {
    if !std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        eprintln!("skipped: TEST_DATABASE_URL is not a PostgreSQL URL");
        return;
    }
    let app =
        spawn_app_with(|s| s.database_url = Secret::new(with_param(s.database_url.expose(), "sslmode=require"))).await;
    assert!(connection_is_encrypted(&app.db).await, "sslmode=require gave a plain connection");
    assert_eq!(app.get("/readyz").await.status(), 200);
    // The control: without TLS the same query says false, so the check can tell them apart.
    let plain_url = with_param(app.state.settings.database_url.expose().split('?').next().unwrap(), "sslmode=disable");
    let plain = sipas::store::connect(&plain_url, 1).await.unwrap();
    assert!(!connection_is_encrypted(&plain).await);
}

/// `sslmode=verify-full` checks the server's certificate against `sslrootcert` and its name
/// against the host: refused without the CA, accepted with it. The local server's certificate
/// is self-signed for `localhost` (Debian's snake-oil one, or the one .ci/postgres.sh makes),
/// so it is its own CA.
#[tokio::test]
async fn postgresql_verify_full_checks_the_certificate() {
    let Some(admin) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) else {
        eprintln!("skipped: TEST_DATABASE_URL is not a PostgreSQL URL");
        return;
    };
    let url = admin.replace("@127.0.0.1:", "@localhost:");
    let Err(error) = sipas::store::connect(&with_param(&url, "sslmode=verify-full"), 1).await else {
        panic!("a self-signed certificate passed without its CA");
    };
    let error = error.to_string();
    assert!(error.to_lowercase().contains("certificate"), "refused for another reason: {error}");

    let probe = sipas::store::connect(&admin, 1).await.unwrap();
    let cert = {
        use sea_orm::{ConnectionTrait, Statement};
        let row = probe
            .query_one_raw(Statement::from_string(probe.get_database_backend(), "SHOW ssl_cert_file"))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<String>("", "ssl_cert_file").unwrap()
    };
    assert!(std::fs::metadata(&cert).is_ok(), "the server's certificate {cert} is readable here");
    let verified = sipas::store::connect(&with_param(&url, &format!("sslmode=verify-full&sslrootcert={cert}")), 1)
        .await
        .unwrap_or_else(|e| panic!("verify-full with the server's certificate as CA: {e}"));
    assert!(connection_is_encrypted(&verified).await);
}

/// `sipas healthcheck`, the container's health check: 0 while /readyz says 200, 1 when the
/// database is gone (503) and when nothing listens.
#[tokio::test]
async fn healthcheck_command_follows_readiness() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().unwrap().to_string();
    let healthcheck = |port: &str| {
        let port = port.to_string();
        // Off the test's runtime, which also serves the app.
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_sipas"))
                .args(["healthcheck", "--port", &port])
                .env_remove("SIPAS_CONFIG")
                .output()
                .unwrap()
        })
    };
    let ok = healthcheck(&port).await.unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    app.db.close_by_ref().await.unwrap();
    app.state.probe.close_by_ref().await.unwrap();
    let down = healthcheck(&port).await.unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("503"), "{}", String::from_utf8_lossy(&down.stderr));

    let nobody = healthcheck(&crate::helpers::free_port().to_string()).await.unwrap();
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("nothing answers"));
}

/// docker-compose.yml read as Compose reads it (YAML, through the test Python's PyYAML).
fn compose_file() -> Value {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml");
    let out = std::process::Command::new(python())
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(&file)
        .output()
        .expect("python with PyYAML: run scripts/test.sh, or set SIPAS_PYTHON");
    assert!(out.status.success(), "docker-compose.yml: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the binary is asked to run in the container exists: `sipas <args> --help` succeeds.
fn binary_accepts(args: &[&str]) -> bool {
    std::process::Command::new(env!("CARGO_BIN_EXE_sipas")).args(args).arg("--help").output().unwrap().status.success()
}

/// Docker (no engine here, so the files are checked as data): the app has a health check the
/// image can run, the mail catcher is an exact version reachable from this machine only, data
/// lives in volumes, and every setting and command the files give the binary exists.
#[tokio::test]
async fn docker_files_agree_with_the_binary() {
    let compose = compose_file();
    let services = compose["services"].as_object().unwrap();
    let app = &services["app"];
    let health: Vec<&str> =
        app["healthcheck"]["test"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(health, ["CMD", "sipas", "healthcheck"]);
    assert!(binary_accepts(&health[2..]));
    let command: Vec<&str> = app["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(binary_accepts(&command), "the app's command {command:?}");

    let mail = &services["mail"];
    let image = mail["image"].as_str().unwrap();
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
    let exact = regex::Regex::new(r"^v?\d+\.\d+\.\d+$").unwrap();
    assert!(exact.is_match(tag), "mail catcher image {image} is not an exact version");
    for service in services.values() {
        for port in service["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().unwrap();
            if port.ends_with(":8025") {
                assert!(port.starts_with("127.0.0.1:"), "the mail catcher's UI is published beyond localhost: {port}");
            }
        }
    }

    let declared: Vec<&String> = compose["volumes"].as_object().unwrap().keys().collect();
    let db_volumes = services["db"]["volumes"].as_array().unwrap();
    assert!(
        db_volumes.iter().any(|v| v.as_str().unwrap().ends_with(":/var/lib/postgresql/data")
            && declared.iter().any(|d| v.as_str().unwrap().starts_with(&format!("{d}:")))),
        "PostgreSQL's data is not in a named volume: {db_volumes:?}"
    );

    // Every SIPAS_ variable names a setting (a typo would be silently ignored).
    let keys = serde_json::to_value(sipas::config::Settings::default()).unwrap();
    let dockerfile =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let in_dockerfile = regex::Regex::new(r"SIPAS_([A-Z_]+)=").unwrap();
    let mut variables: Vec<String> = app["environment"].as_object().unwrap().keys().cloned().collect();
    variables.extend(in_dockerfile.captures_iter(&dockerfile).map(|c| format!("SIPAS_{}", &c[1])));
    for var in &variables {
        let key = var.strip_prefix("SIPAS_").unwrap().to_lowercase();
        assert!(keys.get(&key).is_some(), "{var} is not a setting");
    }

    // The image: a health check through the binary, the SQLite file in a volume, `serve`.
    assert!(dockerfile.contains(r#"HEALTHCHECK"#) && dockerfile.contains(r#"CMD ["sipas", "healthcheck"]"#));
    assert!(dockerfile.contains("SIPAS_DATABASE_URL=sqlite:///app/data/") && dockerfile.contains("VOLUME /app/data"));
    assert!(dockerfile.contains(r#"CMD ["serve"]"#) && binary_accepts(&["serve"]));
}

fn readme_section(title: &str) -> String {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("README has no {title} section"));
    let rest = &readme[start + 4 + title.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_string()
}

/// The README's configuration table lists every setting, once, with its real default: a new
/// key (like `sign_ins_per_minute`, once forgotten) or a changed default fails here.
#[test]
fn readme_configuration_table_matches_the_settings() {
    let defaults = serde_json::to_value(sipas::config::Settings::default()).unwrap();
    let defaults = defaults.as_object().unwrap();
    let ticked = regex::Regex::new("`([^`]*)`").unwrap();
    let mut listed = std::collections::BTreeSet::new();
    for row in readme_section("Configuration").lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let keys: Vec<&str> = ticked.captures_iter(cells[0]).map(|c| c.get(1).unwrap().as_str()).collect();
        let mut values: Vec<&str> = cells[1].split(", ").map(|v| v.trim_matches('`')).collect();
        // "none" once for a pair of keys: both have it.
        if values.len() == 1 {
            values = vec![values[0]; keys.len()];
        }
        assert_eq!(keys.len(), values.len(), "{row}: one default per key");
        for (key, shown) in keys.iter().zip(values) {
            assert!(listed.insert(key.to_string()), "{key} is listed twice");
            let real = defaults.get(*key).unwrap_or_else(|| panic!("{key} is in the README but is no setting"));
            let same = match real {
                Value::Null => shown == "none",
                Value::Number(n) => shown.parse::<f64>().ok() == n.as_f64(),
                Value::Array(a) => a.is_empty() && shown == "[]",
                Value::String(s) => s == shown,
                Value::Bool(b) => b.to_string() == shown,
                Value::Object(_) => false,
            };
            assert!(same, "{key}: the README says {shown}, the default is {real}");
        }
    }
    let missing: Vec<&String> = defaults.keys().filter(|k| !listed.contains(*k)).collect();
    assert!(missing.is_empty(), "settings missing from the README's configuration table: {missing:?}");
}

/// The README's commands run as written against the demo (its unit codes, the files in
/// examples/), from the repository's layout. Usage lines with `[options]` are left out.
#[tokio::test]
async fn readme_commands_work_against_the_demo() {
    let db = crate::helpers::TestDb::new().await;
    let bin = env!("CARGO_BIN_EXE_sipas");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        dir.path().join("examples"),
    )
    .unwrap();
    let shell = |line: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("set -e; sipas() {{ \"$SIPAS_BIN\" \"$@\"; }}; {line}"))
            .current_dir(dir.path())
            .env("SIPAS_BIN", bin)
            .env("SIPAS_DATABASE_URL", &db.url)
            .env("SIPAS_FORMS_DIR", crate::helpers::forms_dir())
            .env("SIPAS_LOG", "warn")
            .env("PASSWORD", "a demo password for a unit head")
            .env_remove("SIPAS_CONFIG")
            .output()
            .unwrap()
    };
    let demo = shell("sipas demo --responses 200");
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));

    let section = readme_section("Commands");
    let block = section.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    let mut ran = 0;
    // The comment is the explanation; ` # ` appears nowhere else on these lines.
    for command in block.lines().map(|l| l.split(" # ").next().unwrap().trim()).filter(|c| !c.contains('[')) {
        let out = shell(command);
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} commands found in the README");
    assert!(dir.path().join("bc.svg").exists() && dir.path().join("bc.png").exists(), "sipas qr wrote its files");
}

async fn build_error(change: impl FnOnce(&mut sipas::config::Settings)) -> String {
    let db = crate::helpers::TestDb::new().await;
    let mut settings = crate::helpers::test_settings(&db);
    change(&mut settings);
    match sipas::startup::Application::build(settings).await {
        Ok(_) => panic!("the application built with invalid settings"),
        Err(e) => format!("{e:#}"),
    }
}

/// k below the floor, and other settings the service cannot run with, stop the library
/// before it touches the database; k = 5 is the floor itself and runs.
#[tokio::test]
async fn the_application_refuses_to_build_with_suppression_k_below_5() {
    for k in [0, 4] {
        let message = build_error(|s| s.suppression_k = k).await;
        assert!(
            message.contains(&format!("suppression_k (SIPAS_SUPPRESSION_K) is {k}; it must be at least 5")),
            "{message}"
        );
    }
    let app = spawn_app_with(|s| s.suppression_k = 5).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    let message = build_error(|s| {
        s.max_db_connections = 0;
        s.session_idle_minutes = 0;
        s.smtp_tls = "ssl".into();
        s.suppression_k = 1;
    })
    .await;
    for expected in [
        "max_db_connections (SIPAS_MAX_DB_CONNECTIONS) is 0; it must be at least 1",
        "session_idle_minutes (SIPAS_SESSION_IDLE_MINUTES) is 0",
        "smtp_tls (SIPAS_SMTP_TLS) is \"ssl\"",
        "suppression_k (SIPAS_SUPPRESSION_K) is 1",
    ] {
        assert!(message.contains(expected), "every problem is listed at once: {expected} missing from {message}");
    }
}

#[tokio::test]
async fn a_wrong_method_gets_405_with_allow_naming_exactly_the_methods_that_work() {
    let app = spawn_app().await;
    let routes = crate::helpers::route_table();
    assert!(routes.len() > 40, "{routes:?}");
    let fill = |p: &str| {
        p.replace("{form_id}", "sipas-2017")
            .replace("{unit_code}", "X")
            .replace("{format}", "csv")
            .replace("{id}", "1")
            .replace("{token}", "t")
            .replace("{lang}", "vi")
    };
    for (path, allow) in &routes {
        let url = app.url(&fill(path));
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let res = app.client.request(method.parse().unwrap(), &url).send().await.unwrap();
            let status = res.status().as_u16();
            if allow.iter().any(|m| m == method) {
                assert_ne!(status, 405, "{method} {path} is declared in Allow but not routed");
            } else {
                assert_eq!(status, 405, "{method} {path}");
                assert_eq!(res.headers()["allow"].to_str().unwrap(), allow.join(", "), "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn admin_answers_exports_and_tokens_are_never_cached_and_https_gets_hsts() {
    use sipas::auth::Role;
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Admin, None).await;
    for path in [
        "/api/v1/admin/units",
        "/api/v1/admin/users",
        "/api/v1/admin/audit",
        "/api/v1/admin/audit.csv",
        "/api/v1/indices?period=2024",
        "/api/v1/exports/indices.csv?period=2024",
        "/api/v1/exports/microdata.xlsx?period=2024",
        "/api/v1/auth/me",
    ] {
        let res = app.get_as(path, &token).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    }
    // The sign-in answer carries the token.
    use sea_orm::EntityTrait;
    let email = sipas::entities::user::Entity::find().all(&app.db).await.unwrap()[0].email.clone();
    let res = app
        .post_json("/api/v1/auth/login", &serde_json::json!({"email": email, "password": crate::helpers::PASSWORD}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store", "login: {}", res.status());
    // What may be cached says so itself.
    assert!(app.get("/s/app.js").await.headers()["cache-control"].to_str().unwrap().starts_with("public"));
    assert!(
        app.get("/api/v1/units/QNM/qr.svg").await.headers()["cache-control"].to_str().unwrap().starts_with("public")
    );
    let plain = spawn_app_with(|s| s.cookie_secure = false).await;
    assert!(plain.get("/healthz").await.headers().get("strict-transport-security").is_none(), "plain http: no HSTS");

    let https = spawn_app_with(|s| s.cookie_secure = true).await;
    let hsts = https.get("/healthz").await.headers()["strict-transport-security"].to_str().unwrap().to_string();
    assert!(hsts.starts_with("max-age=") && hsts["max-age=".len()..].parse::<u64>().unwrap() >= 15_552_000, "{hsts}");
}

/// A TCP proxy in front of PostgreSQL that can be cut: every open connection dropped and
/// new ones refused, as when the database server dies.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, l) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(link);
            }
        });
        Proxy { addr, cut, links }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

#[tokio::test]
async fn with_postgresql_gone_every_database_answer_is_503_with_retry_after_within_two_seconds() {
    // PostgreSQL only: the service reaches it through a proxy the test cuts. (An open SQLite
    // file cannot go away; its lock is the SQLite case.)
    let Some(admin_url) = std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else { return };
    let host = admin_url.split_once('@').map_or(admin_url.as_str(), |(_, h)| h).split('/').next().unwrap().to_string();
    let proxy = Proxy::start(host.clone()).await;
    let proxied = proxy.addr.to_string();
    let app = spawn_app_with(|s| s.database_url = Secret::new(s.database_url.expose().replace(&host, &proxied))).await;
    let token = app.login_as(sipas::auth::Role::Admin, None).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.get_as("/api/v1/admin/units", &token).await.status(), 200);

    proxy.cut();
    for round in 0..2 {
        for (what, request) in [
            ("readyz", app.client.get(app.url("/readyz"))),
            ("units", app.client.get(app.url("/api/v1/admin/units")).bearer_auth(&token)),
            ("indices", app.client.get(app.url("/api/v1/indices")).bearer_auth(&token)),
            ("submit", app.client.post(app.url("/api/v1/responses")).json(&crate::helpers::valid_submission("X"))),
        ] {
            let started = std::time::Instant::now();
            let res = request.send().await.unwrap();
            let took = started.elapsed();
            assert!(res.headers().contains_key("retry-after"), "{what} (round {round}): Retry-After");
            error_body(res, 503, "service_unavailable").await;
            assert!(took < std::time::Duration::from_secs(2), "{what} (round {round}) took {took:?}");
        }
    }
    assert_eq!(app.get("/healthz").await.status(), 200, "alive all the same");
}

#[tokio::test]
async fn a_body_sent_a_byte_a_second_is_cut_off_with_408_and_the_service_keeps_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|s| s.request_timeout_seconds = 2).await;
    app.seed_reference_units().await;
    let host = app.address.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "POST /api/v1/responses HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            if slow.write_all(b" ").await.is_err() {
                break;
            }
        }
        let mut answer = vec![0u8; 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), slow.read(&mut answer)).await;
        String::from_utf8_lossy(&answer[..n.ok().and_then(Result::ok).unwrap_or(0)]).into_owned()
    });
    // Meanwhile the service answers others.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let answer = trickle.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?} after {:?}", started.elapsed());
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    assert_eq!(app.response_count().await, 0, "nothing stored");
}

#[tokio::test]
async fn an_sqlite_file_locked_by_another_process_gets_503_in_seconds_and_readyz_says_so() {
    // SQLite only: PostgreSQL has no file lock (its outage is the proxy test above).
    if std::env::var("TEST_DATABASE_URL").ok().is_some_and(|u| !u.is_empty()) {
        return;
    }
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    app.seed_reference_units().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    // Another process's connection takes the write lock and keeps it.
    let url = app.state.settings.database_url.expose().to_string();
    let other = sea_orm::Database::connect(&url).await.unwrap();
    other.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();

    let started = std::time::Instant::now();
    let res = app.get("/readyz").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(res.headers().contains_key("retry-after"));
    error_body(res, 503, "service_unavailable").await;

    let started = std::time::Instant::now();
    let res = app.submit(&crate::helpers::valid_submission("QNM.SNV")).await;
    let took = started.elapsed();
    assert!(res.headers().contains_key("retry-after"));
    error_body(res, 503, "service_unavailable").await;
    assert!(took < std::time::Duration::from_secs(7), "a submission waited {took:?}");

    other.execute_unprepared("ROLLBACK").await.unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.submit(&crate::helpers::valid_submission("QNM.SNV")).await.status(), 201, "back once released");
}

/// Every `<input type=hidden>` of a page as (name, value), quoted or not (pages are minified).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!(" {name}="))? + name.len() + 2;
        let rest = &tag[at..];
        Some(match rest.chars().next()? {
            q @ ('"' | '\'') => rest[1..].split(q).next()?.to_string(),
            _ => rest.split([' ', '>']).next()?.to_string(),
        })
    };
    html.split("<input")
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or_default())
        .filter(|t| attr(t, "type").as_deref() == Some("hidden"))
        .filter_map(|t| Some((attr(t, "name")?, attr(t, "value").unwrap_or_default())))
        .map(|(n, v)| (n, v.replace("&quot;", "\"").replace("&amp;", "&")))
        .collect()
}

#[tokio::test]
async fn with_the_database_down_people_get_vietnamese_pages_and_the_citizen_keeps_the_answers() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let (console, _) = crate::helpers::console_client(&app, sipas::auth::Role::Analyst, None).await;
    let page = app.get("/s/QNM.TK.AM").await.text().await.unwrap();
    let mut form = hidden_fields(&page);
    assert!(form.iter().any(|(n, _)| n == "submission_id"), "the page carries its submission id");
    form.extend(["A1", "A2", "B1"].map(|c| (c.to_string(), "4".to_string())));
    form.push(("respondent_type".into(), "citizen".into()));
    form.push(("comment".into(), "Cán bộ \"rất\" tận tình & chu đáo".into()));

    app.db.close_by_ref().await.unwrap();
    // Survey pages come from the unit tree held in memory, checked against the database at
    // most a second apart: past that second the database's absence shows.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let html = |res: &reqwest::Response| res.headers()["content-type"].to_str().unwrap().starts_with("text/html");
    // (The kiosk page asks for its enrolment cookie before anything else: a 403 page.)
    for path in ["/s/QNM.TK.AM", "/console", "/console/rankings"] {
        let res = console.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 503, "{path}");
        assert!(html(&res) && res.headers().contains_key("retry-after"), "{path}: {:?}", res.headers());
        let body = res.text().await.unwrap();
        assert!(body.contains("lang=vi") || body.contains("lang=\"vi\""), "{path}: {body}");
        assert!(body.contains("tạm thời gián đoạn"), "{path}: {body}");
    }
    // The survey's answers come back as a page that sends them again.
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(html(&res) && res.headers().contains_key("retry-after"));
    let body = res.text().await.unwrap();
    assert!(body.contains("Phiếu chưa gửi được") && body.contains("Gửi lại"), "{body}");
    let mut kept = hidden_fields(&body);
    let (mut sent, mut kept_sorted) = (form.clone(), kept.clone());
    sent.sort();
    kept_sorted.sort();
    assert_eq!(kept_sorted, sent, "every answer kept, nothing added");
    // The API keeps its JSON.
    error_body(app.get("/api/v1/units/QNM.TK.AM").await, 503, "service_unavailable").await;

    // Sent again to a service whose database answers, the kept page is a whole response.
    let healthy = spawn_app().await;
    healthy.seed_reference_units().await;
    kept.retain(|(n, _)| n != "t");
    let res = healthy.client.post(healthy.url("/s/QNM.TK.AM")).form(&kept).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    assert_eq!(healthy.response_count().await, 1);
}
