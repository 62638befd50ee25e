//! Black-box checks of request-schema validation: each route answers with the envelope of the way
//! Rocket.Chat wires its schema (`validateParams` vs typed `query`/`body`), before the handler runs,
//! and handlers see AJV-coerced values.

mod common;

use common::{Backend, Server};
use serde_json::{Value, json};

#[tokio::test]
async fn schemas_answer_with_each_routes_envelope_and_coerce() {
    let s = Server::start(Backend::Sqlite).await;
    let admin = s.user("alice").await;

    // Legacy `validateParams` (query): message + " [invalid-params]".
    let got = s.get("/api/v1/chat.getMessage", &admin).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(
        got.1,
        json!({
            "success": false,
            "error": "must have required property 'msgId' [invalid-params]",
            "errorType": "invalid-params",
        })
    );

    // Legacy `validateParams` (body).
    let got = s
        .post("/api/v1/chat.sendMessage", &admin, json!({"nope": 1}))
        .await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(got.1["errorType"], "invalid-params");
    assert_eq!(
        got.1["error"],
        "must have required property 'message' [invalid-params]"
    );

    // users.* that Rocket.Chat checks with `validateParams`.
    let got = s.post("/api/v1/users.update", &admin, json!({})).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(got.1["errorType"], "invalid-params", "{}", got.1);
    assert!(
        got.1["error"]
            .as_str()
            .unwrap()
            .ends_with(" [invalid-params]"),
        "{}",
        got.1
    );

    // Typed `query`: bare message, errorType `error-invalid-params`.
    let got = s.get("/api/v1/subscriptions.getOne", &admin).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(
        got.1,
        json!({
            "success": false,
            "error": "must have required property 'roomId'",
            "errorType": "error-invalid-params",
        })
    );
    let got = s.get("/api/v1/statistics?bogus=1", &admin).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(
        got.1,
        json!({
            "success": false,
            "error": "must NOT have additional properties",
            "errorType": "error-invalid-params",
        })
    );

    let got = s.get("/api/v1/settings.public?bogus=1", &admin).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(got.1["errorType"], "error-invalid-params", "{}", got.1);

    // Typed `body`: bare message, errorType `invalid-params`.
    let got = s
        .post(
            "/api/v1/rooms.cleanHistory",
            &admin,
            json!({"roomId": "GENERAL"}),
        )
        .await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(got.1["errorType"], "invalid-params", "{}", got.1);
    let error = got.1["error"].as_str().unwrap();
    assert!(
        error.starts_with("must have required property") && !error.contains('['),
        "{error}"
    );

    // So are dm.*/im.*.
    let got = s.get("/api/v1/im.history", &admin).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(got.1["errorType"], "error-invalid-params", "{}", got.1);
    assert!(!got.1["error"].as_str().unwrap().contains('['), "{}", got.1);

    // teams.* are typed routes too.
    let got = s.post("/api/v1/teams.create", &admin, json!({})).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(
        got.1,
        json!({
            "success": false,
            "error": "must have required property 'name'",
            "errorType": "invalid-params",
        })
    );
    let got = s.get("/api/v1/teams.info", &admin).await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(got.1["errorType"], "error-invalid-params", "{}", got.1);
    assert!(!got.1["error"].as_str().unwrap().contains('['), "{}", got.1);

    // Unknown properties are refused where the schema says so.
    let got = s
        .get(
            "/api/v1/subscriptions.getOne?roomId=GENERAL&extra=1",
            &admin,
        )
        .await;
    assert_eq!(
        got.1["error"], "must NOT have additional properties",
        "{}",
        got.1
    );

    // Query strings are coerced (`count=2` → 2) and reach the handler; a non-number is refused.
    for i in 0..3 {
        let sent = s
            .post(
                "/api/v1/chat.postMessage",
                &admin,
                json!({"roomId": "GENERAL", "text": format!("m{i}")}),
            )
            .await;
        assert_eq!(sent.0.as_u16(), 200, "{}", sent.1);
    }
    let (status, page) = s
        .get("/api/v1/channels.history?roomId=GENERAL&count=2", &admin)
        .await;
    assert_eq!(status.as_u16(), 200, "{page}");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(2), "{page}");
    let got = s
        .get("/api/v1/channels.history?roomId=GENERAL&count=two", &admin)
        .await;
    assert_eq!(got.0.as_u16(), 400, "{}", got.1);
    assert_eq!(got.1["errorType"], "invalid-params");
    let (status, list) = s.get("/api/v1/statistics.list?count=1", &admin).await;
    assert_eq!(status.as_u16(), 200, "{list}");
    assert_eq!(list["count"], 1, "{list}");

    // Valid requests still reach their handlers.
    let (status, one) = s
        .get("/api/v1/subscriptions.getOne?roomId=GENERAL", &admin)
        .await;
    assert_eq!(status.as_u16(), 200, "{one}");
    assert_eq!(one["subscription"]["rid"], Value::from("GENERAL"));
}
