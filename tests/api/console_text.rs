//! What a unit head reads in the console and its exports: export buttons that work as the
//! page submits them, errors as Vietnamese pages, labels instead of codes, Vietnam time, the
//! workbook's headings and question sheet, the rankings' weakest criteria, and a plain-http
//! sign-in that says what is wrong.

use calamine::{Data, Reader, Xlsx};
use chrono::Datelike;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::Value;
use sipas::auth::Role;
use sipas::entities::audit;

use crate::helpers::{TestApp, between, console_client, error_body, spawn_app, spawn_app_with};

async fn app() -> TestApp {
    let app = spawn_app_with(|s| s.cookie_secure = false).await;
    app.import_reference().await;
    app
}

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String, String) {
    let res = client.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, ct, res.text().await.unwrap())
}

/// The text a reader sees: tags (and their attributes), the stylesheet and e-mail addresses
/// removed; every tag becomes a space.
fn visible(html: &str) -> String {
    let html = match (html.find("<style>"), html.find("</style>")) {
        (Some(a), Some(b)) => format!("{}{}", &html[..a], &html[b..]),
        _ => html.to_string(),
    };
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().filter(|w| !w.contains('@')).collect::<Vec<_>>().join(" ")
}

/// The query string each GET form of a page submits with its default values: inputs with
/// their value, selects with their selected (else first) option.
fn form_submissions(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let end = rest[start..].find("</form>").map_or(rest.len(), |e| start + e);
        let form = &rest[start..end];
        rest = &rest[end..];
        if !form.contains("method=\"get\"") {
            continue;
        }
        let action = between(form, "action=\"", "\"").unwrap();
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut f = form;
        while let Some(i) = f.find("<input") {
            let tag = &f[i..i + f[i..].find('>').unwrap()];
            if let Some(name) = between(tag, "name=\"", "\"") {
                pairs.push((name, between(tag, "value=\"", "\"").unwrap_or_default()));
            }
            f = &f[i + 1..];
        }
        let mut f = form;
        while let Some(i) = f.find("<select") {
            let close = f[i..].find("</select>").unwrap() + i;
            let select = &f[i..close];
            let name = between(select, "name=\"", "\"").unwrap();
            let options: Vec<&str> = select.split("<option").skip(1).collect();
            let chosen = options.iter().find(|o| o.contains(" selected")).or(options.first()).unwrap();
            pairs.push((name, between(chosen, "value=\"", "\"").unwrap()));
            f = &f[close..];
        }
        let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        out.push((action, query.clone()));
        // Buttons that send the same fields elsewhere.
        for other in form.split("formaction=\"").skip(1) {
            out.push((other[..other.find('"').unwrap()].to_string(), query.clone()));
        }
    }
    out
}

#[tokio::test]
async fn every_export_button_answers_with_a_file_on_the_first_click() {
    let app = app().await;
    let (client, _) = console_client(&app, Role::UnitManager, Some("QNM.TK")).await;
    let (status, _, page) = get(&client, &app, "/console/exports").await;
    assert_eq!(status, 200);
    let year = sipas::vietnam_today().year().to_string();
    let forms = form_submissions(&page);
    let exports: Vec<_> = forms.iter().filter(|(a, _)| a.contains("/exports/")).collect();
    assert_eq!(exports.len(), 3, "three indices formats, no microdata for a unit manager: {forms:?}");
    assert!(visible(&page).contains("Dữ liệu từng phiếu chỉ dành cho"), "the page says why there is no microdata");
    assert_eq!(page.matches("name=\"period\"").count(), 1, "one form per table, a button per format");
    for (action, query) in exports {
        assert!(action.starts_with("/console/exports/"), "the console's own route: {action}");
        assert!(query.contains(&format!("period={year}")), "the period opens as this year: {query}");
        let res = client.get(app.url(&format!("{action}?{query}"))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{action}?{query}");
        let disposition = res.headers().get("content-disposition").map(|v| v.to_str().unwrap().to_string());
        let json = action.ends_with(".json");
        assert!(json || disposition.is_some_and(|d| d.contains("attachment")), "{action} is a file");
        let body = res.bytes().await.unwrap();
        assert!(!body.is_empty(), "{action}");
        if action.ends_with(".csv") {
            assert!(std::str::from_utf8(&body).unwrap().starts_with("\u{feff}"), "a CSV with its BOM");
        }
        if action.ends_with(".xlsx") {
            assert_eq!(&body[..2], b"PK", "a workbook");
        }
    }
    // An emptied period field means this year, as on the other console pages.
    let res = client.get(app.url("/console/exports/indices.csv?within=QNM.TK&period=&form=sipas-2017")).send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), 200);
    let name = res.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(name.contains(&format!("QNM.TK-{year}")), "{name}");
    // The export is audited like the API's.
    let last = audit::Entity::find().order_by_desc(audit::Column::Id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(last.action, "export");
}

#[tokio::test]
async fn a_console_export_with_a_bad_period_shows_a_vietnamese_page_and_the_api_keeps_json() {
    let app = app().await;
    let (manager, _) = console_client(&app, Role::UnitManager, Some("QNM.TK")).await;
    let (analyst, _) = console_client(&app, Role::Analyst, None).await;
    let before = audit::Entity::find().all(&app.db).await.unwrap().len();
    for (client, path) in [
        (&manager, "/console/exports/indices.xlsx?within=QNM.TK&period=2024-13&form=sipas-2017"),
        (&analyst, "/console/exports/microdata.csv?within=QNM.TK&period=hai-nghin&form=sipas-2017&comments=false"),
    ] {
        let (status, ct, html) = get(client, &app, path).await;
        assert_eq!(status, 422, "{path}");
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let text = visible(&html);
        assert!(text.contains("Có ô nhập chưa đúng"), "{text}");
        assert!(text.contains("Kỳ : nhập một năm (2025), một quý (2025-Q1) hoặc một tháng (2025-03)"), "{text}");
        assert!(!text.contains("must be") && !html.contains("validation_failed"), "no English, no JSON: {text}");
        assert!(html.contains("href=\"/console/exports?within=QNM.TK\""), "a way back to the exports");
    }
    // Outside one's scope: a page saying so.
    let (status, ct, html) = get(&manager, &app, "/console/exports/indices.csv?within=QNM.HA&period=2024").await;
    assert_eq!(status, 403);
    assert!(ct.starts_with("text/html"));
    assert!(visible(&html).contains("Tài khoản của bạn không được xem hoặc làm việc này"));
    assert_eq!(audit::Entity::find().all(&app.db).await.unwrap().len(), before, "nothing exported, nothing audited");

    // In English for a reader who chose English.
    get(&manager, &app, "/console/lang/en?next=/console/exports").await;
    let (status, _, html) = get(&manager, &app, "/console/exports/indices.csv?within=QNM.TK&period=2024-13").await;
    assert_eq!(status, 422);
    assert!(visible(&html).contains("Period : enter a year (2025), a quarter (2025-Q1) or a month (2025-03)"));

    // The API answers its clients in JSON, whatever they accept.
    let res = manager
        .get(app.url("/api/v1/exports/indices.csv?within=QNM.TK&period=2024-13"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let body = error_body(res, 422, "validation_failed").await;
    assert!(body["fields"]["period"].is_array());
}

#[tokio::test]
async fn console_pages_show_labels_and_vietnam_time_not_codes() {
    let app = app().await;
    let (client, _) = console_client(&app, Role::Admin, None).await;
    // A failed sign-in to show in the audit log.
    let bare = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let page = bare.get(app.url("/console/login")).send().await.unwrap().text().await.unwrap();
    let token = between(&page, "name=\"form\" value=\"", "\"").unwrap();
    let form = [("form", token.as_str()), ("email", "nobody@example.gov.vn"), ("password", "wrong password!")];
    bare.post(app.url("/console/login")).form(&form).send().await.unwrap();

    let codes = ["unit_manager", "online", "in_person", "organization", "login_failed", "commune", "district"];
    for (path, labels) in [
        ("/console?period=2024", &["Trực tuyến", "Máy đánh giá tại chỗ", "Người dân"][..]),
        ("/console/units/QNM.TK.AM?period=2024", &["Trực tiếp", "Phiếu giấy", "Đại diện tổ chức, doanh nghiệp"][..]),
        ("/console/rankings?period=2024", &["Xã, phường, thị trấn", "Huyện, thị xã, thành phố"][..]),
        ("/console/admin/units", &["Xã, phường, thị trấn", "Sở, ban, ngành"][..]),
        ("/console/admin/users", &["Lãnh đạo đơn vị", "Phân tích", "Quản trị"][..]),
        ("/console/admin/audit", &["Đăng nhập không thành công", "giờ Việt Nam, UTC+7", "qua: bảng điều khiển"][..]),
    ] {
        let (status, _, html) = get(&client, &app, path).await;
        assert_eq!(status, 200, "{path}");
        let text = visible(&html);
        for label in labels {
            assert!(text.contains(label), "{path} shows {label}");
        }
        for code in codes {
            assert!(!text.contains(code), "{path} shows the code {code}: {text}");
        }
    }
    // The time shown is the entry's time in Vietnam.
    let entry = audit::Entity::find().order_by_desc(audit::Column::Id).one(&app.db).await.unwrap().unwrap();
    let (_, _, html) = get(&client, &app, "/console/admin/audit").await;
    let local = (entry.at + chrono::TimeDelta::hours(7)).format("%Y-%m-%d %H:%M:%S").to_string();
    let utc = entry.at.format("%Y-%m-%d %H:%M:%S").to_string();
    assert!(html.contains(&local) && !html.contains(&utc), "{local} shown, not {utc}");
    // The filter offers the actions by name and still filters by code.
    let (_, _, html) = get(&client, &app, "/console/admin/audit?action=login_failed").await;
    assert!(html.contains("<option value=\"login_failed\" selected>Đăng nhập không thành công</option>"));
    assert_eq!(html.matches(">Đăng nhập không thành công</td>").count(), 1, "the one failed sign-in");
    assert!(!html.contains(">Đăng nhập</td>"), "and not the successful ones");
    // English on request.
    get(&client, &app, "/console/lang/en?next=/console/admin/users").await;
    let (_, _, html) = get(&client, &app, "/console/admin/users").await;
    assert!(visible(&html).contains("Unit manager"));
}

fn cell(sheet: &calamine::Range<Data>, r: usize, c: usize) -> String {
    sheet.get((r, c)).map(|d| d.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn workbooks_have_vietnamese_headings_over_codes_and_every_question_in_both_languages() {
    let app = app().await;
    let token = app.login_as(Role::Analyst, None).await;
    for form_id in ["sipas-2017", "sipas-2023"] {
        let form = &app.state.forms.get(form_id).unwrap().form;
        let mut expected: Vec<(String, String, String)> =
            form.index_items().iter().map(|i| (i.code.clone(), i.text.vi.clone(), i.text.en.clone())).collect();
        expected.extend(form.expectations.iter().map(|i| (i.code.clone(), i.text.vi.clone(), i.text.en.clone())));
        expected.extend(form.questions.iter().map(|q| (q.code.clone(), q.text.vi.clone(), q.text.en.clone())));
        for export in ["indices", "microdata"] {
            let path = format!("/api/v1/exports/{export}.xlsx?within=QNM&period=2024&form={form_id}");
            let res = app.get_as(&path, &token).await;
            assert_eq!(res.status(), 200, "{path}");
            let bytes = res.bytes().await.unwrap();
            let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
            assert!(book.sheet_names().contains(&"Câu hỏi".to_string()), "{path}: {:?}", book.sheet_names());
            let q = book.worksheet_range("Câu hỏi").unwrap();
            assert_eq!(
                (cell(&q, 0, 0), cell(&q, 0, 3), cell(&q, 0, 4)),
                ("Mã câu hỏi".into(), "Nội dung (tiếng Việt)".into(), "Nội dung (tiếng Anh)".into())
            );
            assert_eq!(cell(&q, 1, 0), "code", "codes under the headings");
            let rows: Vec<(String, String, String)> =
                (2..q.height()).map(|r| (cell(&q, r, 0), cell(&q, r, 3), cell(&q, r, 4))).collect();
            assert_eq!(rows, expected, "{path}: every question with both texts");

            let first = if export == "indices" { "Đơn vị" } else { "Phiếu 1" };
            let sheet = book.worksheet_range(first).unwrap();
            assert_eq!((cell(&sheet, 0, 0), cell(&sheet, 1, 0)), ("Mã đơn vị".into(), "unit".into()), "{path}");
            if form_id == "sipas-2017" {
                assert_eq!(cell(&sheet, 2, 0).split('.').next(), Some("QNM"), "{path}: data from the third row");
            }
            if export == "microdata" && form_id == "sipas-2017" {
                // Respondent type in words under its code's column name; channel is `*` (one
                // breakdown column keeps its values).
                assert_eq!((cell(&sheet, 1, 4), cell(&sheet, 1, 5)), ("respondent_type".into(), "channel".into()));
                let words: Vec<String> = (2..sheet.height()).map(|r| cell(&sheet, r, 4)).collect();
                assert!(words.contains(&"Người dân".to_string()), "{:?}", &words[..5]);
                assert!(!words.iter().any(|w| ["citizen", "organization"].contains(&w.as_str())));
                assert!((2..sheet.height()).all(|r| cell(&sheet, r, 5) == "*"));
                let info = book.worksheet_range("Thông tin").unwrap();
                assert!(cell(&info, 0, 0).contains("k = 10"), "the info sheet says how the file was coarsened");
            }
            let (heading, code) = (cell(&sheet, 0, 1), cell(&sheet, 1, 1));
            assert!(!heading.is_empty() && heading != code, "{path}: {heading} over {code}");
        }
        let path = format!("/api/v1/exports/indices.xlsx?within=QNM&period=2024&form={form_id}");
        let bytes = app.get_as(&path, &token).await.bytes().await.unwrap();
        let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let units = book.worksheet_range("Đơn vị").unwrap();
        let headings: Vec<String> = (0..units.width()).map(|c| cell(&units, 0, c)).collect();
        assert!(headings.contains(&"Số phiếu".to_string()) && headings.contains(&"Thứ hạng".to_string()));
        let title = &form.groups[0].title.vi;
        assert!(headings.iter().any(|h| h.ends_with(title.as_str())), "groups by their titles: {headings:?}");
        let levels: Vec<String> = (2..units.height()).map(|r| cell(&units, r, 2)).collect();
        assert!(levels.contains(&"Tỉnh".to_string()) && !levels.contains(&"province".to_string()), "{levels:?}");
        let info = book.worksheet_range("Thông tin").unwrap();
        let about: Vec<(String, String)> = (2..info.height()).map(|r| (cell(&info, r, 0), cell(&info, r, 1))).collect();
        for (key, value) in [("Đối tượng", "tất cả"), ("Kênh", "tất cả")] {
            assert!(about.contains(&(key.to_string(), value.to_string())), "{about:?}");
        }
        assert!(about.iter().any(|(k, v)| k == "Kỳ" && v.starts_with("2024 (2024-01-01")), "{about:?}");
        assert!(about.iter().all(|(k, _)| !k.contains('_')), "no code as a label: {about:?}");
    }
    // The CSV keeps its machine headers.
    let csv = app.get_as("/api/v1/exports/indices.csv?within=QNM&period=2024", &token).await.text().await.unwrap();
    assert!(csv.trim_start_matches('\u{feff}').starts_with("unit,name,level,parent,n,suppressed,rank,sipas"));
}

#[tokio::test]
async fn rankings_name_the_weakest_criteria_and_say_why_a_cell_is_empty() {
    let app = app().await;
    let token = app.login_as(Role::Analyst, None).await;
    let (client, _) = console_client(&app, Role::Analyst, None).await;
    let form = app.state.forms.get("sipas-2017").unwrap().form.clone();
    let mut empty_seen = 0;
    for level in ["commune", "district"] {
        let api: Value =
            app.get_as(&format!("/api/v1/rankings?period=2024&level={level}"), &token).await.json().await.unwrap();
        let (status, _, html) = get(&client, &app, &format!("/console/rankings?period=2024&level={level}")).await;
        assert_eq!(status, 200);
        let rows: Vec<&str> = html.split("<tr class=\"lead\">").skip(1).collect();
        for unit in api["units"].as_array().unwrap() {
            let code = unit["unit"].as_str().unwrap();
            let row = rows.iter().find(|r| r.contains(&format!("/console/units/{code}\""))).unwrap();
            let text = visible(row);
            if unit["value"].is_null() {
                continue;
            }
            let weakest = unit["weakest"].as_array().unwrap();
            if weakest.is_empty() {
                empty_seen += 1;
                assert!(text.contains("Không tiêu chí nào thấp hơn mức chung"), "{code}: {text}");
            }
            for w in weakest {
                let item = w["code"].as_str().unwrap();
                let wording = &form.index_items().into_iter().find(|i| i.code == item).unwrap().text.vi;
                assert!(text.contains(wording.as_str()), "{code}: {item}'s text in {text}");
                let gap = format!("({item}, {:+.1})", -w["gap"].as_f64().unwrap());
                assert!(text.contains(&gap), "{code}: {gap} in {text}");
            }
        }
    }
    assert!(empty_seen > 0, "the best units have nothing below the reference, and say so");
}

#[tokio::test]
async fn signing_in_over_plain_http_with_secure_cookies_says_what_is_wrong() {
    // cookie_secure is on by default, as in production.
    let app = spawn_app().await;
    let fix = "SIPAS_COOKIE_SECURE=false";
    let lan = "192.168.1.20:8080";
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = |host: &'static str, proto: Option<&'static str>| {
        let mut req = bare.post(app.url("/console/login")).header("host", host).form(&[
            ("form", "from-the-page"),
            ("email", "a@example.gov.vn"),
            ("password", "whatever it is"),
        ]);
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        req.send()
    };
    // The browser dropped the form cookie: this is what it sees.
    let res = login(lan, None).await.unwrap();
    assert_eq!(res.status(), 403);
    let text = visible(&res.text().await.unwrap());
    assert!(text.contains("http://") && text.contains("cookie_secure = true") && text.contains(fix), "{text}");
    assert!(text.contains("https://") && !text.contains("hết hạn"), "{text}");
    // The sign-in page says it before anyone types a password.
    let page = bare.get(app.url("/console/login")).header("host", lan).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(fix), "warned up front");
    let page = bare.get(app.url("/console/forgot")).header("host", lan).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(fix), "and on the forgotten-password page");

    // Behind an HTTPS proxy, or from this machine, the cookie works: the plain message stays.
    for (host, proto) in [(lan, Some("https")), ("127.0.0.1:8080", None), ("localhost:8080", None)] {
        let res = login(host, proto).await.unwrap();
        assert_eq!(res.status(), 403);
        let text = visible(&res.text().await.unwrap());
        assert!(text.contains("Biểu mẫu đã hết hạn") && !text.contains(fix), "{host} {proto:?}: {text}");
    }
    // With Secure cookies off, plain http on the LAN is fine: no warning.
    let plain = spawn_app_with(|s| s.cookie_secure = false).await;
    let page = bare.get(plain.url("/console/login")).header("host", lan).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains(fix));

    // And the start-up warning.
    let mut settings = app.state.settings.as_ref().clone();
    settings.public_base_url = "http://192.168.1.20:8080".into();
    assert!(settings.cookie_warning().is_some_and(|w| w.contains(fix)));
    settings.public_base_url = "https://sipas.quangnam.gov.vn".into();
    assert!(settings.cookie_warning().is_none());
    settings.public_base_url = "http://192.168.1.20:8080".into();
    settings.cookie_secure = false;
    assert!(settings.cookie_warning().is_none());
}

#[tokio::test]
async fn console_text_pages_pass_axe_and_every_export_button_downloads_in_chromium() {
    if crate::browser::skipped() {
        return;
    }
    // Secure cookies, as in production: Chromium keeps them for 127.0.0.1.
    let app = spawn_app().await;
    app.import_reference().await;
    let email = "head@example.gov.vn";
    let hash = sipas::auth::hash_password(crate::helpers::PASSWORD).unwrap();
    sipas::store::users::insert(&app.db, email, hash, Role::Admin, None).await.unwrap();
    let config = serde_json::json!({
        "base": app.address,
        "email": email,
        "password": crate::helpers::PASSWORD,
        "out": crate::browser::screenshots("console-text"),
    });
    let (ok, stdout) = crate::browser::node(&["console-text.mjs", &config.to_string()]).await;
    println!("{stdout}");
    assert!(ok, "browser steps failed:\n{stdout}");
    let exports = audit::Entity::find().all(&app.db).await.unwrap().iter().filter(|e| e.action == "export").count();
    assert_eq!(exports, 6, "each click exported once (five buttons and one background export)");
    let downloads =
        audit::Entity::find().all(&app.db).await.unwrap().iter().filter(|e| e.action == "export_downloaded").count();
    assert_eq!(downloads, 1, "the prepared file was downloaded once");
}

/// Runs `sipas serve` until it listens and returns what it logged on the way.
fn serve_log(db: &crate::helpers::TestDb, env: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader};
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sipas"));
    cmd.arg("--database-url")
        .arg(&db.url)
        .args(["serve", "--port", "0"])
        .env("SIPAS_FORMS_DIR", crate::helpers::forms_dir())
        .env("SIPAS_LOG", "info")
        .env_remove("RUST_LOG")
        .env_remove("SIPAS_CONFIG")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut log = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    log
}

#[tokio::test]
async fn serve_warns_at_start_up_when_cookies_are_secure_but_the_address_is_plain_http() {
    let db = crate::helpers::TestDb::new().await;
    let lan = [("SIPAS_PUBLIC_BASE_URL", "http://192.168.1.20:8080")];
    let log = tokio::task::spawn_blocking(move || {
        let warned = serve_log(&db, &lan);
        let plain = serve_log(&db, &[lan[0], ("SIPAS_COOKIE_SECURE", "false")]);
        let https = serve_log(&db, &[("SIPAS_PUBLIC_BASE_URL", "https://khaosat.example.gov.vn")]);
        (warned, plain, https, db)
    })
    .await
    .unwrap();
    let (warned, plain, https, _db) = log;
    assert!(warned.contains("listening on"), "{warned}");
    let line = warned.lines().find(|l| l.contains("cookie_secure is true")).unwrap_or_default();
    assert!(line.contains("WARN") && line.contains("SIPAS_COOKIE_SECURE=false"), "{warned}");
    assert!(plain.contains("listening on") && !plain.contains("cookie_secure is true"), "{plain}");
    assert!(https.contains("listening on") && !https.contains("cookie_secure is true"), "{https}");
}

#[tokio::test]
async fn malformed_addresses_on_people_pages_answer_with_pages_and_the_api_with_json() {
    let app = app().await;
    let (client, _) = console_client(&app, Role::Admin, None).await;
    // A repeated parameter fails the query parser before any handler runs; an unknown page
    // and a wrong method fail before any route does.
    for (method, path, status) in [
        ("GET", "/console/rankings?period=2024&period=2025", 400),
        ("GET", "/console/units/QNM.TK?form=a&form=b", 400),
        ("GET", "/console/no-such-page", 404),
        ("DELETE", "/console/rankings", 405),
        ("GET", "/s/QNM.TK.AM?lang=en&lang=vi", 400),
        ("PUT", "/s/QNM.TK.AM", 405),
        ("GET", "/s/QNM.TK.AM/extra", 404),
    ] {
        let res = client.request(method.parse().unwrap(), app.url(path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{method} {path}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/html"), "{method} {path}: {ct}");
        let html = res.text().await.unwrap();
        assert!(html.contains("<h1>") && !html.contains("\"error\":"), "{method} {path}: {html}");
    }
    let (_, _, html) = get(&client, &app, "/console/rankings?period=2024&period=2025").await;
    assert!(visible(&html).contains("Yêu cầu không hợp lệ"), "in Vietnamese");
    // The API keeps its JSON shape for the same mistakes.
    error_body(
        client.get(app.url("/api/v1/indices?period=2024&period=2025")).send().await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    error_body(client.get(app.url("/api/v1/no-such-endpoint")).send().await.unwrap(), 404, "not_found").await;
    error_body(client.delete(app.url("/api/v1/responses")).send().await.unwrap(), 405, "method_not_allowed").await;
    // And the service keeps serving.
    assert_eq!(get(&client, &app, "/console/rankings?period=2024").await.0, 200);
}
