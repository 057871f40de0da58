//! The public survey page `/s/{unit_code}`, with JavaScript off (plain HTTP forms).

use sea_orm::EntityTrait;
use sipas::entities::response;

use crate::helpers::{between, spawn_app};

const CODES_2017: [&str; 22] = [
    "A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "B5", "C1", "C2", "C3", "C4", "C5", "C6", "D1", "D2", "D3", "E1",
    "E2", "E3", "E4",
];

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).expect("hidden field");
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn survey_page_shows_the_form_in_vietnamese_with_five_labelled_levels_and_no_answer() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let res = app.get("/s/QNM.TK.AM").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"vi\">"));
    assert!(html.contains("Phường An Mỹ"));
    for code in CODES_2017 {
        assert!(html.contains(&format!("name={code} value=5>")), "item {code} has its levels");
        assert!(html.contains(&format!("name={code} value=\"\"")), "item {code} allows no answer");
    }
    for label in ["Rất không hài lòng", "Không hài lòng", "Bình thường", "Hài lòng", "Rất hài lòng", "Không trả lời"]
    {
        assert!(html.contains(label), "{label}");
    }
    assert!(html.contains("Nơi ngồi chờ có đủ chỗ ngồi"));
    assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'sha256-"), "{csp}");
}

#[tokio::test]
async fn survey_page_is_under_30_kb_with_its_script_and_makes_no_external_request() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let script = app.get("/s/app.js").await;
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    let script = script.text().await.unwrap();
    assert!(script.contains("/api/v1/responses"));
    // The 2017 form (the default) with its script stays under 30 KB; the 2023 form asks 55
    // questions, each with its quiet "no answer", and is allowed 40 KB.
    for (path, budget) in [("/s/QNM.TK.AM", 30), ("/s/QNM.TK.AM?lang=en", 30), ("/s/QNM.TK.AM?form=sipas-2023", 40)] {
        let res = app.get(path).await;
        let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
        let html = res.text().await.unwrap();
        let total = html.len() + script.len();
        assert!(total < budget * 1024, "{path} is {total} bytes with its script");
        assert_eq!(html.matches("<script").count(), 1, "{path}: one script, our own");
        assert!(html.contains("<script src=\"/s/app.js?v="), "{path}");
        assert!(!html.contains("http://") && !html.contains("https://"), "{path}: no external reference");
        assert!(!html.contains("<link") && !html.contains("<img"), "{path}");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    }
}

#[tokio::test]
async fn english_version_with_lang_en() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let html = app.get("/s/QNM.TK.AM?lang=en").await.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("Very dissatisfied") && html.contains("No answer"));
    assert!(html.contains("The waiting area has enough seats"));
    assert!(html.contains("action=\"/s/QNM.TK.AM?lang=en"));
}

#[tokio::test]
async fn posting_the_page_stores_the_response_and_thanks_the_citizen() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let html = app.get("/s/QNM.TK.AM").await.text().await.unwrap();
    let sid = hidden(&html, "submission_id");
    let mut form: Vec<(String, String)> = vec![
        ("submission_id".into(), sid.clone()),
        ("form".into(), "sipas-2017".into()),
        ("respondent_type".into(), "citizen".into()),
        ("service".into(), "dat_dai".into()),
        ("comment".into(), "Rất tốt".into()),
        ("age_band".into(), "35-49".into()),
        ("gender".into(), "".into()),
    ];
    for code in CODES_2017 {
        form.push((code.into(), if code == "E3" { String::new() } else { "5".into() }));
    }
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let page = res.text().await.unwrap();
    assert!(page.contains("Cảm ơn"), "{page}");
    let rows = response::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].channel, "online");
    assert_eq!(rows[0].service.as_deref(), Some("dat_dai"));
    assert_eq!(rows[0].age_band.as_deref(), Some("35-49"));
    assert_eq!(rows[0].gender, None);
    assert_eq!(app.answer_count().await, 21);

    // Pressing "send" again (or a refresh of the POST) stores nothing new.
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Cảm ơn"));
    assert_eq!(app.response_count().await, 1);
}

#[tokio::test]
async fn a_page_with_problems_comes_back_with_inline_messages_and_the_answers_kept() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let form = vec![
        ("submission_id", uuid::Uuid::new_v4().to_string()),
        ("form", "sipas-2017".into()),
        ("A1", "4".into()),
        ("B2", "9".into()),
        ("comment", "Giữ lại ý kiến này <b>".into()),
    ];
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "an error summary");
    assert!(html.contains("Vui lòng chọn người dân hoặc tổ chức."), "respondent type is required");
    assert!(html.contains("Chọn một mức từ 1 đến 5."), "B2 is off the scale");
    assert!(html.contains("name=A1 value=4 checked"), "the answer to A1 is kept");
    assert!(html.contains("Giữ lại ý kiến này &lt;b&gt;"), "the comment is kept, escaped");
    assert!(html.contains("id=q-B2 class=x"), "the failing row is marked");
    assert_eq!(app.response_count().await, 0);
}

#[tokio::test]
async fn unknown_unit_or_form_shows_a_404_page() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    for path in ["/s/QNM.NOPE", "/s/QNM.TK.AM?form=sipas-1999", "/s/%00%27"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert!(res.text().await.unwrap().contains("Không tìm thấy"));
    }
    let res = app.client.post(app.url("/s/QNM.NOPE")).form(&[("A1", "4")]).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(app.response_count().await, 0);
}

#[tokio::test]
async fn the_2023_form_asks_citizens_only_and_offers_the_other_questions() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let html = app.get("/s/QNM.TK.AM?form=sipas-2023").await.text().await.unwrap();
    assert!(!html.contains("name=respondent_type"), "citizens only: nothing to choose");
    assert!(html.contains("type=checkbox name=KENH"));
    assert!(html.contains("name=MD10 value=3>"));
    let sid = hidden(&html, "submission_id");
    let form = vec![
        ("submission_id", sid),
        ("form", "sipas-2023".to_string()),
        ("GT1", "5".into()),
        ("KENH", "1".into()),
        ("KENH", "3".into()),
    ];
    let res = app.client.post(app.url("/s/QNM.TK.AM?form=sipas-2023")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(app.answer_count().await, 3);
}

#[tokio::test]
async fn an_oversized_form_post_gets_413_and_stores_nothing() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let form = vec![("form", "sipas-2017".to_string()), ("A1", "4".into()), ("comment", "x".repeat(70 * 1024))];
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    crate::helpers::error_body(res, 413, "payload_too_large").await;
    assert_eq!(app.response_count().await, 0);
}

#[tokio::test]
async fn sending_the_same_page_again_with_other_answers_keeps_the_first_and_says_so() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let sid = uuid::Uuid::new_v4().to_string();
    let mut form = vec![
        ("submission_id", sid.clone()),
        ("form", "sipas-2017".to_string()),
        ("respondent_type", "citizen".into()),
        ("A1", "5".into()),
    ];
    assert_eq!(app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap().status(), 201);
    form[3] = ("A1", "1".into());
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("không được ghi nhận"));
    assert_eq!(app.response_count().await, 1);
}

#[tokio::test]
async fn the_service_worker_may_fetch_and_names_its_cache_after_the_build() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let res = app.get("/s/sw.js").await;
    assert_eq!(res.status(), 200);
    // The worker runs under its own script's policy: it must be allowed to fetch this site.
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("connect-src 'self'") && !csp.contains("*"), "{csp}");
    let worker = res.text().await.unwrap();
    let html = app.get("/s/QNM.TK.AM").await.text().await.unwrap();
    let version = between(&html, "/s/app.js?v=", "\"").expect("a versioned script");
    assert!(version.len() == 12 && version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
    assert!(worker.contains(&format!("PREFIX + '{version}'")), "the cache is named after the build");
    assert!(!worker.contains("__VERSION__"));
    assert_eq!(app.get(&format!("/s/app.js?v={version}")).await.status(), 200);
}

#[tokio::test]
async fn a_page_reopened_a_day_later_is_accepted_and_not_flagged() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    // The page a phone kept yesterday carries yesterday's token: slow is not suspicious.
    let now = chrono::Utc::now().timestamp_millis();
    let token = sipas::reach::limits::form_token(&app.state.form_secret, now - 24 * 3600 * 1000);
    let form = vec![
        ("submission_id", uuid::Uuid::new_v4().to_string()),
        ("form", "sipas-2017".to_string()),
        ("t", token),
        ("respondent_type", "citizen".into()),
        ("A1", "4".into()),
    ];
    assert_eq!(app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap().status(), 201);
    let rows = response::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].flagged, "a day-old page is not flagged");
}

#[tokio::test]
async fn citizens_read_texts_not_item_codes_and_nothing_is_chosen_for_them() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    for path in ["/s/QNM.TK.AM", "/s/QNM.TK.AM?lang=en", "/s/QNM.TK.AM?form=sipas-2023"] {
        let html = app.get(path).await.text().await.unwrap();
        let form = if path.contains("2023") { "sipas-2023" } else { "sipas-2017" };
        let form = &app.state.forms.get(form).unwrap().form;
        for (code, _, _) in form.answerables() {
            assert!(
                !html.contains(&format!(">{code}. ")) && !html.contains(&format!("{code}.")),
                "{path}: {code} shown"
            );
        }
        assert!(
            html.contains("Nơi ngồi chờ") || html.contains("waiting area") || html.contains("gây phiền hà"),
            "{path}"
        );
        assert!(!html.contains(" checked"), "{path}: nothing is chosen before the citizen chooses");
    }
    // A question with a problem is named by its text in the summary, not by its code.
    let form = [("submission_id", uuid::Uuid::new_v4().to_string()), ("form", "sipas-2017".into()), ("B2", "9".into())];
    let html = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap().text().await.unwrap();
    let summary = between(&html, "role=\"alert\"", "</div>").unwrap();
    assert!(!summary.contains(">B2<") && !summary.contains("B2:"), "{summary}");
}

#[tokio::test]
async fn the_page_poster_and_invitation_state_the_size_and_time_of_the_units_form() {
    let smtp = crate::helpers::SmtpServer::start();
    let app = crate::helpers::spawn_app_with(|s| {
        crate::helpers::with_smtp(s, &smtp);
        s.cookie_secure = false;
    })
    .await;
    app.seed_reference_units().await;
    let admin = app.login_as(sipas::auth::Role::Admin, None).await;
    // QNM.TK.AM's link opens the 2023 form (55 questions), QNM.TK.HH's the 2017 one (22).
    let res =
        app.patch_as("/api/v1/admin/units/QNM.TK.AM", &admin, &serde_json::json!({"forms": ["sipas-2023"]})).await;
    assert_eq!(res.status(), 200);
    let long = "55 câu hỏi, khoảng 8 phút";
    let short = "22 câu hỏi, khoảng 4 phút";
    let page = app.get("/s/QNM.TK.AM").await.text().await.unwrap();
    assert!(page.contains(long), "the survey page says it up front");
    assert!(app.get("/s/QNM.TK.HH").await.text().await.unwrap().contains(short));
    let (client, _) = crate::helpers::console_client(&app, sipas::auth::Role::UnitManager, Some("QNM.TK")).await;
    for (unit, time) in [("QNM.TK.AM", long), ("QNM.TK.HH", short)] {
        let poster = client.get(app.url(&format!("/console/units/{unit}/poster"))).send().await.unwrap();
        let html = poster.text().await.unwrap();
        assert!(html.contains(time) && !html.contains("3 phút"), "{unit}: {html}");
    }
    for unit in ["QNM.TK.AM", "QNM.TK.HH"] {
        let key: serde_json::Value = app
            .post_as(
                &format!("/api/v1/admin/units/{unit}/keys"),
                &admin,
                &serde_json::json!({"kind": "office", "name": "Một cửa"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let res = app
            .client
            .post(app.url(&format!("/api/v1/units/{unit}/invitations")))
            .header("x-api-key", key["key"].as_str().unwrap())
            .json(&serde_json::json!({"emails": [format!("{unit}@example.vn")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
    }
    let mails = smtp.wait_for(2, 15).await;
    for (unit, time) in [("QNM.TK.AM", long), ("QNM.TK.HH", short)] {
        let (_, _, body) = mails.iter().find(|m| m.0 == format!("{unit}@example.vn")).unwrap();
        assert!(body.contains(time) && !body.contains("3 phút"), "{unit}: {body}");
    }
}
