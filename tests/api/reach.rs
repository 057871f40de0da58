//! Reaching citizens over HTTP: receipt codes, invitations, kiosks, QR codes, abuse limits.

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use sipas::auth::Role;
use sipas::entities::{code, outbox, response};

use crate::helpers::{
    SmtpServer, TestApp, between, error_body, spawn_app, spawn_app_with, valid_submission, with_smtp,
};

async fn office_key(app: &TestApp, admin: &str, unit: &str, kind: &str) -> Value {
    let res = app
        .post_as(&format!("/api/v1/admin/units/{unit}/keys"), admin, &json!({"kind": kind, "name": "Phần mềm một cửa"}))
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn codes_with_key(app: &TestApp, unit: &str, key: &str, count: u32) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/units/{unit}/codes")))
        .header("x-api-key", key)
        .json(&json!({"count": count}))
        .send()
        .await
        .unwrap()
}

async fn require_code(app: &TestApp, admin: &str, unit: &str) {
    let res = app.patch_as(&format!("/api/v1/admin/units/{unit}"), admin, &json!({"requires_code": true})).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn office_software_gets_codes_that_unlock_one_response_each() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let admin = app.login_as(Role::Admin, None).await;
    let key = office_key(&app, &admin, "QNM.TK.AM", "office").await;
    let key = key["key"].as_str().unwrap();
    let res = codes_with_key(&app, "QNM.TK.AM", key, 5).await;
    assert_eq!(res.status(), 201);
    let issued: Value = res.json().await.unwrap();
    let codes: Vec<String> =
        issued["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 5);
    assert!(codes.iter().all(|c| c.len() == 11 && c.chars().nth(4) == Some('-')));
    assert!(issued["survey_url"].as_str().unwrap().ends_with("/s/QNM.TK.AM"));
    // Stored only as hashes.
    let stored = code::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|s| !codes.iter().any(|c| s.code_hash.contains(&c.replace('-', "")))));

    // The key works for its own unit only; other callers as their roles allow.
    error_body(codes_with_key(&app, "QNM.TK.HH", key, 1).await, 403, "forbidden").await;
    error_body(codes_with_key(&app, "QNM.TK.AM", "office_wrong", 1).await, 401, "unauthorized").await;
    let analyst = app.login_as(Role::Analyst, None).await;
    error_body(app.post_as("/api/v1/units/QNM.TK.AM/codes", &analyst, &json!({"count": 1})).await, 403, "forbidden")
        .await;
    let manager = app.login_as(Role::UnitManager, Some("QNM.TK")).await;
    assert_eq!(app.post_as("/api/v1/units/QNM.TK.AM/codes", &manager, &json!({"count": 1})).await.status(), 201);
    error_body(app.post_as("/api/v1/units/QNM.HA/codes", &manager, &json!({"count": 1})).await, 403, "forbidden").await;
    error_body(codes_with_key(&app, "QNM.TK.AM", key, 5000).await, 422, "validation_failed").await;

    require_code(&app, &admin, "QNM.TK.AM").await;
    let body = valid_submission("QNM.TK.AM");
    let out = error_body(app.submit(&body).await, 422, "validation_failed").await;
    assert!(out["fields"]["code"].is_array(), "a code is required: {out}");
    // Saying "kiosk" in the body grants nothing: only an enrolled kiosk's cookie does.
    let before = app.response_count().await;
    let mut claims_kiosk = valid_submission("QNM.TK.AM");
    claims_kiosk["channel"] = json!("kiosk");
    let out = error_body(app.submit(&claims_kiosk).await, 422, "validation_failed").await;
    assert!(out["fields"]["code"].is_array(), "a plain API post naming the kiosk channel still needs a code: {out}");
    assert_eq!(app.response_count().await, before, "nothing stored");
    // A typo is caught by the check character, before any lookup.
    let mut typo = body.clone();
    let mut chars: Vec<char> = codes[0].chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    typo["code"] = json!(chars.into_iter().collect::<String>());
    let out = error_body(app.submit(&typo).await, 422, "validation_failed").await;
    assert!(out["fields"]["code"][0].as_str().unwrap().contains("typo"), "{out}");

    let mut ok = body.clone();
    ok["code"] = json!(codes[0].to_lowercase());
    assert_eq!(app.submit(&ok).await.status(), 201);
    assert_eq!(app.submit(&ok).await.status(), 200, "a retry of the same submission is a replay, not a second use");
    let mut again = valid_submission("QNM.TK.AM");
    again["code"] = json!(codes[0]);
    let out = error_body(app.submit(&again).await, 422, "validation_failed").await;
    assert!(out["fields"]["code"][0].as_str().unwrap().contains("used"), "{out}");
    // A code of one unit does not open another.
    let mut elsewhere = valid_submission("QNM.TK.HH");
    elsewhere["code"] = json!(codes[1]);
    error_body(app.submit(&elsewhere).await, 422, "validation_failed").await;
    assert_eq!(app.response_count().await, 1);
    // The used code is gone; nothing records when or for what.
    assert_eq!(code::Entity::find().count(&app.db).await.unwrap(), 5);
}

#[tokio::test]
async fn fifty_concurrent_submissions_with_one_code_store_exactly_one() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let admin = app.login_as(Role::Admin, None).await;
    require_code(&app, &admin, "QNM.TK.HH").await;
    let issued: Value =
        app.post_as("/api/v1/units/QNM.TK.HH/codes", &admin, &json!({"count": 1})).await.json().await.unwrap();
    let the_code = issued["codes"][0].as_str().unwrap().to_string();
    let bodies: Vec<Value> = (0..50)
        .map(|_| {
            let mut b = valid_submission("QNM.TK.HH");
            b["code"] = json!(the_code);
            b
        })
        .collect();
    let results = futures_util::future::join_all(bodies.iter().map(|b| app.submit(b))).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 49, "{statuses:?}");
    assert_eq!(app.response_count().await, 1);
    assert_eq!(code::Entity::find().count(&app.db).await.unwrap(), 0);
    println!("concurrent code test: 50 submissions, 1 stored (201), 49 refused (422)");
}

#[tokio::test]
async fn expired_codes_do_not_open_the_survey() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let unit = sipas::store::units::by_code(&app.db, "QNM.SNV").await.unwrap().unwrap();
    let yesterday = sipas::vietnam_today() - chrono::TimeDelta::days(1);
    let codes = sipas::reach::codes::issue(&app.db, unit.id, 1, yesterday).await.unwrap();
    let mut body = valid_submission("QNM.SNV");
    body["code"] = json!(codes[0]);
    error_body(app.submit(&body).await, 422, "validation_failed").await;
    assert_eq!(sipas::reach::codes::purge_expired(&app.db, sipas::vietnam_today()).await.unwrap(), 1);
}

#[tokio::test]
async fn invitations_arrive_with_a_one_time_link_and_leave_no_address_behind() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(|s| with_smtp(s, &smtp)).await;
    app.seed_reference_units().await;
    let admin = app.login_as(Role::Admin, None).await;
    let key = office_key(&app, &admin, "QNM.HA.MA", "office").await;
    let key = key["key"].as_str().unwrap();
    let invite = |emails: Value| {
        app.client
            .post(app.url("/api/v1/units/QNM.HA.MA/invitations"))
            .header("x-api-key", key)
            .json(&json!({"emails": emails}))
            .send()
    };
    let out = error_body(
        invite(json!(["a@example.vn", "not an address", "b@example.vn"])).await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert!(out["fields"]["emails[1]"].is_array());
    assert_eq!(outbox::Entity::find().count(&app.db).await.unwrap(), 0, "nothing queued for a bad list");
    let res = invite(json!(["an.nguyen@example.vn", "binh.tran@example.vn"])).await.unwrap();
    assert_eq!(res.status(), 202);
    let mails = smtp.wait_for(2, 15).await;
    assert_eq!(mails.len(), 2);
    let (to, subject, body) = mails.iter().find(|m| m.0 == "an.nguyen@example.vn").unwrap();
    assert_eq!(to, "an.nguyen@example.vn");
    assert!(subject.contains("Phường Minh An"), "{subject}");
    assert!(body.contains("không ghi tên"), "{body}");
    let link_code = between(body, "/s/QNM.HA.MA?code=", "\n").unwrap().trim().to_string();
    // The link opens the survey with the code in the form; sending the page uses it up.
    let page = app.get(&format!("/s/QNM.HA.MA?code={link_code}")).await.text().await.unwrap();
    assert!(page.contains(&format!("name=\"code\" value=\"{link_code}\"")), "the code travels with the form");
    let sid = between(&page, "name=\"submission_id\" value=\"", "\"").unwrap();
    let form = [
        ("submission_id", sid.as_str()),
        ("form", "sipas-2017"),
        ("respondent_type", "citizen"),
        ("A1", "5"),
        ("code", link_code.as_str()),
    ];
    assert_eq!(app.client.post(app.url("/s/QNM.HA.MA")).form(&form).send().await.unwrap().status(), 201);
    let mut answer = valid_submission("QNM.HA.MA");
    answer["code"] = json!(link_code);
    error_body(app.submit(&answer).await, 422, "validation_failed").await;
    // Delivered: the outbox keeps neither the address nor the link.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for row in outbox::Entity::find().all(&app.db).await.unwrap() {
        assert!(row.sent_at.is_some() && row.recipient.is_empty() && row.body_text.is_empty(), "{row:?}");
    }
    let log: Vec<Value> = app.get_as("/api/v1/admin/audit?action=invitations_sent", &admin).await.json().await.unwrap();
    assert_eq!(log[0]["details"], json!({"count": 2}));
    assert!(!serde_json::to_string(&log).unwrap().contains("example.vn"));
}

#[tokio::test]
async fn submissions_beyond_the_rate_limit_get_429_with_retry_after() {
    let app = spawn_app_with(|s| {
        s.submit_per_minute = 3;
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    app.seed_reference_units().await;
    let send = |ip: &'static str| {
        let body = valid_submission("QNM.SNV");
        let client = app.client.clone();
        let url = app.url("/api/v1/responses");
        async move { client.post(url).header("x-forwarded-for", ip).json(&body).send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(send("203.0.113.7").await.status(), 201);
    }
    let res = send("203.0.113.7").await;
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    error_body(res, 429, "too_many_requests").await;
    // Behind the trusted proxy, another citizen has a bucket of its own.
    assert_eq!(send("198.51.100.20").await.status(), 201);
    // The survey page says it in words.
    let form = [("form", "sipas-2017"), ("respondent_type", "citizen"), ("A1", "5")];
    let res = app
        .client
        .post(app.url("/s/QNM.SNV"))
        .header("x-forwarded-for", "203.0.113.7")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("thử lại"));
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_without_a_trusted_proxy() {
    let app = spawn_app_with(|s| s.submit_per_minute = 2).await;
    app.seed_reference_units().await;
    for (i, ip) in ["1.1.1.1", "2.2.2.2", "3.3.3.3"].iter().enumerate() {
        let res = app
            .client
            .post(app.url("/api/v1/responses"))
            .header("x-forwarded-for", *ip)
            .json(&valid_submission("QNM.SNV"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), if i < 2 { 201 } else { 429 }, "a spoofed header buys nothing");
    }
}

#[tokio::test]
async fn honeypots_and_hasty_pages_are_flagged_and_kept_out_of_the_indices() {
    let app = spawn_app_with(|s| s.min_fill_seconds = 5).await;
    app.seed_reference_units().await;
    let html = app.get("/s/QNM.STP").await.text().await.unwrap();
    let token = between(&html, "name=\"t\" value=\"", "\"").unwrap();
    let sid = between(&html, "name=\"submission_id\" value=\"", "\"").unwrap();
    // Sent at once: too fast for a person.
    let mut form = vec![
        ("submission_id", sid),
        ("form", "sipas-2017".into()),
        ("respondent_type", "citizen".into()),
        ("A1", "5".into()),
        ("t", token.clone()),
    ];
    assert_eq!(app.client.post(app.url("/s/QNM.STP")).form(&form).send().await.unwrap().status(), 201);
    // A bot fills the invisible field.
    form[0].1 = uuid::Uuid::new_v4().to_string();
    form.push(("website", "http://spam.example".into()));
    assert_eq!(app.client.post(app.url("/s/QNM.STP")).form(&form).send().await.unwrap().status(), 201);
    // An API client (office software) is not held to the page's checks.
    assert_eq!(app.submit(&valid_submission("QNM.STP")).await.status(), 201);
    let rows = response::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.flagged).count(), 2);

    let admin = app.login_as(Role::Admin, None).await;
    let year = chrono::Datelike::year(&sipas::vietnam_today());
    let v: Value =
        app.get_as(&format!("/api/v1/indices?unit=QNM.STP&period={year}"), &admin).await.json().await.unwrap();
    assert_eq!(v["n"], 1, "flagged responses are not counted");
    assert_eq!(v["flagged"], 2);
    let tree = sipas::store::units::tree(&app.db).await.unwrap();
    let stp = tree.by_code("QNM.STP").unwrap().id;
    assert_eq!(sipas::store::responses::accept_flagged(&app.db, &app.state.catalog, &[stp]).await.unwrap(), 2);
    let v: Value =
        app.get_as(&format!("/api/v1/indices?unit=QNM.STP&period={year}"), &admin).await.json().await.unwrap();
    assert_eq!((v["n"].as_u64(), v["flagged"].as_u64()), (Some(3), Some(0)));
    app.state.writer.settled().await;
    let snapshot = sipas::store::tallies::snapshot(&app.db).await.unwrap();
    sipas::store::tallies::rebuild(&app.db, &app.state.catalog).await.unwrap();
    assert!(snapshot == sipas::store::tallies::snapshot(&app.db).await.unwrap());
}

#[tokio::test]
async fn a_kiosk_is_enrolled_resets_after_each_response_and_is_limited_per_device() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.kiosk_per_minute = 2;
        s.submit_per_minute = 1;
    })
    .await;
    app.seed_reference_units().await;
    let admin = app.login_as(Role::Admin, None).await;
    require_code(&app, &admin, "QNM.SNV").await;
    let key = office_key(&app, &admin, "QNM.SNV", "kiosk").await;
    let enroll = key["enroll_url"].as_str().unwrap().to_string();
    let tablet =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(tablet.get(app.url("/k/QNM.SNV")).send().await.unwrap().status(), 403, "not enrolled yet");
    let path = enroll.split_once("/k/").map(|(_, p)| format!("/k/{p}")).unwrap();
    let res = tablet.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers()["set-cookie"].to_str().unwrap().contains("HttpOnly"));
    // Another unit's kiosk page does not accept this tablet.
    assert_eq!(tablet.get(app.url("/k/QNM.STP")).send().await.unwrap().status(), 403);

    for round in 0..3 {
        let page = tablet.get(app.url("/k/QNM.SNV")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("autocomplete=\"off\"") && !html.contains("name=\"code\""), "no code at the counter");
        let sid = between(&html, "name=\"submission_id\" value=\"", "\"").unwrap();
        let token = between(&html, "name=\"t\" value=\"", "\"").unwrap();
        let form = [
            ("submission_id", sid.as_str()),
            ("form", "sipas-2017"),
            ("respondent_type", "citizen"),
            ("A1", "4"),
            ("t", token.as_str()),
        ];
        let res = tablet.post(app.url("/k/QNM.SNV")).form(&form).send().await.unwrap();
        if round < 2 {
            assert_eq!(res.status(), 303, "round {round}");
            assert_eq!(res.headers()["location"], "/k/QNM.SNV?thanks=1");
            let next = tablet.get(app.url("/k/QNM.SNV?thanks=1")).send().await.unwrap().text().await.unwrap();
            assert!(next.contains("Mời người tiếp theo"), "a thank-you above a blank form");
            assert!(!next.contains("value=4 checked"), "nothing of the previous person on the page");
        } else {
            assert_eq!(res.status(), 429, "the device's own limit, although one address per minute is the web limit");
        }
    }
    let rows = response::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.channel == "kiosk"));
}

#[tokio::test]
async fn qr_codes_and_posters_point_at_the_survey() {
    let app = spawn_app_with(|s| {
        s.cookie_secure = false;
        s.public_base_url = "https://khaosat.quangnam.gov.vn".into();
    })
    .await;
    app.seed_reference_units().await;
    let svg = app.get("/api/v1/units/QNM.TK.AM/qr.svg").await;
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<svg"));
    let png = app.get("/api/v1/units/QNM.TK.AM/qr.png").await;
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(&png.bytes().await.unwrap()[..4], b"\x89PNG");
    error_body(app.get("/api/v1/units/QNM.NOPE/qr.svg").await, 404, "not_found").await;
    let (client, _) = crate::helpers::console_client(&app, Role::UnitManager, Some("QNM.TK")).await;
    let poster = client.get(app.url("/console/units/QNM.TK.AM/poster")).send().await.unwrap();
    assert_eq!(poster.status(), 200);
    let html = poster.text().await.unwrap();
    assert!(
        html.contains("Phường An Mỹ") && html.contains("<svg") && html.contains("khaosat.quangnam.gov.vn/s/QNM.TK.AM")
    );
    assert!(html.contains("Quét mã QR"));
    assert_eq!(client.get(app.url("/console/units/QNM.HA/poster")).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn a_bare_api_post_is_kept_but_flagged_and_an_office_key_or_a_page_token_vouches_for_it() {
    let app = spawn_app().await;
    app.seed_reference_units().await;
    let admin = app.login_as(Role::Admin, None).await;
    let post = |key: Option<String>, body: Value| {
        let mut request = app.client.post(app.url("/api/v1/responses")).json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        async move { request.send().await.unwrap() }
    };
    let flagged_of = |id: String| {
        let db = app.db.clone();
        async move {
            let id: uuid::Uuid = id.parse().unwrap();
            response::Entity::find_by_id(id).one(&db).await.unwrap().unwrap().flagged
        }
    };
    // A script posting JSON straight to the API: stored (201), flagged, out of the indices.
    let res = post(None, valid_submission("QNM.TK.AM")).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert!(flagged_of(id).await, "no page token, no key: flagged like a filled honeypot");
    // The office software of the district, with its key: vouched for.
    let key = office_key(&app, &admin, "QNM.TK", "office").await["key"].as_str().unwrap().to_string();
    let res = post(Some(key.clone()), valid_submission("QNM.TK.AM")).await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert!(!flagged_of(id).await, "an office key of an ancestor vouches");
    // The same key for a unit outside its district vouches for nothing.
    let res = post(Some(key), valid_submission("QNM.SNV")).await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert!(flagged_of(id).await, "a key of another unit");
    // A wrong key is refused outright, and nothing is stored.
    let before = app.response_count().await;
    error_body(post(Some("office_nope".into()), valid_submission("QNM.TK.AM")).await, 401, "unauthorized").await;
    assert_eq!(app.response_count().await, before);
    // The survey page's own script sends its signed token: counted.
    let res = app.submit(&valid_submission("QNM.TK.AM")).await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert!(!flagged_of(id).await);
}
