//! Indices, rankings, trends and volumes through the API, on the reference data set.

use serde_json::{Value, json};
use sipas::auth::Role;

use crate::engine::{assert_matches, reference};
use crate::helpers::{TestApp, error_body, fixture, spawn_app};

async fn indices(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app.get_as(&format!("/api/v1/indices?{query}"), token).await;
    assert_eq!(res.status(), 200, "{query}");
    res.json().await.unwrap()
}

/// Checks every unit of one set of expected.json: figures to 1e-9, or suppressed under k,
/// or withheld by the publication gate to protect another group (the engine's own check,
/// `engine_reproduces_every_expected_figure`, covers those cells' exact figures). The
/// province is always shown.
async fn check_set(app: &TestApp, token: &str, set: &str, query: &str) {
    let r = reference();
    let k = r.expected["k"].as_u64().unwrap();
    let mut shown = 0;
    for (unit, want) in r.expected[set].as_object().unwrap() {
        let got = indices(app, token, &format!("unit={unit}&{query}")).await;
        if want["n"].as_u64().unwrap() < k {
            assert_eq!(got["n"], want["n"], "{set} {unit}");
            assert_eq!(got["suppressed"], true, "{set} {unit} has fewer than k responses");
            assert!(
                got["index"].is_null() && got["groups"][0]["value"].is_null() && got["items"][0]["value"].is_null()
            );
        } else if got["withheld"] == "protects_another" {
            assert_eq!(got["n"], want["n"], "{set} {unit}");
            assert!(got["index"].is_null() && got["items"][0]["distribution"].is_null(), "{set} {unit}");
        } else {
            assert_eq!(got["suppressed"], false, "{set} {unit}");
            assert_matches(&format!("{set} {unit}"), &got, want);
            shown += 1;
        }
    }
    assert!(shown > 0, "{set}: nothing shown");
    let province = indices(app, token, &format!("unit=QNM&{query}")).await;
    assert_matches(&format!("{set} QNM"), &province, &r.expected[set]["QNM"]);
}

#[tokio::test]
async fn imported_reference_responses_give_every_expected_figure_through_the_api() {
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Analyst, None).await;
    check_set(&app, &token, "pooled", "period=2024").await;
    check_set(&app, &token, "q1_pooled", "period=2024-Q1").await;
    check_set(&app, &token, "q1_pooled", "from=2024-01-01&to=2024-03-31").await;
    check_set(&app, &token, "organization_pooled", "period=2024&respondent_type=organization").await;
    let r = reference();
    for (unit, want) in r.expected["mean_of_children"].as_object().unwrap() {
        let got = indices(&app, &token, &format!("unit={unit}&period=2024&rollup=mean_of_children")).await;
        let value = got["index"]["value"].as_f64().unwrap();
        // The mean is over the children the gate shows: a withheld child in it could be
        // worked out from the mean and the others.
        let children = got["children"].as_array().unwrap();
        let mut used = Vec::new();
        for c in children {
            let child = indices(&app, &token, &format!("unit={}&period=2024", c["unit"].as_str().unwrap())).await;
            assert_eq!(c["used"], child["index"]["value"].is_number(), "{unit} {}", c["unit"]);
            if let Some(v) = child["index"]["value"].as_f64() {
                used.push(v);
            }
        }
        let mean = used.iter().sum::<f64>() / used.len() as f64;
        assert!((value - mean).abs() < 1e-9, "{unit}: {value} vs the mean of the shown children {mean}");
        if children.iter().all(|c| c["used"] == (c["n"].as_u64().unwrap() >= 10)) {
            assert!((value - want.as_f64().unwrap()).abs() < 1e-9, "{unit}: {value} vs {want}");
        }
    }
}

#[tokio::test]
async fn reference_responses_submitted_through_the_public_api_give_the_same_figures() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let lines: Vec<Value> = std::fs::read_to_string(fixture("responses.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("date");
            v
        })
        .collect();
    for chunk in lines.chunks(25) {
        let results = futures_util::future::join_all(chunk.iter().map(|b| app.submit(b))).await;
        assert!(results.iter().all(|r| r.status() == 201));
    }
    let token = app.login_as(Role::Admin, None).await;
    // Submitted today: the whole of this year holds exactly the 2024 reference responses.
    let year = chrono::Datelike::year(&sipas::vietnam_today());
    check_set(&app, &token, "pooled", &format!("period={year}")).await;
    check_set(&app, &token, "organization_pooled", &format!("period={year}&respondent_type=organization")).await;
    // A range that is not a calendar year, quarter or month could be subtracted from one.
    let last_30_days =
        format!("from={}&to={}", sipas::vietnam_today() - chrono::TimeDelta::days(29), sipas::vietnam_today());
    let res = app.get_as(&format!("/api/v1/indices?unit=QNM&{last_30_days}"), &token).await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn tallies_agree_with_a_rebuild_after_random_submissions() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let units = ["QNM", "QNM.SNV", "QNM.STP", "QNM.TK", "QNM.TK.AM", "QNM.TK.HH", "QNM.TK.TT", "QNM.HA", "QNM.HA.MA"];
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut jsonl = String::new();
        for i in 0..120 {
            let form2023 = rng.random_bool(0.3);
            let channel = ["in_person", "online", "kiosk", "phone", "paper"][rng.random_range(0..5)];
            let mut body = json!({
                "submission_id": uuid::Uuid::new_v4(),
                "unit": units[rng.random_range(0..units.len())],
                "form": if form2023 { "sipas-2023" } else { "sipas-2017" },
                "respondent_type": if form2023 || rng.random_bool(0.7) { "citizen" } else { "organization" },
                "channel": channel,
                "answers": if form2023 {
                    json!({"GT1": rng.random_range(1..6), "A1": rng.random_range(1..6), "C5": null, "MD2": rng.random_range(1..4), "KENH": [1, 3]})
                } else {
                    json!({"A1": rng.random_range(1..6), "B3": rng.random_range(1..6), "E4": null, "D1": rng.random_range(1..6)})
                },
            });
            if rng.random_bool(0.5) {
                let service = ["ho_tich", "dat_dai", "khac"][rng.random_range(0..3)];
                body["service"] = json!(service);
            }
            if i % 2 == 0 {
                assert_eq!(app.submit(&body).await.status(), 201);
            } else {
                let date = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()
                    + chrono::TimeDelta::days(rng.random_range(0..900));
                body["date"] = json!(date.min(sipas::vietnam_today()).to_string());
                jsonl.push_str(&format!("{body}\n"));
            }
        }
        sipas::imports::responses_jsonl(&app.state, &jsonl).await.unwrap().unwrap();
        app.state.writer.settled().await;
        let kept = sipas::store::tallies::snapshot(&app.db).await.unwrap();
        let (responses, _) = sipas::store::tallies::rebuild(&app.db, &app.state.catalog).await.unwrap();
        assert_eq!(responses, app.response_count().await);
        let rebuilt = sipas::store::tallies::snapshot(&app.db).await.unwrap();
        assert_eq!(kept.len(), rebuilt.len(), "seed {seed}");
        assert!(kept == rebuilt, "seed {seed}: tallies kept with each submission differ from a rebuild");
    }
}

/// Every object that says how many responses it holds and whether it is suppressed must
/// hide its figures when suppressed, and be suppressed when under k.
fn assert_suppressed_everywhere(v: &Value, k: u64, path: &str) {
    match v {
        Value::Object(map) => {
            if let (Some(n), Some(suppressed)) = (map.get("n").and_then(Value::as_u64), map.get("suppressed")) {
                if n < k {
                    assert_eq!(suppressed, &json!(true), "{path}: n={n} under k={k} but shown");
                }
                if suppressed == &json!(true) {
                    for key in ["value", "ci95", "index", "satisfied", "distribution", "mean_score"] {
                        assert!(map.get(key).is_none_or(Value::is_null), "{path}.{key} shown although suppressed");
                    }
                }
            }
            for (key, child) in map {
                assert_suppressed_everywhere(child, k, &format!("{path}.{key}"));
            }
        }
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, c)| assert_suppressed_everywhere(c, k, &format!("{path}[{i}]")))
        }
        _ => {}
    }
}

#[tokio::test]
async fn suppression_hides_every_cell_under_k_in_every_output() {
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Admin, None).await;
    let units = ["QNM", "QNM.TK", "QNM.HA", "QNM.TK.TT", "QNM.STP"];
    let periods = ["period=2024", "period=2024-Q1", "period=2024-03", "from=2024-04-01&to=2024-06-30"];
    let extras = ["", "&respondent_type=organization", "&channel=kiosk", "&service=ho_tich"];
    let breakdowns = ["", "&breakdown=unit", "&breakdown=channel", "&breakdown=respondent_type", "&breakdown=service"];
    for unit in units {
        for period in periods {
            for extra in extras {
                for breakdown in breakdowns {
                    let q = format!("unit={unit}&{period}{extra}{breakdown}");
                    // One dimension at a time: a filter crossed with another breakdown is refused.
                    let crossed = !extra.is_empty()
                        && !breakdown.is_empty()
                        && breakdown != "&breakdown=unit"
                        && !extra.contains(&breakdown["&breakdown=".len()..]);
                    if crossed {
                        let res = app.get_as(&format!("/api/v1/indices?{q}"), &token).await;
                        let out = error_body(res, 422, "validation_failed").await;
                        assert!(out["fields"]["breakdown"].is_array(), "{q}");
                        continue;
                    }
                    let v = indices(&app, &token, &q).await;
                    assert_suppressed_everywhere(&v, 10, &q);
                    // Complementary suppression: hidden rows never hold fewer than k together.
                    if let Some(rows) = v["breakdown"].as_array() {
                        let hidden: u64 =
                            rows.iter().filter(|r| r["suppressed"] == true).map(|r| r["n"].as_u64().unwrap()).sum();
                        assert!(
                            hidden == 0 || hidden >= 10 || rows.iter().all(|r| r["suppressed"] == true),
                            "{q}: {hidden}"
                        );
                        let total: u64 = rows.iter().map(|r| r["n"].as_u64().unwrap()).sum();
                        assert_eq!(total, v["n"].as_u64().unwrap(), "{q}: breakdown rows add up to the total");
                    }
                }
            }
            for level in ["department", "district", "commune"] {
                let res = app.get_as(&format!("/api/v1/rankings?level={level}&{period}"), &token).await;
                let v: Value = res.json().await.unwrap();
                assert_suppressed_everywhere(&v, 10, level);
                for row in v["units"].as_array().unwrap() {
                    if row["n"].as_u64().unwrap() < 10 {
                        assert!(
                            row["value"].is_null()
                                && row["rank"].is_null()
                                && row["weakest"].as_array().unwrap().is_empty()
                        );
                    }
                }
            }
            let v: Value =
                app.get_as(&format!("/api/v1/trends?unit={unit}&{period}"), &token).await.json().await.unwrap();
            assert_suppressed_everywhere(&v, 10, "trend");
        }
    }
    // Ranges that are not one calendar year, quarter or month are refused, and so are two
    // filters at once.
    for q in ["from=2024-02-10&to=2024-05-20", "from=2024-01-01&to=2024-11-30", "respondent_type=citizen&channel=kiosk"]
    {
        let res = app.get_as(&format!("/api/v1/indices?unit=QNM&{q}"), &token).await;
        error_body(res, 422, "validation_failed").await;
    }
    // A higher k hides more; a lower one than configured is refused.
    let v = indices(&app, &token, "unit=QNM.STP&period=2024&k=50").await;
    assert_eq!(v["suppressed"], true);
    let out =
        error_body(app.get_as("/api/v1/indices?unit=QNM&period=2024&k=4", &token).await, 422, "validation_failed")
            .await;
    assert!(out["fields"]["k"].is_array());
}

#[tokio::test]
async fn breakdowns_split_the_total_by_unit_and_by_detail() {
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Analyst, None).await;
    let v = indices(&app, &token, "unit=QNM.TK&period=2024&breakdown=unit").await;
    let rows = v["breakdown"].as_array().unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["QNM.TK.AM", "QNM.TK.HH", "QNM.TK.TT", "(own)"]);
    let r = reference();
    assert_eq!(rows[0]["n"], r.expected["pooled"]["QNM.TK.AM"]["n"]);
    assert_eq!(rows[2]["n"], 29);
    let own = 331 - 139 - 110 - 29;
    assert_eq!(rows[3]["n"], own);

    let v = indices(&app, &token, "unit=QNM&period=2024&breakdown=respondent_type").await;
    let rows = v["breakdown"].as_array().unwrap();
    let org = rows.iter().find(|r| r["key"] == "organization").unwrap();
    assert_matches("organization breakdown", org, &r.expected["organization_pooled"]["QNM"]);

    let channels = indices(&app, &token, "unit=QNM&period=2024&breakdown=channel").await;
    let kiosk = channels["breakdown"].as_array().unwrap().iter().find(|r| r["key"] == "kiosk").unwrap().clone();
    let filtered = indices(&app, &token, "unit=QNM&period=2024&channel=kiosk").await;
    assert_eq!(kiosk["n"], filtered["n"]);
    assert_eq!(kiosk["index"], filtered["index"]);
}

#[tokio::test]
async fn rankings_order_units_and_compare_with_the_previous_period() {
    let app = spawn_app().await;
    app.import_reference().await;
    // The same responses a year earlier, with A1 answered 1 everywhere: every unit drops.
    let earlier: String = std::fs::read_to_string(fixture("responses.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["submission_id"] = json!(uuid::Uuid::new_v4());
            v["date"] =
                json!(v["date"].as_str().unwrap().replacen("2024", "2023", 1).replace("2023-02-29", "2023-02-28"));
            v["answers"]["A1"] = json!(1);
            format!("{v}\n")
        })
        .collect();
    sipas::imports::responses_jsonl(&app.state, &earlier).await.unwrap().unwrap();
    let token = app.login_as(Role::Analyst, None).await;
    let v: Value = app.get_as("/api/v1/rankings?period=2024&level=commune", &token).await.json().await.unwrap();
    assert_eq!(v["previous_from"], "2023-01-01");
    let rows = v["units"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let values: Vec<f64> = rows.iter().filter_map(|r| r["value"].as_f64()).collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "best first: {values:?}");
    assert_eq!(rows[0]["rank"], 1);
    let r = reference();
    for row in rows {
        let unit = row["unit"].as_str().unwrap();
        let want = r.expected["pooled"][unit]["index"].as_f64().unwrap();
        assert!((row["value"].as_f64().unwrap() - want).abs() < 1e-9, "{unit}");
        assert!(row["change"].as_f64().unwrap() > 0.0, "{unit} improved on 2023");
        assert!(row["previous_rank"].is_u64());
        let gaps: Vec<f64> = row["weakest"].as_array().unwrap().iter().map(|w| w["gap"].as_f64().unwrap()).collect();
        assert!(gaps.len() <= 3 && gaps.iter().all(|g| *g > 0.0) && gaps.windows(2).all(|w| w[0] >= w[1]), "{gaps:?}");
    }
    let v: Value = app.get_as("/api/v1/rankings?period=2024&level=district", &token).await.json().await.unwrap();
    let codes: Vec<&str> = v["units"].as_array().unwrap().iter().map(|r| r["unit"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 2);
}

#[tokio::test]
async fn trends_give_monthly_and_quarterly_points_that_add_up() {
    let app = spawn_app().await;
    app.import_reference().await;
    let token = app.login_as(Role::Analyst, None).await;
    let v: Value = app.get_as("/api/v1/trends?unit=QNM&period=2024", &token).await.json().await.unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 12);
    assert_eq!(points[0]["period"], "2024-01");
    assert_eq!(points.iter().map(|p| p["n"].as_u64().unwrap()).sum::<u64>(), 600);
    let q: Value =
        app.get_as("/api/v1/trends?unit=QNM&period=2024&interval=quarter", &token).await.json().await.unwrap();
    let quarters = q["points"].as_array().unwrap();
    assert_eq!(quarters.len(), 4);
    let r = reference();
    assert_eq!(quarters[0]["n"], r.expected["q1_pooled"]["QNM"]["n"]);
    let want = r.expected["q1_pooled"]["QNM"]["index"].as_f64().unwrap();
    assert!((quarters[0]["index"]["value"].as_f64().unwrap() - want).abs() < 1e-9);
}

#[tokio::test]
async fn volumes_weight_the_children_and_give_response_rates() {
    let app = spawn_app().await;
    app.import_reference().await;
    let admin = app.login_as(Role::Admin, None).await;
    let analyst = app.login_as(Role::Analyst, None).await;
    let entries = json!({"volumes": [
        {"unit": "QNM.TK.AM", "month": "2024-01", "dossiers": 300},
        {"unit": "QNM.TK.AM", "month": "2024-07", "dossiers": 300},
        {"unit": "QNM.TK.HH", "month": "2024-03", "dossiers": 200},
        {"unit": "QNM.TK.TT", "month": "2024-03", "dossiers": 100},
    ]});
    let res =
        app.client.put(app.url("/api/v1/admin/volumes")).bearer_auth(&analyst).json(&entries).send().await.unwrap();
    error_body(res, 403, "forbidden").await;
    let bad = json!({"volumes": [{"unit": "QNM.NOPE", "month": "2024-13", "dossiers": -1}]});
    let res = app.client.put(app.url("/api/v1/admin/volumes")).bearer_auth(&admin).json(&bad).send().await.unwrap();
    let out = error_body(res, 422, "validation_failed").await;
    for f in ["volumes[0].unit", "volumes[0].month", "volumes[0].dossiers"] {
        assert!(out["fields"][f].is_array(), "{f}: {out}");
    }
    let res = app.client.put(app.url("/api/v1/admin/volumes")).bearer_auth(&admin).json(&entries).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let listed: Value =
        app.get_as("/api/v1/admin/volumes?unit=QNM.TK&period=2024", &analyst).await.json().await.unwrap();
    assert_eq!(listed["volumes"].as_array().unwrap().len(), 4);

    let am = indices(&app, &analyst, "unit=QNM.TK.AM&period=2024").await;
    assert_eq!(am["volume"], 600);
    assert!((am["response_rate"].as_f64().unwrap() - 139.0 / 600.0).abs() < 1e-12);

    // QNM.TK.TT has 29 responses (≥ k) and a volume: three children weighted 600/200/100.
    let v = indices(&app, &analyst, "unit=QNM.TK&period=2024&rollup=volume_weighted").await;
    let r = reference();
    let idx = |u: &str| r.expected["pooled"][u]["index"].as_f64().unwrap();
    let want = (600.0 * idx("QNM.TK.AM") + 200.0 * idx("QNM.TK.HH") + 100.0 * idx("QNM.TK.TT")) / 900.0;
    assert!((v["index"]["value"].as_f64().unwrap() - want).abs() < 1e-9);
    // In 2024-Q1 only January and March count; QNM.TK.TT has a volume but 7 responses (< k).
    let v = indices(&app, &analyst, "unit=QNM.TK&period=2024-Q1&rollup=volume_weighted").await;
    let children = v["children"].as_array().unwrap();
    let used: Vec<&str> = children.iter().filter(|c| c["used"] == true).map(|c| c["unit"].as_str().unwrap()).collect();
    assert_eq!(used, ["QNM.TK.AM", "QNM.TK.HH"]);
    assert_eq!(children[0]["weight"], 300.0, "the July volume is outside Q1");

    let csv = "unit,month,dossiers\nQNM.SNV,2024-02,50\nQNM.NOPE,2024-02,5\n";
    let errors = sipas::imports::volumes_csv(&app.db, csv).await.unwrap().unwrap_err();
    assert!(errors.join("\n").contains("line 3: unit"), "{errors:?}");
}

#[tokio::test]
async fn index_queries_are_checked_and_scoped() {
    let app = spawn_app().await;
    app.import_reference().await;
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK")).await;
    // Without a unit, a unit_manager gets its own.
    let v = indices(&app, &manager, "period=2024").await;
    assert_eq!(v["unit"], "QNM.TK");
    assert_eq!(v["n"], 331);
    for q in ["unit=QNM&period=2024", "unit=QNM.HA.MA&period=2024"] {
        error_body(app.get_as(&format!("/api/v1/indices?{q}"), &manager).await, 403, "forbidden").await;
    }
    error_body(app.get_as("/api/v1/rankings?within=QNM&period=2024", &manager).await, 403, "forbidden").await;
    error_body(app.get_as("/api/v1/trends?unit=QNM.SNV", &manager).await, 403, "forbidden").await;
    let v: Value = app.get_as("/api/v1/rankings?period=2024", &manager).await.json().await.unwrap();
    assert_eq!(v["within"], "QNM.TK");
    assert_eq!(v["units"].as_array().unwrap().len(), 3);

    error_body(app.get("/api/v1/indices?period=2024").await, 401, "unauthorized").await;
    let admin = app.login_as(Role::Admin, None).await;
    let out = error_body(
        app.get_as(
            "/api/v1/indices?form=nope&period=2024-Q9&respondent_type=alien&channel=fax&rollup=max&breakdown=age&k=x",
            &admin,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    for f in ["form", "period", "respondent_type", "channel", "rollup", "breakdown", "k"] {
        assert!(out["fields"][f].is_array(), "{f}: {out}");
    }
    let out =
        error_body(app.get_as("/api/v1/indices?from=2024-05-01&to=2024-02-01", &admin).await, 422, "validation_failed")
            .await;
    assert!(out["fields"]["to"].is_array());
    let out =
        error_body(app.get_as("/api/v1/indices?from=2024-13-01&to=x", &admin).await, 422, "validation_failed").await;
    assert!(out["fields"]["from"].is_array() && out["fields"]["to"].is_array());
    error_body(app.get_as("/api/v1/indices?unit=QNM.NOPE", &admin).await, 404, "not_found").await;
    let out = error_body(app.get_as("/api/v1/rankings?level=galaxy", &admin).await, 422, "validation_failed").await;
    assert!(out["fields"]["level"].is_array());
    let out = error_body(app.get_as("/api/v1/trends?interval=week", &admin).await, 422, "validation_failed").await;
    assert!(out["fields"]["interval"].is_array());
}

#[tokio::test]
async fn a_bad_import_reports_lines_and_writes_nothing_and_a_repeat_adds_nothing() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let good = std::fs::read_to_string(fixture("responses.jsonl")).unwrap();
    let mut lines: Vec<String> = good.lines().take(5).map(String::from).collect();
    lines[1] = lines[1].replace("\"A1\": ", "\"A1\": 9, \"X\": ");
    lines[3] = "{not json".into();
    lines[4] = lines[4].replace("\"date\": \"2024", "\"date\": \"2099");
    let errors = sipas::imports::responses_jsonl(&app.state, &lines.join("\n")).await.unwrap().unwrap_err();
    let joined = errors.join("\n");
    assert!(
        joined.contains("line 2:") && joined.contains("line 4: not JSON") && joined.contains("line 5: date"),
        "{joined}"
    );
    assert!(!joined.contains("line 1:") && !joined.contains("line 3:"), "{joined}");
    assert_eq!(app.response_count().await, 0);
    assert!(sipas::store::tallies::snapshot(&app.db).await.unwrap().is_empty());

    assert_eq!(planner_rows(&app, "answers").await, None, "no statistics before any load");
    let report = sipas::imports::responses_jsonl(&app.state, &good).await.unwrap().unwrap();
    assert_eq!((report.created, report.already_present), (600, 0));
    // The planner knows the tables are no longer empty (a plan made for empty ones scans).
    let known = planner_rows(&app, "answers").await;
    assert!(known.is_some_and(|n| n > 0), "statistics not refreshed after the import: {known:?}");
    let report = sipas::imports::responses_jsonl(&app.state, &good).await.unwrap().unwrap();
    assert_eq!((report.created, report.already_present), (0, 600));
    assert_eq!(app.response_count().await, 600);
}

/// What the planner's statistics say of `table`: None when it was never analysed.
async fn planner_rows(app: &TestApp, table: &str) -> Option<i64> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = app.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!("SELECT reltuples::bigint AS n FROM pg_class WHERE relname = '{table}'"),
        _ => format!("SELECT count(*) AS n FROM sqlite_stat1 WHERE tbl = '{table}'"),
    };
    // SQLite has no sqlite_stat1 until the first ANALYZE.
    let row = app.db.query_one_raw(Statement::from_string(backend, sql)).await.ok().flatten()?;
    let n: i64 = row.try_get("", "n").ok()?;
    (n > 0).then_some(n)
}
