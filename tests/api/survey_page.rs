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

/// The response head as it travels, from a plain socket.
async fn raw_head(app: &crate::helpers::TestApp, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap();
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a head");
    String::from_utf8_lossy(&all[..end]).to_string()
}

async fn gzip_page(app: &crate::helpers::TestApp, path: &str) -> (reqwest::header::HeaderMap, String) {
    use std::io::Read as _;
    let res = app.client.get(app.url(path)).header("accept-encoding", "gzip, deflate, br").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    let body = res.bytes().await.unwrap();
    assert_eq!(headers["content-encoding"], "gzip", "{path}");
    let mut html = String::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut html).expect("a valid gzip stream (CRC, length)");
    (headers, html)
}

#[tokio::test]
async fn the_compressed_page_is_rendered_once_and_differs_per_request_only_in_its_id_and_token() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let plain = app.get("/s/QNM.TK.AM").await.text().await.unwrap();
    let (headers, first) = gzip_page(&app, "/s/QNM.TK.AM").await;
    let (_, second) = gzip_page(&app, "/s/QNM.TK.AM").await;
    // One body with its length, not chunks (what stalled keep-alive connections before).
    let head = raw_head(&app, "/s/QNM.TK.AM").await.to_ascii_lowercase();
    assert!(head.contains("content-length:") && !head.contains("chunked"), "{head}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(headers["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"));
    let (id1, id2) = (hidden(&first, "submission_id"), hidden(&second, "submission_id"));
    assert_ne!(id1, id2, "every page names a new submission");
    assert!(uuid::Uuid::parse_str(&id1).is_ok_and(|u| u.get_version_num() == 4), "{id1}");
    let token = hidden(&second, "t");
    assert!(
        sipas::reach::limits::seconds_since(&app.state.form_secret, &token, chrono::Utc::now().timestamp_millis())
            .is_some_and(|s| s < 5),
        "a fresh, valid token: {token}"
    );
    let blank = |html: &str| html.replace(&hidden(html, "submission_id"), "ID").replace(&hidden(html, "t"), "T");
    assert_eq!(blank(&first), blank(&second));
    assert_eq!(blank(&first), blank(&plain), "the compressed page is the page");
    // English is its own page; a receipt code in the link is rendered for that request.
    let (_, english) = gzip_page(&app, "/s/QNM.TK.AM?lang=en").await;
    assert!(english.contains("<html lang=\"en\">"));
    let (_, invited) = gzip_page(&app, "/s/QNM.TK.AM?code=ABCD-EFGH-JK").await;
    assert!(invited.contains("value=\"ABCD-EFGH-JK\""), "the invitation's code travels along");
    let (_, again) = gzip_page(&app, "/s/QNM.TK.AM").await;
    assert!(!again.contains("ABCD-EFGH-JK"), "one request's code never reaches the cached page");

    // A submission posted from the compressed page is stored like any other.
    let mut form: Vec<(String, String)> = vec![
        ("submission_id".into(), hidden(&again, "submission_id")),
        ("t".into(), hidden(&again, "t")),
        ("form".into(), "sipas-2017".into()),
        ("respondent_type".into(), "citizen".into()),
    ];
    form.extend(CODES_2017.iter().map(|c| (c.to_string(), "4".to_string())));
    let res = app.client.post(app.url("/s/QNM.TK.AM")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(app.response_count().await, 1);

    // A renamed unit's page follows within a second.
    let admin = app.login_as(sipas::auth::Role::Admin, None).await;
    let res = app
        .patch_as("/api/v1/admin/units/QNM.TK.AM", &admin, &serde_json::json!({"name_vi": "Phường An Mỹ Mới"}))
        .await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, renamed) = gzip_page(&app, "/s/QNM.TK.AM").await;
    assert!(renamed.contains("Phường An Mỹ Mới"), "the cached page outlived the unit's name");
}
