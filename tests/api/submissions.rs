//! `POST /api/v1/responses`: storage, idempotency and every way a body can be wrong; and
//! what the survey page's post and the paper import share with it (duplicate keys, NFC).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use sipas::entities::{answer, response};
use unicode_normalization::{UnicodeNormalization, is_nfc};
use uuid::Uuid;

use crate::helpers::{error_body, fixture, spawn_app, valid_submission};

#[tokio::test]
async fn valid_submission_returns_201_and_commits_the_response_with_its_answers() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let mut body = valid_submission("QNM.TK.AM");
    body["answers"]["E3"] = Value::Null;
    body["answers"]["B2"] = json!(2);
    body["comment"] = json!("Cán bộ nhiệt tình");
    body["service"] = json!("ho_tich");
    body["demographics"] = json!({"gender": "female", "age_band": "26-34"});

    let res = app.submit(&body).await;
    assert_eq!(res.status(), 201);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["submission_id"], body["submission_id"]);
    let id: Uuid = out["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 4, "response ids are random v4 UUIDs");

    let row = response::Entity::find_by_id(id).one(&app.db).await.unwrap().expect("stored");
    assert_eq!(row.survey_date, sipas::vietnam_today());
    assert_eq!(row.unit_id, sipas::store::units::by_code(&app.db, "QNM.TK.AM").await.unwrap().unwrap().id);
    assert_eq!((row.form_id.as_str(), row.form_version), ("sipas-2017", 1));
    assert_eq!(row.respondent_type, "citizen");
    assert_eq!(row.channel, "online");
    assert_eq!(row.service.as_deref(), Some("ho_tich"));
    assert_eq!(row.gender.as_deref(), Some("female"));
    assert_eq!(row.age_band.as_deref(), Some("26-34"));
    assert_eq!(row.comment.as_deref(), Some("Cán bộ nhiệt tình"));
    assert_ne!(row.submission_key, body["submission_id"].as_str().unwrap(), "only a hash of the key is kept");

    let answers = answer::Entity::find().filter(answer::Column::ResponseId.eq(id)).all(&app.db).await.unwrap();
    assert_eq!(answers.len(), 21, "the unanswered E3 is not stored");
    assert!(answers.iter().any(|a| a.item_code == "B2" && a.value == 2));
    assert!(!answers.iter().any(|a| a.item_code == "E3"));
}

#[tokio::test]
async fn replay_with_the_same_body_returns_200_and_the_same_id_and_stores_nothing_new() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let mut body = valid_submission("QNM.SNV");
    let first: Value = app.submit(&body).await.json().await.unwrap();
    // A null answer and a missing one are the same content.
    body["answers"]["Z9"] = Value::Null;
    body["answers"].as_object_mut().unwrap().remove("Z9");
    let res = app.submit(&body).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.response_count().await, 1);
    assert_eq!(app.answer_count().await, 22);
}

#[tokio::test]
async fn replay_with_another_body_returns_422_idempotency_mismatch() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let mut body = valid_submission("QNM.SNV");
    assert_eq!(app.submit(&body).await.status(), 201);
    body["answers"]["A1"] = json!(1);
    let res = app.submit(&body).await;
    error_body(res, 422, "idempotency_mismatch").await;
    assert_eq!(app.response_count().await, 1);
    let stored = answer::Entity::find().filter(answer::Column::ItemCode.eq("A1")).one(&app.db).await.unwrap().unwrap();
    assert_eq!(stored.value, 4, "the first answer stands");
}

#[tokio::test]
async fn concurrent_replays_of_one_key_store_exactly_one_response() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let body = valid_submission("QNM.TK.HH");
    let requests = (0..20).map(|_| app.submit(&body));
    let results = futures_util::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for res in results {
        let status = res.status().as_u16();
        assert!(status == 201 || status == 200, "status {status}");
        created += usize::from(status == 201);
        let out: Value = res.json().await.unwrap();
        ids.insert(out["id"].as_str().unwrap().to_string());
    }
    assert_eq!(created, 1, "exactly one 201");
    assert_eq!(ids.len(), 1, "every caller gets the same id");
    assert_eq!(app.response_count().await, 1);
    assert_eq!(app.answer_count().await, 22);
}

#[tokio::test]
async fn many_concurrent_distinct_submissions_are_all_committed() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let bodies: Vec<Value> = (0..40).map(|_| valid_submission("QNM.HA.MA")).collect();
    let results = futures_util::future::join_all(bodies.iter().map(|b| app.submit(b))).await;
    assert!(results.iter().all(|r| r.status() == 201), "no 'database is locked' under concurrency");
    assert_eq!(app.response_count().await, 40);
}

async fn assert_400_and_nothing_stored(raw: &str) -> Value {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let res = app
        .client
        .post(app.url("/api/v1/responses"))
        .header("content-type", "application/json")
        .body(raw.to_string())
        .send()
        .await
        .unwrap();
    let out = error_body(res, 400, "bad_request").await;
    assert_eq!(app.response_count().await, 0);
    out
}

#[tokio::test]
async fn malformed_json_returns_400() {
    assert_400_and_nothing_stored("{\"submission_id\": ").await;
    assert_400_and_nothing_stored("not json at all").await;
}

#[tokio::test]
async fn wrong_types_return_400() {
    let mut body = valid_submission("QNM.SNV");
    body["answers"]["A1"] = json!("five");
    assert_400_and_nothing_stored(&body.to_string()).await;
    let mut body = valid_submission("QNM.SNV");
    body["answers"]["A1"] = json!(4.5);
    assert_400_and_nothing_stored(&body.to_string()).await;
    let mut body = valid_submission("QNM.SNV");
    body["answers"] = json!([4, 4, 4]);
    assert_400_and_nothing_stored(&body.to_string()).await;
    let mut body = valid_submission("QNM.SNV");
    body["submission_id"] = json!("not-a-uuid");
    assert_400_and_nothing_stored(&body.to_string()).await;
    let mut body = valid_submission("QNM.SNV");
    body.as_object_mut().unwrap().remove("unit");
    assert_400_and_nothing_stored(&body.to_string()).await;
    // Fields the API does not know are refused rather than silently dropped.
    let mut body = valid_submission("QNM.SNV");
    body["ip_address"] = json!("1.2.3.4");
    assert_400_and_nothing_stored(&body.to_string()).await;
}

#[tokio::test]
async fn body_over_64_kib_returns_413_and_service_keeps_serving() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let mut body = valid_submission("QNM.SNV");
    body["comment"] = json!("x".repeat(70 * 1024));
    let res = app.submit(&body).await;
    error_body(res, 413, "payload_too_large").await;
    assert_eq!(app.response_count().await, 0);
    assert_eq!(app.submit(&valid_submission("QNM.SNV")).await.status(), 201);
}

#[tokio::test]
async fn wrong_content_type_returns_415() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/responses"))
        .header("content-type", "text/plain")
        .body(valid_submission("QNM.SNV").to_string())
        .send()
        .await
        .unwrap();
    error_body(res, 415, "unsupported_media_type").await;
}

/// Submits `body`, expects 422 validation_failed with exactly `fields` failing, and nothing stored.
async fn assert_422(body: Value, fields: &[&str]) {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let res = app.submit(&body).await;
    let out = error_body(res, 422, "validation_failed").await;
    let mut got: Vec<String> = out["fields"].as_object().unwrap().keys().cloned().collect();
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{out}");
    for f in fields {
        assert!(out["fields"][f].as_array().is_some_and(|m| !m.is_empty()), "{out}");
    }
    assert_eq!(app.response_count().await, 0);
    assert_eq!(app.answer_count().await, 0);
}

#[tokio::test]
async fn unknown_unit_returns_422() {
    assert_422(valid_submission("QNM.NOPE"), &["unit"]).await;
    assert_422(valid_submission("QNM\u{0}'; DROP TABLE units;--"), &["unit"]).await;
}

#[tokio::test]
async fn unknown_form_returns_422() {
    let mut body = valid_submission("QNM.SNV");
    body["form"] = json!("sipas-1999");
    assert_422(body, &["form"]).await;
}

#[tokio::test]
async fn form_the_unit_does_not_take_returns_422() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let token = app.login_as(sipas::auth::Role::Admin, None).await;
    let res = app
        .client
        .patch(app.url("/api/v1/admin/units/QNM.TK"))
        .bearer_auth(&token)
        .json(&json!({"forms": ["sipas-2023"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // QNM.TK.AM inherits its district's list now.
    let res = app.submit(&valid_submission("QNM.TK.AM")).await;
    let out = error_body(res, 422, "validation_failed").await;
    assert!(out["fields"]["form"].is_array(), "{out}");
    assert_eq!(app.response_count().await, 0);
    // Units elsewhere still take every form.
    assert_eq!(app.submit(&valid_submission("QNM.HA.MA")).await.status(), 201);
}

#[tokio::test]
async fn unknown_item_code_returns_422() {
    let mut body = valid_submission("QNM.SNV");
    body["answers"]["F1"] = json!(4);
    assert_422(body, &["answers.F1"]).await;
}

#[tokio::test]
async fn score_out_of_scale_returns_422() {
    let mut body = valid_submission("QNM.SNV");
    body["answers"]["A1"] = json!(0);
    body["answers"]["B3"] = json!(6);
    body["answers"]["C2"] = json!(-1);
    body["answers"]["D1"] = json!(99999999999u64);
    body["answers"]["E1"] = json!([4, 5]);
    assert_422(body, &["answers.A1", "answers.B3", "answers.C2", "answers.D1", "answers.E1"]).await;
}

#[tokio::test]
async fn respondent_type_not_allowed_by_the_form_returns_422() {
    // sipas-2023 is for citizens only.
    let mut body = valid_submission("QNM.SNV");
    body["form"] = json!("sipas-2023");
    body["answers"] = json!({"GT1": 4, "A1": 5});
    body["respondent_type"] = json!("organization");
    assert_422(body, &["respondent_type"]).await;
    let mut body = valid_submission("QNM.SNV");
    body["respondent_type"] = json!("alien");
    body["channel"] = json!("carrier_pigeon");
    assert_422(body, &["respondent_type", "channel"]).await;
}

#[tokio::test]
async fn comment_over_2000_characters_returns_422_counting_characters_not_bytes() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    // 2,000 Vietnamese characters are about 5,000 bytes: still allowed.
    let mut body = valid_submission("QNM.SNV");
    body["comment"] = json!("ệ".repeat(2000));
    assert_eq!(app.submit(&body).await.status(), 201);
    let mut body = valid_submission("QNM.SNV");
    body["comment"] = json!("ệ".repeat(2001));
    let out = error_body(app.submit(&body).await, 422, "validation_failed").await;
    assert!(out["fields"]["comment"].is_array(), "{out}");
    assert_eq!(app.response_count().await, 1);
}

#[tokio::test]
async fn every_item_unanswered_returns_422() {
    let mut body = valid_submission("QNM.SNV");
    for (_, v) in body["answers"].as_object_mut().unwrap().iter_mut() {
        *v = Value::Null;
    }
    assert_422(body, &["answers"]).await;
    let mut body = valid_submission("QNM.SNV");
    body["answers"] = json!({});
    assert_422(body, &["answers"]).await;
}

#[tokio::test]
async fn every_failing_field_is_listed_at_once() {
    let mut body = valid_submission("QNM.SNV");
    body["answers"]["B3"] = json!(7);
    body["answers"]["X1"] = json!(3);
    body["channel"] = json!("fax");
    body["comment"] = json!("a".repeat(2001));
    body["service"] = json!("space_travel");
    body["demographics"] = json!({"age_band": "12-15", "ethnicity": "kinh"});
    assert_422(
        body,
        &[
            "answers.B3",
            "answers.X1",
            "channel",
            "comment",
            "service",
            "demographics.age_band",
            "demographics.ethnicity",
        ],
    )
    .await;
}

#[tokio::test]
async fn control_characters_are_removed_from_comments_on_every_database() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let mut body = valid_submission("QNM.SNV");
    body["comment"] = json!("  Tốt\u{0}\u{7} lắm\nCảm ơn  ");
    let out: Value = app.submit(&body).await.json().await.unwrap();
    let id: Uuid = out["id"].as_str().unwrap().parse().unwrap();
    let row = response::Entity::find_by_id(id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(row.comment.as_deref(), Some("Tốt lắm\nCảm ơn"));
}

#[tokio::test]
async fn multiple_choice_questions_take_lists_on_the_2023_form() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let body = json!({
        "submission_id": Uuid::new_v4(), "unit": "QNM.TK.AM", "form": "sipas-2023",
        "respondent_type": "citizen", "channel": "kiosk",
        "answers": {"GT1": 5, "A1": 4, "MD3": 3, "KENH": [1, 4], "GAY_KHO": 1}
    });
    assert_eq!(app.submit(&body).await.status(), 201);
    assert_eq!(app.answer_count().await, 6);
    let mut dup = body.clone();
    dup["submission_id"] = json!(Uuid::new_v4());
    dup["answers"]["KENH"] = json!([2, 2]);
    dup["answers"]["GAY_KHO"] = json!([1, 2]);
    let out = error_body(app.submit(&dup).await, 422, "validation_failed").await;
    assert!(out["fields"]["answers.KENH"].is_array() && out["fields"]["answers.GAY_KHO"].is_array(), "{out}");
}

/// serde's map keeps the last of two equal keys: `{"A1": 1, "A1": 5}` would store 5 and
/// hide the first answer. Each is refused with 400 naming the key, at every level.
#[tokio::test]
async fn duplicate_keys_in_answers_demographics_or_the_body_return_400_naming_them_and_store_nothing() {
    let raw = valid_submission("QNM.SNV").to_string();
    assert!(raw.contains("\"A1\":4"), "{raw}");
    let out = assert_400_and_nothing_stored(&raw.replacen("\"A1\":4", "\"A1\":1,\"A1\":4", 1)).await;
    assert!(out["message"].as_str().unwrap().contains("`answers.A1` is given twice"), "{out}");
    // A null first is still a second answer to the same item.
    let out = assert_400_and_nothing_stored(&raw.replacen("\"A1\":4", "\"A1\":null,\"A1\":4", 1)).await;
    assert!(out["message"].as_str().unwrap().contains("`answers.A1` is given twice"), "{out}");

    let mut body = valid_submission("QNM.SNV");
    body["demographics"] = json!({"gender": "female"});
    let raw = body.to_string().replacen("\"gender\":\"female\"", "\"gender\":\"female\",\"gender\":\"male\"", 1);
    let out = assert_400_and_nothing_stored(&raw).await;
    assert!(out["message"].as_str().unwrap().contains("`demographics.gender` is given twice"), "{out}");

    let raw = valid_submission("QNM.SNV").to_string();
    let out = assert_400_and_nothing_stored(&raw.replacen("\"unit\":", "\"unit\":\"QNM.NOPE\",\"unit\":", 1)).await;
    assert!(out["message"].as_str().unwrap().contains("duplicate field `unit`"), "{out}");
    let out = assert_400_and_nothing_stored(&raw.replacen("{", "{\"comment\":\"a\",\"comment\":\"b\",", 1)).await;
    assert!(out["message"].as_str().unwrap().contains("duplicate field `comment`"), "{out}");

    // Demographics given as null are the same as none.
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let mut body = valid_submission("QNM.SNV");
    body["demographics"] = Value::Null;
    assert_eq!(app.submit(&body).await.status(), 201);
}

/// `n` letters of Vietnamese as a reader counts them, composed (NFC), not ending in a space.
fn vietnamese(n: usize) -> String {
    let phrase = "Cán bộ hướng dẫn tận tình, thủ tục nhanh gọn; nhưng phòng chờ thiếu ghế ngồi. ";
    let text: String = phrase.chars().cycle().take(n - 1).chain(['ệ']).collect();
    assert!(is_nfc(&text) && text.chars().count() == n);
    text
}

/// Decomposed input (base letter + combining marks, as some Vietnamese keyboards type it)
/// counts as it reads and is stored composed; the limit stays 2,000 letters.
#[tokio::test]
async fn a_decomposed_vietnamese_comment_counts_letters_as_read_and_is_stored_as_nfc() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let composed = vietnamese(2000);
    let decomposed: String = composed.nfd().collect();
    assert!(decomposed.chars().count() > 2600, "the decomposed text is far longer in code points");
    let mut body = valid_submission("QNM.SNV");
    body["comment"] = json!(decomposed);
    let res = app.submit(&body).await;
    assert_eq!(res.status(), 201);
    let out: Value = res.json().await.unwrap();
    let id: Uuid = out["id"].as_str().unwrap().parse().unwrap();
    let row = response::Entity::find_by_id(id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(row.comment.as_deref(), Some(composed.as_str()), "stored composed");

    // The same text composed is the same content: a replay, not a mismatch.
    body["comment"] = json!(composed);
    assert_eq!(app.submit(&body).await.status(), 200);

    let mut body = valid_submission("QNM.SNV");
    body["comment"] = json!(vietnamese(2001).nfd().collect::<String>());
    let out = error_body(app.submit(&body).await, 422, "validation_failed").await;
    let fields: Vec<&String> = out["fields"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["comment"], "{out}");
    assert_eq!(app.response_count().await, 1);
}

/// The survey page's post goes through the same validation: decomposed text is stored
/// composed, and the textarea lets a decomposed 2,000-letter comment through.
#[tokio::test]
async fn the_survey_page_stores_a_decomposed_comment_as_nfc() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let html = app.get("/s/QNM.TK.AM").await.text().await.unwrap();
    let composed = vietnamese(2000);
    let decomposed: String = composed.nfd().collect();
    let textarea = html.split("<textarea").nth(1).unwrap();
    let maxlength: usize = textarea
        .split("maxlength=")
        .nth(1)
        .unwrap()
        .trim_start_matches('"')
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(maxlength >= decomposed.encode_utf16().count(), "the browser would cut the comment at {maxlength} units");
    let mut form: Vec<(String, String)> = vec![
        ("submission_id".into(), Uuid::new_v4().to_string()),
        ("form".into(), "sipas-2017".into()),
        ("respondent_type".into(), "citizen".into()),
        ("comment".into(), decomposed),
    ];
    form.push(("A1".into(), "4".into()));
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let rows = response::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].comment.as_deref(), Some(composed.as_str()));

    // A one-level item sent twice (a tampered page) is refused on the page, not cut to one.
    form[0].1 = Uuid::new_v4().to_string();
    form.push(("A1".into(), "1".into()));
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Chỉ chọn một mức."), "the item says why");
    assert_eq!(app.response_count().await, 1);
}

/// Paper forms keyed in through `sipas responses import` take the same path: a duplicate
/// key on a line is reported for that line and nothing is imported; a decomposed comment is
/// stored composed; a field the body does not know is still refused.
#[tokio::test]
async fn the_paper_import_refuses_duplicate_keys_and_stores_comments_as_nfc() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let good: Vec<String> =
        std::fs::read_to_string(fixture("responses.jsonl")).unwrap().lines().take(3).map(String::from).collect();
    let mut lines = good.clone();
    lines[0] = lines[0].replacen("\"A1\": ", "\"A1\": 1, \"A1\": ", 1);
    lines[1] = lines[1].replacen("\"date\": ", "\"ip\": \"1.2.3.4\", \"date\": ", 1);
    lines[2] = lines[2].replacen("\"date\": ", "\"date\": \"2024-01-02\", \"date\": ", 1);
    let errors = sipas::imports::responses_jsonl(&app.state, &lines.join("\n")).await.unwrap().unwrap_err();
    let joined = errors.join("\n");
    assert!(joined.contains("line 1: `answers.A1` is given twice"), "{joined}");
    assert!(joined.contains("line 2: unknown field `ip`"), "{joined}");
    assert!(joined.contains("line 3: duplicate field `date`"), "{joined}");
    assert_eq!(app.response_count().await, 0);

    let composed = vietnamese(2000);
    let mut line: Value = serde_json::from_str(&good[0]).unwrap();
    line["comment"] = json!(composed.nfd().collect::<String>());
    let report = sipas::imports::responses_jsonl(&app.state, &line.to_string()).await.unwrap().unwrap();
    assert_eq!(report.created, 1);
    let rows = response::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows[0].comment.as_deref(), Some(composed.as_str()));
}
