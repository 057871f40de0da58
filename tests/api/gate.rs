//! Every figure-bearing route, page, export and email is reached through the publication
//! gate. The route table (`src/routes/mod.rs`) is read and every path in it must be listed
//! here, either with the requests that show its figures or with why it shows none, so a new
//! route cannot slip past. A small province holds two cells the gate withholds whose values
//! are found nowhere else (a commune under k, 5 of 7 satisfied: 71.43; and the citizens of a
//! commune, withheld to protect its 3 organisations, 19 of 22: 86.36); every listed request,
//! by an analyst and by the province's own unit manager, must answer without either value,
//! in JSON, CSV, XLSX and HTML alike. The emails follow the gate cell by cell.

use std::collections::BTreeSet;

use calamine::{Data, Reader, Xlsx};
use serde_json::json;
use sipas::auth::Role;

use sea_orm::EntityTrait;

use crate::helpers::{TestApp, console_client, spawn_app};

const ITEMS: [&str; 22] = [
    "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4", "C5", "C6", "D1", "D2", "D3", "E1",
    "E2", "E3", "E4",
];

/// (unit, month, organisation, satisfied): every item of a response answered alike, so every
/// figure of a cell is 100 × satisfied / n.
fn data() -> Vec<(&'static str, u32, bool, bool)> {
    let mut out = Vec::new();
    for (i, m) in [1, 4, 7, 10].into_iter().enumerate() {
        out.push(("TP", m, false, i < 2));
    }
    for m in [2, 5, 8] {
        out.push(("TP.A", m, true, false));
    }
    for i in 0..22u32 {
        out.push(("TP.A", i % 11 + 1, false, i < 19));
    }
    for i in 0..14 {
        out.push(("TP.B", 3, false, i < 7));
    }
    for (i, m) in [1, 3, 5, 7, 9, 11, 12].into_iter().enumerate() {
        out.push(("TP.C", m, false, i < 5));
    }
    out
}

async fn seed(app: &TestApp) {
    let csv = "code,parent,level,name_vi\nTP,,province,Tỉnh Thử\nTP.A,TP,commune,Xã A\nTP.B,TP,commune,Xã B\nTP.C,TP,commune,Xã C\n";
    let rows = sipas::units::import::parse_csv(csv).unwrap();
    sipas::store::units::import(&app.db, rows).await.unwrap().unwrap();
    let mut lines = String::new();
    for (i, (unit, month, organisation, satisfied)) in data().into_iter().enumerate() {
        let answers: serde_json::Map<String, serde_json::Value> =
            ITEMS.iter().map(|c| (c.to_string(), json!(if satisfied { 5 } else { 2 }))).collect();
        let line = json!({
            "submission_id": uuid::Uuid::from_u128(0x6a7e_0000 + i as u128),
            "unit": unit, "form": "sipas-2017",
            "respondent_type": if organisation { "organization" } else { "citizen" },
            "channel": if i % 2 == 0 { "in_person" } else { "online" },
            "date": format!("2025-{month:02}-{:02}", 1 + (i as u32 % 28)), "answers": answers,
            "comment": format!("ý kiến số {i}"),
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let report = sipas::imports::responses_jsonl(&app.state, &lines).await.unwrap().unwrap();
    assert_eq!(report.created as usize, data().len());
}

/// What must never be shown, in full precision and as the console prints it.
const WITNESSES: [&str; 4] = ["71.43", "86.36", "71.4", "86.4"];

/// A route the table serves: the requests that show its figures, or why it shows none.
enum Route {
    Figures(&'static [&'static str]),
    /// Checked elsewhere, or bears no figure (the text says which).
    #[allow(dead_code)]
    None(&'static str),
}

const FIGURES: &[(&str, Route)] = &[
    ("/healthz", Route::None("liveness")),
    ("/favicon.ico", Route::None("an icon")),
    ("/readyz", Route::None("readiness")),
    ("/api/openapi.json", Route::None("the API's description")),
    ("/api/v1/forms", Route::None("form definitions")),
    ("/api/v1/forms/{form_id}", Route::None("a form definition")),
    ("/api/v1/units/{unit_code}", Route::None("a unit's name and survey settings, no figures")),
    ("/api/v1/responses", Route::None("submissions in")),
    ("/api/v1/units/{unit_code}/qr.svg", Route::None("a QR code")),
    ("/api/v1/units/{unit_code}/qr.png", Route::None("a QR code")),
    ("/api/v1/units/{unit_code}/codes", Route::None("issues receipt codes")),
    ("/api/v1/units/{unit_code}/invitations", Route::None("sends invitations")),
    ("/api/v1/admin/units/{unit_code}/keys", Route::None("issues API keys")),
    ("/s/app.js", Route::None("the survey's script")),
    ("/s/sw.js", Route::None("the survey's service worker")),
    ("/s/{unit_code}", Route::None("the survey page")),
    ("/k/{unit_code}", Route::None("the kiosk survey")),
    ("/api/v1/auth/login", Route::None("sign-in")),
    ("/api/v1/auth/logout", Route::None("sign-out")),
    ("/api/v1/auth/me", Route::None("the caller's account")),
    ("/api/v1/auth/password-reset", Route::None("password reset")),
    ("/api/v1/auth/password-reset/confirm", Route::None("password reset")),
    ("/api/v1/admin/units", Route::None("the unit tree")),
    ("/api/v1/admin/units/{unit_code}", Route::None("a unit's settings")),
    (
        "/api/v1/indices",
        Route::Figures(&[
            "/api/v1/indices?unit={unit}&period={period}",
            "/api/v1/indices?unit={unit}&period={period}&breakdown=unit",
            "/api/v1/indices?unit={unit}&period={period}&breakdown=respondent_type",
            "/api/v1/indices?unit={unit}&period={period}&breakdown=channel",
            "/api/v1/indices?unit={unit}&period={period}&respondent_type=citizen",
            "/api/v1/indices?unit={unit}&period={period}&respondent_type=citizen&breakdown=unit",
            "/api/v1/indices?unit={unit}&period={period}&rollup=mean_of_children&breakdown=unit",
        ]),
    ),
    (
        "/api/v1/rankings",
        Route::Figures(&[
            "/api/v1/rankings?period={period}",
            "/api/v1/rankings?period={period}&respondent_type=citizen",
            "/api/v1/rankings?period={period}&level=commune",
        ]),
    ),
    (
        "/api/v1/trends",
        Route::Figures(&[
            "/api/v1/trends?unit={unit}&period=2025",
            "/api/v1/trends?unit={unit}&period=2025&interval=quarter",
            "/api/v1/trends?unit={unit}&period=2025&respondent_type=citizen",
        ]),
    ),
    (
        "/api/v1/exports/indices.{format}",
        Route::Figures(&[
            "/api/v1/exports/indices.csv?within={unit}&period={period}",
            "/api/v1/exports/indices.json?within={unit}&period={period}",
            "/api/v1/exports/indices.xlsx?within={unit}&period={period}",
            "/api/v1/exports/indices.json?within={unit}&period={period}&respondent_type=citizen",
            "/api/v1/exports/indices.json?within={unit}&period={period}&as_at=2025-06-30",
            "/api/v1/exports/indices.csv?within={unit}&period={period}&as_at=2025-06-30&respondent_type=citizen",
        ]),
    ),
    (
        "/api/v1/exports/microdata.{format}",
        Route::None("rows, not figures: adversary::microdata_with_the_tables_determines_no_small_group"),
    ),
    ("/api/v1/exports/microdata.{format}/jobs", Route::None("the same microdata file, prepared in the background")),
    ("/api/v1/exports/jobs", Route::None("the caller's background exports")),
    ("/api/v1/exports/jobs/{id}", Route::None("a background export's progress")),
    ("/api/v1/exports/jobs/{id}/file", Route::None("the microdata file, byte for byte the download's (export_jobs)")),
    ("/api/v1/plans", Route::None("plans' frozen baselines, the gate's figures when the plan was made (plans.rs)")),
    (
        "/api/v1/plans/{id}",
        Route::None("before/after through report::index and its gate; a withheld side shows no n or value (plans.rs)"),
    ),
    ("/api/v1/plans/{id}/comments", Route::None("comments")),
    ("/api/v1/admin/users", Route::None("accounts")),
    ("/api/v1/admin/users/{id}", Route::None("an account")),
    ("/api/v1/admin/audit", Route::None("the audit log")),
    ("/api/v1/admin/audit.csv", Route::None("the audit log")),
    ("/api/v1/admin/volumes", Route::None("volumes of cases handled, entered by people")),
    (
        "/console",
        Route::Figures(&["/console?period={period}", "/console?unit={unit}&period={period}&respondent_type=citizen"]),
    ),
    ("/console/login", Route::None("sign-in")),
    ("/console/logout", Route::None("sign-out")),
    ("/console/forgot", Route::None("password reset")),
    ("/console/reset/{token}", Route::None("password reset")),
    ("/console/lang/{lang}", Route::None("language choice")),
    ("/console/rankings", Route::Figures(&["/console/rankings?period={period}"])),
    (
        "/console/units/{unit_code}",
        Route::Figures(&[
            "/console/units/{unit}?period={period}",
            "/console/units/{unit}?period={period}&respondent_type=citizen",
            "/console/units/{unit}?period={period}&as_at=2025-06-30",
        ]),
    ),
    ("/console/units/{unit_code}/report", Route::Figures(&["/console/units/{unit}/report?period={period}"])),
    ("/console/units/{unit_code}/poster", Route::None("a poster with the QR code")),
    ("/console/plans", Route::None("plans' frozen baselines (the API's, plans.rs)")),
    ("/console/plans/{id}", Route::None("the API's before/after, through report::index and its gate (plans.rs)")),
    ("/console/plans/{id}/comments", Route::None("comments")),
    ("/console/exports", Route::None("the export forms")),
    (
        "/console/exports/indices.{format}",
        Route::Figures(&[
            "/console/exports/indices.csv?within={unit}&period={period}",
            "/console/exports/indices.xlsx?within={unit}&period={period}",
            "/console/exports/indices.json?within={unit}&period={period}",
        ]),
    ),
    ("/console/exports/microdata.{format}", Route::None("the API's microdata, see above")),
    ("/console/exports/jobs", Route::None("starts the API's background export")),
    ("/console/exports/jobs/{id}", Route::None("a background export's progress")),
    ("/console/exports/jobs/{id}/cancel", Route::None("cancels a background export")),
    ("/console/exports/jobs/{id}/file", Route::None("the API's background export file")),
    ("/console/admin/units", Route::None("unit administration")),
    ("/console/admin/units/{unit_code}/edit", Route::None("unit administration")),
    ("/console/admin/units/{unit_code}", Route::None("unit administration")),
    ("/console/admin/volumes", Route::None("volumes of cases handled")),
    ("/console/admin/users", Route::None("accounts")),
    ("/console/admin/users/{id}", Route::None("an account")),
    ("/console/admin/audit", Route::None("the audit log")),
];

#[test]
fn every_route_of_the_table_is_listed_with_its_figures_or_why_it_has_none() {
    let routed: BTreeSet<String> = crate::helpers::route_table().into_iter().map(|(p, _)| p).collect();
    assert!(routed.len() > 40, "the route table was read: {routed:?}");
    let listed: BTreeSet<String> = FIGURES.iter().map(|(p, _)| p.to_string()).collect();
    let unlisted: Vec<&String> = routed.difference(&listed).collect();
    assert!(unlisted.is_empty(), "routes nobody checked for figures: {unlisted:?}");
    let gone: Vec<&String> = listed.difference(&routed).collect();
    assert!(gone.is_empty(), "listed but no longer routed: {gone:?}");
}

/// A reply as text: JSON, CSV and HTML as they are, a workbook cell by cell.
async fn text_of(res: reqwest::Response) -> String {
    let xlsx = res.headers().get("content-type").is_some_and(|c| c.to_str().unwrap_or("").contains("spreadsheet"));
    let bytes = res.bytes().await.unwrap();
    if !xlsx {
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut out = String::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).unwrap();
        for row in range.rows() {
            for cell in row {
                match cell {
                    Data::Float(f) => out.push_str(&format!("{f} ")),
                    other => out.push_str(&format!("{other} ")),
                }
            }
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn no_figure_bearing_output_shows_what_the_gate_withholds() {
    let app = spawn_app().await;
    seed(&app).await;
    let analyst = app.login_as(Role::Analyst, None).await;
    let manager = app.login_as(Role::UnitManager, Some("TP")).await;
    let (console_analyst, _) = console_client(&app, Role::Analyst, None).await;
    let (console_manager, _) = console_client(&app, Role::UnitManager, Some("TP")).await;

    // The witnesses are withheld, and their values are right: the test sees them when asked
    // without the gate (the engine over the same tallies would print them).
    let tc: serde_json::Value =
        app.get_as("/api/v1/indices?unit=TP.C&period=2025", &analyst).await.json().await.unwrap();
    assert_eq!(tc["withheld"], "under_k", "{tc}");
    let ta: serde_json::Value = app
        .get_as("/api/v1/indices?unit=TP.A&period=2025&respondent_type=citizen", &analyst)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ta["withheld"], "protects_another", "{ta}");
    let shown: serde_json::Value =
        app.get_as("/api/v1/indices?unit=TP.A&period=2025", &analyst).await.json().await.unwrap();
    assert!(shown["index"]["value"].as_f64().is_some_and(|v| (v - 76.0).abs() < 1e-9), "{shown}");

    let mut periods = vec!["2025".to_string()];
    periods.extend((1..=4).map(|q| format!("2025-Q{q}")));
    let mut checked = 0;
    for (route, kind) in FIGURES {
        let Route::Figures(templates) = kind else { continue };
        for template in *templates {
            for unit in ["TP", "TP.A", "TP.B", "TP.C"] {
                for period in &periods {
                    let path = template.replace("{unit}", unit).replace("{period}", period);
                    let console = path.starts_with("/console");
                    for who in ["analyst", "manager"] {
                        let res = match (console, who) {
                            (false, "analyst") => app.get_as(&path, &analyst).await,
                            (false, _) => app.get_as(&path, &manager).await,
                            (true, "analyst") => console_analyst.get(app.url(&path)).send().await.unwrap(),
                            (true, _) => console_manager.get(app.url(&path)).send().await.unwrap(),
                        };
                        let status = res.status().as_u16();
                        assert!(status == 200, "{route}: {path} as {who}: {status}");
                        let text = text_of(res).await;
                        for w in WITNESSES {
                            assert!(!text.contains(w), "{path} as {who} shows {w}, a withheld value");
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 300, "{checked} replies checked");

    // Comments: only with a shown cell. TP.C's own seven are never listed.
    for path in ["/console/units/TP.C?period=2025", "/console/units/TP.A?period=2025&respondent_type=citizen"] {
        let html = console_analyst.get(app.url(path)).send().await.unwrap().text().await.unwrap();
        assert!(!html.contains("ý kiến số"), "{path} lists comments of a withheld cell");
    }
}

/// Digests and alerts say what the gate says about each manager's unit and month: a figure
/// only for a shown cell, "withheld to protect another group" apart from "under k".
#[tokio::test]
async fn emails_show_a_figure_only_where_the_gate_does() {
    let app = spawn_app_with_threshold().await;
    seed(&app).await;
    for unit in ["TP", "TP.A", "TP.B", "TP.C"] {
        app.login_as(Role::UnitManager, Some(unit)).await;
    }
    let tree = sipas::store::units::tree(&app.db).await.unwrap();
    let mut seen = BTreeSet::new();
    for month in 1..=12u32 {
        // Mid-month: the digest's "this month" is the calendar month so far.
        let today = chrono::NaiveDate::from_ymd_opt(2025, month, 15).unwrap();
        let period = sipas::index::period::Period::parse(&format!("2025-{month:02}")).unwrap();
        sipas::email::reports::enqueue_digests(&app.state, today).await.unwrap();
        sipas::email::reports::enqueue_alerts(&app.state, today).await.unwrap();
        let mail = sipas::entities::outbox::Entity::find().all(&app.db).await.unwrap();
        for unit in ["TP", "TP.A", "TP.B", "TP.C"] {
            let u = tree.by_code(unit).unwrap();
            let gate = sipas::publish::Gate::load(
                &app.state.publisher,
                &app.db,
                &tree,
                u.id,
                "sipas-2017",
                &[period],
                None,
                10,
            )
            .await
            .unwrap();
            let decision = gate.decide(&sipas::publish::Cell { unit_id: u.id, own: false, period, value: None });
            let digest = mail
                .iter()
                .filter(|m| m.kind == "digest" && m.body_text.contains(&format!("({unit})")))
                .find(|m| m.body_text.contains(&format!("{}", period.from)))
                .unwrap_or_else(|| panic!("a digest for {unit} in month {month}"));
            let alert = mail.iter().any(|m| {
                m.kind == "alert"
                    && m.body_text.contains(&u.name_vi)
                    && m.body_text.contains(&format!("{}", period.from))
            });
            let n = data().iter().filter(|(u, m, ..)| (*u == unit || unit == "TP") && *m == month).count();
            match decision {
                None if n == 0 => assert!(!digest.body_text.contains("SIPAS "), "{unit} {month}: nobody answered"),
                None => assert!(digest.body_text.contains("SIPAS "), "{unit} {month}: shown, so figured"),
                Some(why) => {
                    assert!(!digest.body_text.contains("SIPAS "), "{unit} {month} is withheld: {}", digest.body_text);
                    assert!(!alert, "{unit} {month}: no alert for a withheld month");
                    let protects = why == sipas::index::engine::Withheld::ProtectsAnother;
                    assert_eq!(digest.body_text.contains("bảo vệ một nhóm khác"), protects, "{unit} {month}");
                }
            }
            seen.insert((unit, decision.map(|w| format!("{w:?}"))));
        }
    }
    // The data hold all three cases, or the test proves less than it says.
    let kinds: BTreeSet<Option<String>> = seen.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(kinds.len(), 3, "shown, under k and protecting another: {seen:?}");
}

async fn spawn_app_with_threshold() -> TestApp {
    // An alert threshold every shown month is under, so a missing alert means the gate.
    crate::helpers::spawn_app_with(|s| s.alert_threshold = 100.0).await
}
