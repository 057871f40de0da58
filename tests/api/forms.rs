//! Forms as versioned data: the API's view, and the start-up checks.

use serde_json::Value;
use sipas::forms::loader;
use sipas::startup::prepare;

use crate::helpers::{TestDb, error_body, forms_dir, spawn_app, test_settings, valid_submission};

#[tokio::test]
async fn forms_list_has_both_questionnaires() {
    let app = spawn_app().await;
    let body: Value = app.get("/api/v1/forms").await.json().await.unwrap();
    let forms = body["forms"].as_array().unwrap();
    let find = |id: &str| forms.iter().find(|f| f["id"] == id).cloned().unwrap();
    assert_eq!(find("sipas-2017")["items"], 22);
    assert_eq!(find("sipas-2023")["items"], 33);
    assert_eq!(find("sipas-2023")["respondent_types"], serde_json::json!(["citizen"]));
}

#[tokio::test]
async fn form_definition_carries_element_and_item_codes() {
    let app = spawn_app().await;
    let form: Value = app.get("/api/v1/forms/sipas-2017").await.json().await.unwrap();
    let elements: Vec<&str> = form["groups"].as_array().unwrap().iter().map(|g| g["code"].as_str().unwrap()).collect();
    assert_eq!(elements, ["A", "B", "C", "D", "E"]);
    let items: Vec<&str> = form["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["items"].as_array().unwrap())
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(items.len(), 22);
    assert_eq!(items[0], "A1");
    assert_eq!(items[21], "E4");
    assert_eq!(form["groups"][1]["items"][2]["text"]["vi"], "Thành phần hồ sơ phải nộp là đúng quy định");
    assert_eq!(form["scales"]["satisfaction"]["satisfied"], serde_json::json!([4, 5]));
    assert_eq!(form["scales"]["satisfaction"]["levels"][0]["label"]["vi"], "Rất không hài lòng");
    assert_eq!(form["respondent_types"], serde_json::json!(["citizen", "organization"]));

    let form: Value = app.get("/api/v1/forms/sipas-2023").await.json().await.unwrap();
    let pillars = form["groups"].as_array().unwrap();
    assert_eq!(pillars.len(), 2);
    let count =
        |p: &Value| p["groups"].as_array().unwrap().iter().map(|g| g["items"].as_array().unwrap().len()).sum::<usize>();
    assert_eq!((count(&pillars[0]), count(&pillars[1])), (14, 19));
    assert_eq!(form["expectations"].as_array().unwrap().len(), 10);
    assert_eq!(form["scales"]["expectation"]["levels"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn unknown_form_returns_404() {
    let app = spawn_app().await;
    error_body(app.get("/api/v1/forms/sipas-1999").await, 404, "not_found").await;
}

/// A copy of the shipped forms in a folder the test may edit.
fn copy_forms() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(forms_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[tokio::test]
async fn a_form_changed_under_a_version_with_responses_is_refused_at_start_up() {
    let forms = copy_forms();
    let db = TestDb::new().await;
    let mut settings = test_settings(&db);
    settings.forms_dir = forms.path().to_path_buf();
    let state = prepare(&settings).await.expect("first start");

    // Changing the text is fine while nobody has answered.
    let file = forms.path().join("sipas-2017.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("Nơi ngồi chờ có đủ chỗ ngồi", "Nơi ngồi chờ rộng rãi")).unwrap();
    let state2 = prepare(&settings).await.expect("a change without responses is accepted");
    drop(state);

    // Once a response exists, the same change is refused, naming the file.
    let rows = sipas::units::import::parse_csv(&std::fs::read_to_string(crate::helpers::fixture("units.csv")).unwrap())
        .unwrap();
    sipas::store::units::import(&state2.db, rows).await.unwrap().unwrap();
    let body: sipas::forms::submission::SubmissionBody = serde_json::from_value(valid_submission("QNM.SNV")).unwrap();
    let origin = sipas::submit::Origin { client: "test".into(), kiosk: None, office: None };
    let outcome = sipas::submit::accept(&state2, &body, &origin).await.unwrap();
    assert!(outcome.is_ok());
    std::fs::write(&file, text.replace("Nơi ngồi chờ có đủ chỗ ngồi", "Nơi ngồi chờ thoáng mát")).unwrap();
    let Err(err) = prepare(&settings).await else { panic!("a changed form with responses must be refused") };
    let err = err.to_string();
    assert!(err.contains("sipas-2017.toml") && err.contains("changed") && err.contains("version 2"), "{err}");
}

#[tokio::test]
async fn a_broken_form_file_stops_start_up_naming_file_and_line() {
    let forms = copy_forms();
    let file = forms.path().join("sipas-2017.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    // A second B3, on the line where B4 was.
    let broken = text.replacen("code = \"B4\"", "code = \"B3\"", 1);
    let line = broken[..broken.find("code = \"B3\"\ngroup = \"B\"\nvi = \"Phí").unwrap()].matches('\n').count() + 1;
    std::fs::write(&file, broken).unwrap();
    let err = loader::load_dir(forms.path()).expect_err("refused").to_string();
    assert!(
        err.contains(&format!("sipas-2017.toml:{}", line - 1)) || err.contains(&format!("sipas-2017.toml:{line}")),
        "{err}"
    );
    assert!(err.contains("duplicate code B3"), "{err}");

    let db = TestDb::new().await;
    let mut settings = test_settings(&db);
    settings.forms_dir = forms.path().to_path_buf();
    assert!(prepare(&settings).await.is_err());
}
