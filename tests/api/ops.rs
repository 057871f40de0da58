//! Health, readiness, the OpenAPI document, the error shape of unknown routes, headers.

use serde_json::Value;

use crate::helpers::{error_body, spawn_app};

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
        ("get", "/api/v1/exports/indices.{format}"),
        ("get", "/api/v1/exports/microdata.{format}"),
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
