//! Two-factor authentication end to end, on both backends: TOTP enrolment, login with codes
//! (replays refused), backup codes, the `x-2fa-*` flow with the password fallback on sensitive
//! calls, roles that make 2FA mandatory, admin and operator resets, DDP.

mod common;

use apogee_core::passwords::digest;
use apogee_core::two_factor::current_totp;
use common::ddp::Ddp;
use common::mail::Mailbox;
use common::{Auth, Backend, PASSWORD, Server, assert_error, backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// No grace after sign-up and no remembered checks, so every sensitive call is asked.
const STRICT: &[(&str, &str)] = &[(
    "OVERWRITE_SETTING_Accounts_TwoFactorAuthentication_RememberFor",
    "0",
)];

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of the step `offset` steps from now.
fn code_at(secret: &str, offset: i64) -> String {
    current_totp(secret, (now_secs() as i64 + offset * 30) as u64).unwrap()
}

/// A six-digit code that is not any of the codes valid around now.
fn wrong_code(secret: &str) -> String {
    let valid: Vec<String> = (-2..=2).map(|o| code_at(secret, o)).collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// A request with optional auth, JSON body and extra headers.
async fn send(
    s: &Server,
    method: Method,
    path: &str,
    auth: Option<&Auth>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = s.client.request(method, format!("{}{path}", s.base));
    if let Some(a) = auth {
        req = req
            .header("X-User-Id", &a.user_id)
            .header("X-Auth-Token", &a.token);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn login_body(s: &Server, body: Value) -> (StatusCode, Value) {
    send(s, Method::POST, "/api/v1/login", None, Some(body), &[]).await
}

/// The password as a second factor: its sha256 digest, method `password`.
fn password_headers() -> [(&'static str, String); 2] {
    [
        ("x-2fa-method", "password".to_string()),
        ("x-2fa-code", digest(PASSWORD)),
    ]
}

fn headers<'a>(h: &'a [(&'static str, String); 2]) -> [(&'static str, &'a str); 2] {
    [(h[0].0, h[0].1.as_str()), (h[1].0, h[1].1.as_str())]
}

/// A POST with optional auth and extra headers.
async fn post_with(
    s: &Server,
    path: &str,
    auth: Option<&Auth>,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    send(s, Method::POST, path, auth, Some(body), headers).await
}

/// A POST with the password as the second factor.
async fn post_with_password(
    s: &Server,
    path: &str,
    auth: &Auth,
    body: Value,
) -> (StatusCode, Value) {
    let pw = password_headers();
    post_with(s, path, Some(auth), body, &headers(&pw)).await
}

/// Enrols `auth` in TOTP (the password as the second factor); returns the secret and the
/// backup codes. The enrolling code is the current step's.
async fn enrol(s: &Server, auth: &Auth) -> (String, Vec<String>) {
    let r = post_with_password(s, "/api/v1/users.enableTotp", auth, json!({})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let secret = r.1["secret"].as_str().unwrap().to_string();
    let r = s
        .post(
            "/api/v1/users.validateTotp",
            auth,
            json!({"code": code_at(&secret, 0)}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let codes = r.1["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

#[tokio::test]
async fn totp_enrolment_login_backup_codes_and_replays() {
    for backend in backends() {
        totp_flow(backend).await;
    }
}

async fn totp_flow(backend: Backend) {
    let s = Server::start_with(backend, STRICT).await;
    let _admin = s.user("boss").await;
    let alice = s.user("alice").await;

    // Enabling asks for a second factor first: alice has none, so her password.
    let r = s.post("/api/v1/users.enableTotp", &alice, json!({})).await;
    assert_error(&r, 400, Some("totp-required"));
    assert_eq!(r.1["details"]["method"], "password", "{}", r.1);
    assert_eq!(r.1["details"]["availableMethods"], json!([]), "{}", r.1);
    let bad_pw = [("x-2fa-method", "password"), ("x-2fa-code", "00")];
    let r = post_with(
        &s,
        "/api/v1/users.enableTotp",
        Some(&alice),
        json!({}),
        &bad_pw,
    )
    .await;
    assert_error(&r, 400, Some("totp-invalid"));

    let r = post_with_password(&s, "/api/v1/users.enableTotp", &alice, json!({})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let secret = r.1["secret"].as_str().unwrap().to_string();
    let url = r.1["url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    assert!(url.contains("alice"), "{url}");

    // Not on until a code is validated; a wrong one changes nothing.
    let me = s.get("/api/v1/me", &alice).await.1;
    assert_eq!(me["services"]["totp"]["enabled"], false, "{me}");
    let r = s
        .post(
            "/api/v1/users.validateTotp",
            &alice,
            json!({"code": wrong_code(&secret)}),
        )
        .await;
    assert_error(&r, 400, Some("invalid-totp"));
    let r = s
        .post("/api/v1/users.validateTotp", &alice, json!({}))
        .await;
    assert_error(&r, 400, Some("invalid-params"));
    let me = s.get("/api/v1/me", &alice).await.1;
    assert_eq!(me["services"]["totp"]["enabled"], false, "{me}");
    assert!(
        login_body(&s, json!({"username": "alice", "password": PASSWORD}))
            .await
            .0
            == 200
    );

    let first = code_at(&secret, 0);
    let r = s
        .post("/api/v1/users.validateTotp", &alice, json!({"code": first}))
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let backup: Vec<String> = r.1["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(backup.len(), 12);
    let me = s.get("/api/v1/me", &alice).await.1;
    assert_eq!(me["services"]["totp"]["enabled"], true, "{me}");
    // The secret is nowhere in what alice or others see of her.
    assert!(!me.to_string().contains(&secret), "{me}");
    let info = s
        .get(
            &format!("/api/v1/users.info?userId={}", alice.user_id),
            &alice,
        )
        .await
        .1;
    assert!(!info.to_string().contains(&secret), "{info}");
    let r = s.post("/api/v1/users.enableTotp", &alice, json!({})).await;
    assert_error(&r, 400, Some("error-2fa-already-enabled"));

    // Login now needs a code.
    let r = login_body(&s, json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(r.0, 401, "{}", r.1);
    assert_eq!(r.1["error"], "totp-required", "{}", r.1);
    assert_eq!(r.1["details"]["method"], "totp", "{}", r.1);
    assert_eq!(
        r.1["details"]["availableMethods"],
        json!(["totp"]),
        "{}",
        r.1
    );
    let r = login_body(
        &s,
        json!({"username": "alice", "password": PASSWORD, "code": wrong_code(&secret)}),
    )
    .await;
    assert_eq!(r.0, 401, "{}", r.1);
    assert_eq!(r.1["error"], "totp-invalid", "{}", r.1);
    // The code that switched TOTP on is spent: replaying it fails.
    let r = login_body(
        &s,
        json!({"username": "alice", "password": PASSWORD, "code": first}),
    )
    .await;
    assert_eq!(r.1["error"], "totp-invalid", "replayed code: {}", r.1);
    // The next step's code works once (Meteor's `totp` form), then is a replay too.
    let next = code_at(&secret, 1);
    let r = login_body(&s, json!({"totp": {"login": {"user": {"username": "alice"}, "password": PASSWORD}, "code": next}})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = login_body(
        &s,
        json!({"username": "alice", "password": PASSWORD, "code": next}),
    )
    .await;
    assert_eq!(r.1["error"], "totp-invalid", "replayed code: {}", r.1);

    // Backup codes work once each.
    let r = login_body(
        &s,
        json!({"username": "alice", "password": PASSWORD, "code": backup[0]}),
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let alice = Auth::of_login(&r.1);
    let r = login_body(
        &s,
        json!({"username": "alice", "password": PASSWORD, "code": backup[0]}),
    )
    .await;
    assert_eq!(r.1["error"], "totp-invalid", "{}", r.1);
    let r = s.get("/api/v1/users.totpCodesRemaining", &alice).await;
    assert_eq!(r.1["remaining"], 11, "{}", r.1);

    // Regenerating needs a valid code; the old backup codes stop working.
    let r = s
        .post(
            "/api/v1/users.regenerateTotpCodes",
            &alice,
            json!({"code": wrong_code(&secret)}),
        )
        .await;
    assert_error(&r, 400, Some("invalid-totp"));
    let r = s
        .post(
            "/api/v1/users.regenerateTotpCodes",
            &alice,
            json!({"code": backup[1]}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let fresh: Vec<String> = r.1["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(fresh.len(), 12);
    let r = login_body(
        &s,
        json!({"username": "alice", "password": PASSWORD, "code": backup[2]}),
    )
    .await;
    assert_eq!(r.1["error"], "totp-invalid", "old backup code: {}", r.1);

    // Sensitive calls by a TOTP user ask for TOTP.
    let r = s
        .post(
            "/api/v1/users.update",
            &alice,
            json!({"userId": alice.user_id, "data": {"name": "Alice"}}),
        )
        .await;
    assert_error(&r, 400, Some("totp-required"));
    assert_eq!(r.1["details"]["method"], "totp", "{}", r.1);
    let with_code = [("x-2fa-method", "totp"), ("x-2fa-code", fresh[0].as_str())];
    let r = post_with(
        &s,
        "/api/v1/users.update",
        Some(&alice),
        json!({"userId": alice.user_id, "data": {"name": "Alice"}}),
        &with_code,
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);

    // Disabling: a code is required, a wrong one changes nothing.
    let r = s.post("/api/v1/users.disableTotp", &alice, json!({})).await;
    assert_error(&r, 400, Some("invalid-params"));
    let r = s
        .post(
            "/api/v1/users.disableTotp",
            &alice,
            json!({"code": wrong_code(&secret)}),
        )
        .await;
    assert_eq!(r.1["disabled"], false, "{}", r.1);
    assert_eq!(
        s.get("/api/v1/me", &alice).await.1["services"]["totp"]["enabled"],
        true
    );
    let r = s
        .post(
            "/api/v1/users.disableTotp",
            &alice,
            json!({"code": fresh[1]}),
        )
        .await;
    assert_eq!(r.1["disabled"], true, "{}", r.1);
    assert_eq!(
        s.get("/api/v1/me", &alice).await.1["services"]["totp"]["enabled"],
        false
    );
    let r = s.get("/api/v1/users.totpCodesRemaining", &alice).await;
    assert_error(&r, 400, Some("invalid-totp"));
    assert_eq!(
        login_body(&s, json!({"username": "alice", "password": PASSWORD}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn sensitive_calls_ask_for_the_password_when_no_method_is_on() {
    for backend in backends() {
        let s = Server::start_with(backend, STRICT).await;
        let admin = s.user("root").await;
        let bob = s.user("bob").await;
        let body = json!({"userId": bob.user_id, "data": {"name": "Robert"}});
        let r = s.post("/api/v1/users.update", &admin, body.clone()).await;
        assert_error(&r, 400, Some("totp-required"));
        assert_eq!(
            r.1["details"],
            json!({"method": "password", "codeGenerated": false, "availableMethods": []})
        );
        let wrong = [("x-2fa-method", "password"), ("x-2fa-code", "0000")];
        let r = post_with(
            &s,
            "/api/v1/users.update",
            Some(&admin),
            body.clone(),
            &wrong,
        )
        .await;
        assert_error(&r, 400, Some("totp-invalid"));
        let info = s
            .get(
                &format!("/api/v1/users.info?userId={}", bob.user_id),
                &admin,
            )
            .await
            .1;
        assert_eq!(info["user"]["name"], "bob", "nothing changed: {info}");
        let r = post_with_password(&s, "/api/v1/users.update", &admin, body).await;
        assert_eq!(r.0, 200, "{}", r.1);
        // Settings and permission changes and user deletion are guarded the same way.
        let r = s
            .post(
                "/api/v1/settings/Site_Name",
                &admin,
                json!({"value": "Elsewhere"}),
            )
            .await;
        assert_error(&r, 400, Some("totp-required"));
        let r = s
            .post(
                "/api/v1/users.delete",
                &admin,
                json!({"userId": bob.user_id}),
            )
            .await;
        assert_error(&r, 400, Some("totp-required"));
        let r = post_with_password(
            &s,
            "/api/v1/users.delete",
            &admin,
            json!({"userId": bob.user_id}),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
    }
}

#[tokio::test]
async fn password_fallback_and_sign_up_grace_follow_the_settings() {
    for backend in backends() {
        // Fallback off: users without a second factor are not asked.
        let s = Server::start_with(
            backend,
            &[
                (
                    "OVERWRITE_SETTING_Accounts_TwoFactorAuthentication_RememberFor",
                    "0",
                ),
                (
                    "OVERWRITE_SETTING_Accounts_TwoFactorAuthentication_Enforce_Password_Fallback",
                    "false",
                ),
            ],
        )
        .await;
        let admin = s.user("root").await;
        let r = s
            .post(
                "/api/v1/users.update",
                &admin,
                json!({"userId": admin.user_id, "data": {"name": "R"}}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        drop(s);
        // Default RememberFor: a new account is not asked (Rocket.Chat's grace after sign-up).
        let s = Server::start(backend).await;
        let admin = s.user("root").await;
        let r = s
            .post(
                "/api/v1/users.update",
                &admin,
                json!({"userId": admin.user_id, "data": {"name": "R"}}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
    }
}

#[tokio::test]
async fn a_mandatory_role_keeps_users_to_the_set_up_until_it_is_done() {
    for backend in backends() {
        let s = Server::start_with(backend, STRICT).await;
        let admin = s.user("root").await;
        let carol = s.user("carol").await;
        let r = s
            .post(
                "/api/v1/roles.create",
                &admin,
                json!({"name": "auditor", "mandatory2fa": true}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let role_id = r.1["role"]["_id"].as_str().unwrap().to_string();
        let r = s
            .post(
                "/api/v1/roles.addUserToRole",
                &admin,
                json!({"roleId": role_id, "username": "carol"}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);

        let r = s.get("/api/v1/channels.list", &carol).await;
        assert_error(&r, 403, Some("error-two-factor-setup-required"));
        let r = s
            .post(
                "/api/v1/chat.postMessage",
                &carol,
                json!({"channel": "#general", "text": "hi"}),
            )
            .await;
        assert_error(&r, 403, Some("error-two-factor-setup-required"));
        let mut d = Ddp::connect(&s).await;
        d.resume(&carol).await;
        let r = d.call("rooms/get", json!([])).await;
        assert_eq!(
            r["error"]["error"], "error-two-factor-setup-required",
            "{r}"
        );
        // Who she is and the set-up itself stay open.
        assert_eq!(s.get("/api/v1/me", &carol).await.0, 200);
        enrol(&s, &carol).await;
        assert_eq!(s.get("/api/v1/channels.list", &carol).await.0, 200);
        let r = d.call("rooms/get", json!([])).await;
        assert!(r["result"].is_array(), "{r}");
        // Others are not affected.
        let dave = s.user("dave").await;
        assert_eq!(s.get("/api/v1/channels.list", &dave).await.0, 200);
    }
}

#[tokio::test]
async fn admin_and_operator_resets() {
    for backend in backends() {
        let s = Server::start_with(backend, STRICT).await;
        let admin = s.user("root").await;
        let erin = s.user("erin").await;
        let frank = s.user("frank").await;
        enrol(&s, &erin).await;

        let r = s
            .post(
                "/api/v1/users.resetTOTP",
                &frank,
                json!({"userId": erin.user_id}),
            )
            .await;
        assert_error(&r, 403, Some("error-unauthorized"));
        let r = s
            .post(
                "/api/v1/users.resetTOTP",
                &admin,
                json!({"userId": erin.user_id}),
            )
            .await;
        assert_error(&r, 400, Some("totp-required"));
        let r = post_with_password(
            &s,
            "/api/v1/users.resetTOTP",
            &admin,
            json!({"userId": erin.user_id}),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        // Erin was logged out and logs in with her password alone.
        assert_eq!(s.get("/api/v1/me", &erin).await.0, 401);
        let r = login_body(&s, json!({"username": "erin", "password": PASSWORD})).await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["data"]["me"]["services"]["totp"]["enabled"], false);

        // The operator's reset, with the server stopped.
        let frank_secret = enrol(&s, &frank).await.0;
        let db = s.db_url().to_string();
        let dir = s.stop();
        let mut args = vec!["admin", "reset-2fa", "--username", "frank", "--data-dir"];
        let data = dir.path().to_str().unwrap().to_string();
        args.push(&data);
        if !db.is_empty() {
            args.extend(["--database-url", db.as_str()]);
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains(&frank_secret), "secret in the log: {err}");
        let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_apogee"))
            .args([
                "admin",
                "reset-2fa",
                "--username",
                "nobody",
                "--data-dir",
                &data,
            ])
            .args(if db.is_empty() {
                vec![]
            } else {
                vec!["--database-url", db.as_str()]
            })
            .output()
            .unwrap();
        assert!(!unknown.status.success());
        let s = Server::start_in(backend, dir, STRICT, (!db.is_empty()).then_some(db)).await;
        let r = login_body(&s, json!({"username": "frank", "password": PASSWORD})).await;
        assert_eq!(r.0, 200, "{}", r.1);
    }
}

#[tokio::test]
async fn ddp_methods_and_login() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let gina = s.user("gina").await;
        let mut d = Ddp::connect(&s).await;
        d.resume(&gina).await;
        // A new account is not asked for a second factor to enrol (RememberFor's grace).
        let r = d.call("2fa:enable", json!([])).await;
        let secret = r["result"]["secret"].as_str().unwrap().to_string();
        assert!(
            r["result"]["url"]
                .as_str()
                .unwrap()
                .starts_with("otpauth://"),
            "{r}"
        );
        let r = d
            .call("2fa:validateTempToken", json!([wrong_code(&secret)]))
            .await;
        assert_eq!(r["error"]["error"], "invalid-totp", "{r}");
        let r = d
            .call("2fa:validateTempToken", json!([code_at(&secret, 0)]))
            .await;
        let backup: Vec<String> = r["result"]["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let r = d.call("2fa:checkCodesRemaining", json!([])).await;
        assert_eq!(r["result"]["remaining"], 12, "{r}");

        let mut d2 = Ddp::connect(&s).await;
        let login = json!({"user": {"username": "gina"}, "password": {"digest": digest(PASSWORD), "algorithm": "sha-256"}});
        let r = d2.call("login", json!([login])).await;
        assert_eq!(r["error"]["error"], "totp-required", "{r}");
        assert_eq!(r["error"]["details"]["method"], "totp", "{r}");
        let r = d2
            .call(
                "login",
                json!([{"totp": {"login": login, "code": wrong_code(&secret)}}]),
            )
            .await;
        assert_eq!(r["error"]["error"], "totp-invalid", "{r}");
        let r = d2
            .call(
                "login",
                json!([{"totp": {"login": login, "code": backup[0]}}]),
            )
            .await;
        assert_eq!(r["result"]["type"], "password", "{r}");

        let r = d
            .call("2fa:regenerateCodes", json!([wrong_code(&secret)]))
            .await;
        assert_eq!(r["result"], Value::Null, "{r}");
        let r = d.call("2fa:disable", json!([wrong_code(&secret)])).await;
        assert_eq!(r["result"], false, "{r}");
        let r = d.call("2fa:disable", json!([backup[1]])).await;
        assert_eq!(r["result"], true, "{r}");
    }
}

/// The `123-456` code of an authentication-code mail, digits only.
fn mailed_code(body: &str) -> String {
    let line = body
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 7 && l.as_bytes()[3] == b'-')
        .unwrap_or_else(|| panic!("no code in {body}"));
    line.replace('-', "")
}

/// A user with a verified address (e-mail codes go only to verified ones), logged in.
async fn verified_user(s: &Server, admin: &Auth, name: &str) -> Auth {
    let r = s
        .post(
            "/api/v1/users.create",
            admin,
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "name": name, "verified": true}),
        )
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    s.login(name).await
}

#[tokio::test]
async fn email_codes_end_to_end() {
    let Some(mailbox) = Mailbox::from_env() else {
        eprintln!("skipped: no SMTP (scripts/with-smtp.sh)");
        return;
    };
    for backend in backends() {
        let mut env = mailbox.server_env();
        env.extend_from_slice(STRICT);
        let s = Server::start_with(backend, &env).await;
        let admin = s.user("root").await;
        let hank = verified_user(&s, &admin, "hank").await;
        let to = "hank@example.com";
        let login = json!({"username": "hank", "password": PASSWORD});

        let r = s
            .post("/api/v1/users.2fa.enableEmail", &hank, json!({}))
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let me = s.get("/api/v1/me", &hank).await.1;
        assert_eq!(me["services"]["email2fa"]["enabled"], true, "{me}");

        // Login without a code: one is mailed, and the answer says so.
        let r = login_body(&s, login.clone()).await;
        assert_eq!(r.0, 401, "{}", r.1);
        assert_eq!(r.1["error"], "totp-required", "{}", r.1);
        assert_eq!(r.1["details"]["method"], "email", "{}", r.1);
        assert_eq!(r.1["details"]["codeGenerated"], true, "{}", r.1);
        assert_eq!(r.1["details"]["emailOrUsername"], "hank", "{}", r.1);
        let code = mailed_code(&mailbox.wait_for(to).await);
        // Asking again reuses the pending code.
        let r = login_body(&s, login.clone()).await;
        assert_eq!(r.1["details"]["codeGenerated"], false, "{}", r.1);
        assert!(r.1["details"]["codeExpires"].is_string(), "{}", r.1);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let mut with = login.clone();
        with["code"] = json!(wrong);
        let r = login_body(&s, with.clone()).await;
        assert_eq!(r.1["error"], "totp-invalid", "{}", r.1);
        // `123-456` as mailed is accepted, once.
        with["code"] = json!(format!("{}-{}", &code[..3], &code[3..]));
        let r = login_body(&s, with.clone()).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = login_body(&s, with.clone()).await;
        assert_eq!(r.1["error"], "totp-invalid", "spent code: {}", r.1);
        let _ = mailbox.wait_for(to).await; // the replacement sent with that refusal

        // A code asked for from the login form (no session), and unknown names told nothing.
        let r = post_with(
            &s,
            "/api/v1/users.2fa.sendEmailCode",
            None,
            json!({"emailOrUsername": to}),
            &[],
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let code = mailed_code(&mailbox.wait_for(to).await);
        let r = post_with(
            &s,
            "/api/v1/users.2fa.sendEmailCode",
            None,
            json!({"emailOrUsername": "nobody"}),
            &[],
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let r = post_with(&s, "/api/v1/users.2fa.sendEmailCode", None, json!({}), &[]).await;
        assert_eq!(r.0, 400, "{}", r.1);

        // Guessing is cut off: the fifth wrong code ends the code's life.
        with["code"] = json!(wrong);
        for attempt in 1..=5 {
            let r = login_body(&s, with.clone()).await;
            let expected = if attempt < 5 {
                "totp-invalid"
            } else {
                "totp-max-attempts"
            };
            assert_eq!(r.1["error"], expected, "attempt {attempt}: {}", r.1);
        }
        with["code"] = json!(code);
        let r = login_body(&s, with.clone()).await;
        assert_eq!(
            r.0, 401,
            "the right code after too many wrong ones: {}",
            r.1
        );
        let code = mailed_code(&mailbox.wait_for(to).await);
        with["code"] = json!(code);
        let r = login_body(&s, with.clone()).await;
        assert_eq!(r.0, 200, "{}", r.1);

        // Turning it off needs a code, never a remembered check.
        let r = s
            .post("/api/v1/users.2fa.disableEmail", &hank, json!({}))
            .await;
        assert_error(&r, 400, Some("totp-required"));
        assert_eq!(r.1["details"]["method"], "email", "{}", r.1);
        let code = mailed_code(&mailbox.wait_for(to).await);
        let h = [("x-2fa-method", "email"), ("x-2fa-code", code.as_str())];
        let r = post_with(
            &s,
            "/api/v1/users.2fa.disableEmail",
            Some(&hank),
            json!({}),
            &h,
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        let me = s.get("/api/v1/me", &hank).await.1;
        assert_eq!(me["services"]["email2fa"]["enabled"], false, "{me}");
        assert_eq!(login_body(&s, login.clone()).await.0, 200);

        // An administrator's TOTP reset is announced to the user.
        let r = post_with_password(
            &s,
            "/api/v1/users.resetTOTP",
            &admin,
            json!({"userId": hank.user_id}),
        )
        .await;
        assert_eq!(r.0, 200, "{}", r.1);
        assert!(mailbox.wait_for(to).await.contains("TOTP has been reset"));
        drop(s);

        // Expired codes are refused.
        let mut env = mailbox.server_env();
        env.push((
            "OVERWRITE_SETTING_Accounts_TwoFactorAuthentication_By_Email_Code_Expiration",
            "1",
        ));
        let s = Server::start_with(backend, &env).await;
        let admin = s.user("root").await;
        let ivy = verified_user(&s, &admin, "ivy").await;
        s.post("/api/v1/users.2fa.enableEmail", &ivy, json!({}))
            .await;
        let r = login_body(&s, json!({"username": "ivy", "password": PASSWORD})).await;
        assert_eq!(r.1["error"], "totp-required", "{}", r.1);
        let code = mailed_code(&mailbox.wait_for("ivy@example.com").await);
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let r = login_body(
            &s,
            json!({"username": "ivy", "password": PASSWORD, "code": code}),
        )
        .await;
        assert_eq!(r.1["error"], "totp-invalid", "expired code: {}", r.1);
    }
}
