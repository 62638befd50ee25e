//! Tokens, sessions and passwords over HTTP and DDP: personal access tokens, device management
//! with revocation (`force_logout` to the revoked connection), the password policy, history,
//! own and forced password changes, and the refusals that must change nothing.

mod common;

use common::ddp::Ddp;
use common::{Auth, PASSWORD, Server, assert_error, backends, run_sql};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0.6099.109 Safari/537.36";

/// A password login with the given `User-Agent`.
async fn login_with(
    s: &Server,
    username: &str,
    password: &str,
    agent: &str,
) -> (StatusCode, Value) {
    let resp = s
        .client
        .post(format!("{}/api/v1/login", s.base))
        .header("User-Agent", agent)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login");
    let status = resp.status();
    (status, resp.json().await.expect("json"))
}

async fn me(s: &Server, a: &Auth) -> (StatusCode, Value) {
    s.get("/api/v1/me", a).await
}

#[tokio::test]
async fn personal_access_tokens() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let _admin = s.user("root").await;
        let alice = s.user("alice").await;
        let make = |name: &str, bypass: bool| json!({"tokenName": name, "bypassTwoFactor": bypass});

        let (st, v) = s
            .post(
                "/api/v1/users.generatePersonalAccessToken",
                &alice,
                make("ci", true),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let token = v["token"].as_str().unwrap().to_string();
        let pat = Auth {
            user_id: alice.user_id.clone(),
            token: token.clone(),
        };
        assert_eq!(
            me(&s, &pat).await.1["username"],
            "alice",
            "the token logs in"
        );

        let dup = s
            .post(
                "/api/v1/users.generatePersonalAccessToken",
                &alice,
                make("ci", false),
            )
            .await;
        assert_error(&dup, 400, Some("error-token-already-exists"));

        let (_, list) = s.get("/api/v1/users.getPersonalAccessTokens", &alice).await;
        let tokens = list["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 1, "{list}");
        assert_eq!(tokens[0]["name"], "ci");
        assert_eq!(tokens[0]["bypassTwoFactor"], true);
        assert_eq!(tokens[0]["lastTokenPart"], &token[token.len() - 6..]);
        assert!(tokens[0]["createdAt"].is_string());
        assert!(
            !list.to_string().contains(&token),
            "the token is shown once only"
        );

        // Logging out of a session leaves personal tokens alone.
        s.post("/api/v1/logout", &alice, json!({})).await;
        assert_eq!(me(&s, &pat).await.0, 200);
        let alice = s.login("alice").await;

        let (st, v) = s
            .post(
                "/api/v1/users.regeneratePersonalAccessToken",
                &alice,
                json!({"tokenName": "ci"}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let fresh = Auth {
            user_id: alice.user_id.clone(),
            token: v["token"].as_str().unwrap().to_string(),
        };
        assert_eq!(me(&s, &pat).await.0, 401, "the old token is gone");
        assert_eq!(me(&s, &fresh).await.0, 200);
        let (_, list) = s.get("/api/v1/users.getPersonalAccessTokens", &alice).await;
        assert_eq!(
            list["tokens"][0]["bypassTwoFactor"], true,
            "kept on regeneration"
        );

        for path in [
            "/api/v1/users.regeneratePersonalAccessToken",
            "/api/v1/users.removePersonalAccessToken",
        ] {
            let missing = s.post(path, &alice, json!({"tokenName": "nope"})).await;
            assert_error(&missing, 400, Some("error-token-does-not-exists"));
        }
        // Another user cannot touch Alice's token by its name.
        let bob = s.user("bob").await;
        let other = s
            .post(
                "/api/v1/users.removePersonalAccessToken",
                &bob,
                json!({"tokenName": "ci"}),
            )
            .await;
        assert_error(&other, 400, Some("error-token-does-not-exists"));
        assert_eq!(me(&s, &fresh).await.0, 200);
        // Names are per user: Bob may have his own "ci".
        let (st, _) = s
            .post(
                "/api/v1/users.generatePersonalAccessToken",
                &bob,
                make("ci", false),
            )
            .await;
        assert_eq!(st, 200);

        let (st, _) = s
            .post(
                "/api/v1/users.removePersonalAccessToken",
                &alice,
                json!({"tokenName": "ci"}),
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(me(&s, &fresh).await.0, 401);
        let (_, list) = s.get("/api/v1/users.getPersonalAccessTokens", &alice).await;
        assert_eq!(list["tokens"], json!([]));

        let missing_name = s
            .post(
                "/api/v1/users.generatePersonalAccessToken",
                &alice,
                json!({}),
            )
            .await;
        assert_error(&missing_name, 400, Some("invalid-params"));
    }
}

#[tokio::test]
async fn personal_access_tokens_need_the_permission() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let admin = s.user("root").await;
        let carol = s.user("carol").await;
        let (st, v) = s
            .post(
                "/api/v1/permissions.update",
                &admin,
                json!({"permissions": [{"_id": "create-personal-access-tokens", "roles": ["admin"]}]}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let refused = s
            .post(
                "/api/v1/users.generatePersonalAccessToken",
                &carol,
                json!({"tokenName": "x"}),
            )
            .await;
        assert_error(&refused, 400, Some("not-authorized"));
        let refused = s.get("/api/v1/users.getPersonalAccessTokens", &carol).await;
        assert_error(&refused, 400, Some("not-authorized"));
    }
}

#[tokio::test]
async fn device_management_lists_and_revokes_sessions() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let admin = s.user("root").await;
        s.user("dora").await;
        let (_, v) = login_with(&s, "dora", PASSWORD, FIREFOX).await;
        let firefox = Auth::of_login(&v);
        let (_, v) = login_with(&s, "dora", PASSWORD, CHROME).await;
        let chrome = Auth::of_login(&v);

        let (st, list) = s
            .get(
                "/api/v1/sessions/list?sort=%7B%22loginAt%22%3A-1%7D",
                &chrome,
            )
            .await;
        assert_eq!(st, 200, "{list}");
        assert_eq!(
            list["total"], 3,
            "registration's login and two more: {list}"
        );
        let sessions = list["sessions"].as_array().unwrap();
        assert_eq!(
            sessions[0]["device"]["name"], "Chrome",
            "newest first: {list}"
        );
        assert_eq!(sessions[0]["device"]["os"]["name"], "Windows");
        assert_eq!(sessions[0]["device"]["type"], "browser");
        assert_eq!(sessions[1]["device"]["name"], "Firefox");
        assert_eq!(sessions[1]["ip"], "127.0.0.1");
        assert!(sessions[1]["loginAt"].is_string());
        assert_eq!(sessions[1]["userId"], firefox.user_id.as_str());
        assert!(sessions[1].get("_user").is_none(), "own list has no _user");
        assert!(!list.to_string().contains(&firefox.token));
        let firefox_sid = sessions[1]["sessionId"].as_str().unwrap().to_string();
        assert_eq!(sessions[1]["_id"], firefox_sid.as_str());

        let (_, filtered) = s.get("/api/v1/sessions/list?filter=firef", &chrome).await;
        assert_eq!(filtered["total"], 1, "{filtered}");
        let (_, paged) = s
            .get("/api/v1/sessions/list?count=1&offset=1", &chrome)
            .await;
        assert_eq!(
            (
                paged["count"].clone(),
                paged["offset"].clone(),
                paged["total"].clone()
            ),
            (json!(1), json!(1), json!(3))
        );
        assert_eq!(paged["sessions"].as_array().unwrap().len(), 1);
        let bad_sort = s
            .get("/api/v1/sessions/list?sort=%7B%22ip%22%3A1%7D", &chrome)
            .await;
        assert_error(&bad_sort, 400, None);
        assert_eq!(bad_sort.1["error"], "error-invalid-sort-keys");

        let (st, info) = s
            .get(
                &format!("/api/v1/sessions/info?sessionId={firefox_sid}"),
                &chrome,
            )
            .await;
        assert_eq!(st, 200, "{info}");
        assert_eq!(info["device"]["name"], "Firefox");

        // Someone else's session: not found for them, and nothing ends.
        let eve = s.user("eve").await;
        let (st, v) = s
            .get(
                &format!("/api/v1/sessions/info?sessionId={firefox_sid}"),
                &eve,
            )
            .await;
        assert_eq!(
            (st.as_u16(), v["error"].clone()),
            (404, json!("Session not found")),
            "{v}"
        );
        let (st, _) = s
            .post(
                "/api/v1/sessions/logout.me",
                &eve,
                json!({"sessionId": firefox_sid}),
            )
            .await;
        assert_eq!(st, 404);
        assert_eq!(me(&s, &firefox).await.0, 200, "untouched");
        // Administrators' endpoints need their permissions.
        assert_error(&s.get("/api/v1/sessions/list.all", &eve).await, 403, None);
        assert_error(
            &s.get(
                &format!("/api/v1/sessions/info.admin?sessionId={firefox_sid}"),
                &eve,
            )
            .await,
            403,
            None,
        );
        assert_error(
            &s.post(
                "/api/v1/sessions/logout",
                &eve,
                json!({"sessionId": firefox_sid}),
            )
            .await,
            403,
            None,
        );
        assert_eq!(me(&s, &firefox).await.0, 200, "still untouched");
        let missing = s
            .post("/api/v1/sessions/logout.me", &chrome, json!({}))
            .await;
        assert_error(&missing, 400, Some("invalid-params"));

        // Revoking a session: its token stops working and its connection is told and closed.
        let mut ddp = Ddp::connect(&s).await;
        ddp.resume(&firefox).await;
        let event = format!("{}/force_logout", firefox.user_id);
        assert_eq!(ddp.sub("stream-notify-user", &event).await["msg"], "ready");
        let mut bystander = Ddp::connect(&s).await;
        bystander.resume(&chrome).await;
        let (st, v) = s
            .post(
                "/api/v1/sessions/logout.me",
                &chrome,
                json!({"sessionId": firefox_sid}),
            )
            .await;
        assert_eq!(
            (st.as_u16(), v["sessionId"].clone()),
            (200, json!(firefox_sid)),
            "{v}"
        );
        let told = ddp.until(|v| v["msg"] == "changed").await;
        assert_eq!(told["collection"], "stream-notify-user");
        assert_eq!(told["fields"]["eventName"], event.as_str());
        assert_eq!(ddp.closed().await, Some(1000));
        assert_eq!(me(&s, &firefox).await.0, 401);
        assert_eq!(me(&s, &chrome).await.0, 200, "the other session stays");
        let pong = bystander.call("UserPresence:online", json!([])).await;
        assert!(
            pong.get("error").is_none(),
            "the other connection stays open: {pong}"
        );

        // The administrator's view: everyone's sessions, with whose they are.
        let (st, all) = s.get("/api/v1/sessions/list.all?filter=dora", &admin).await;
        assert_eq!(st, 200, "{all}");
        assert_eq!(all["total"], 2, "{all}");
        assert_eq!(all["sessions"][0]["_user"]["username"], "dora");
        let chrome_sid = all["sessions"][0]["sessionId"]
            .as_str()
            .unwrap()
            .to_string();
        let (st, info) = s
            .get(
                &format!("/api/v1/sessions/info.admin?sessionId={chrome_sid}"),
                &admin,
            )
            .await;
        assert_eq!(st, 200, "{info}");
        assert_eq!(info["_user"]["username"], "dora");
        let (_, by_name) = s
            .get(
                "/api/v1/sessions/list.all?sort=%7B%22_user.username%22%3A1%7D",
                &admin,
            )
            .await;
        let names: Vec<&str> = by_name["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["_user"]["username"].as_str().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let (st, _) = s
            .post(
                "/api/v1/sessions/logout",
                &admin,
                json!({"sessionId": chrome_sid}),
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(me(&s, &chrome).await.0, 401);
        assert_eq!(bystander.closed().await, Some(1000));
        let gone = s
            .get(
                &format!("/api/v1/sessions/info.admin?sessionId={chrome_sid}"),
                &admin,
            )
            .await;
        assert_eq!(gone.0, 404);
    }
}

#[tokio::test]
async fn password_policy_applies_everywhere_with_its_reasons() {
    for backend in backends() {
        let s = Server::start_with(
            backend,
            &[("OVERWRITE_SETTING_Accounts_Password_Policy_Enabled", "true")],
        )
        .await;
        let (_, policy) = s
            .call(Method::GET, "/api/v1/pw.getPolicy", None, None)
            .await;
        assert_eq!(policy["enabled"], true, "{policy}");
        assert_eq!(
            policy["policy"][0],
            json!(["get-password-policy-minLength", {"minLength": 7}])
        );

        let weak =
            json!({"username": "weak", "email": "weak@example.com", "pass": "abc", "name": "w"});
        let refused = s
            .call(Method::POST, "/api/v1/users.register", None, Some(weak))
            .await;
        assert_error(&refused, 400, Some("error-password-policy-not-met"));
        let reasons: Vec<&str> = refused.1["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["error"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "error-password-policy-not-met-minLength",
                "error-password-policy-not-met-oneUppercase",
                "error-password-policy-not-met-oneNumber",
                "error-password-policy-not-met-oneSpecial"
            ]
        );
        assert_eq!(
            refused.1["details"][0]["message"],
            "The password does not meet the minimum length password policy."
        );
        let good = "Str0ng!pass";
        let ok =
            json!({"username": "root", "email": "root@example.com", "pass": good, "name": "r"});
        let (st, v) = s
            .call(Method::POST, "/api/v1/users.register", None, Some(ok))
            .await;
        assert_eq!(st, 200, "{v}");
        let (_, v) = login_with(&s, "root", good, FIREFOX).await;
        let admin = Auth::of_login(&v);
        let create = |pw: &str| json!({"username": "made", "email": "made@example.com", "password": pw, "name": "m"});
        let refused = s
            .post("/api/v1/users.create", &admin, create("aaaaAAA1!"))
            .await;
        assert_error(&refused, 400, Some("error-password-policy-not-met"));
        assert_eq!(
            refused.1["details"][0]["error"],
            "error-password-policy-not-met-repeatingCharacters"
        );
        let (st, made) = s.post("/api/v1/users.create", &admin, create(good)).await;
        assert_eq!(st, 200, "{made}");
        let uid = made["user"]["_id"].as_str().unwrap();
        let refused = s
            .post(
                "/api/v1/users.update",
                &admin,
                json!({"userId": uid, "data": {"password": "short"}}),
            )
            .await;
        assert_error(&refused, 400, Some("error-password-policy-not-met"));
        assert_eq!(
            login_with(&s, "made", good, FIREFOX).await.0,
            200,
            "unchanged"
        );
    }
}

#[tokio::test]
async fn own_password_change_checks_the_current_one_and_ends_other_sessions() {
    for backend in backends() {
        let s = Server::start_with(
            backend,
            &[
                (
                    "OVERWRITE_SETTING_Accounts_Password_History_Enabled",
                    "true",
                ),
                ("OVERWRITE_SETTING_Accounts_Password_History_Amount", "3"),
            ],
        )
        .await;
        s.user("root").await;
        let here = s.user("fay").await;
        let elsewhere = s.login("fay").await;
        let mut other_conn = Ddp::connect(&s).await;
        other_conn.resume(&elsewhere).await;
        let change = |current: &str, new: &str| json!({"data": {"currentPassword": common_digest(current), "newPassword": new}});

        let wrong = s
            .post(
                "/api/v1/users.updateOwnBasicInfo",
                &here,
                change("not it", "n3w-Password"),
            )
            .await;
        assert_error(&wrong, 400, Some("error-invalid-password"));
        assert_eq!(me(&s, &elsewhere).await.0, 200, "nothing ended");
        assert_eq!(
            login_with(&s, "fay", PASSWORD, FIREFOX).await.0,
            200,
            "nothing changed"
        );
        let same = s
            .post(
                "/api/v1/users.updateOwnBasicInfo",
                &here,
                change(PASSWORD, PASSWORD),
            )
            .await;
        assert_error(&same, 400, Some("error-password-in-history"));

        let (st, v) = s
            .post(
                "/api/v1/users.updateOwnBasicInfo",
                &here,
                change(PASSWORD, "n3w-Password"),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["user"]["username"], "fay");
        assert_eq!(me(&s, &here).await.0, 200, "this session stays");
        assert_eq!(me(&s, &elsewhere).await.0, 401, "the others end");
        assert_eq!(other_conn.closed().await, Some(1000));
        assert_eq!(login_with(&s, "fay", PASSWORD, FIREFOX).await.0, 401);
        assert_eq!(login_with(&s, "fay", "n3w-Password", FIREFOX).await.0, 200);

        // Back to the first password: still in the history of three.
        let back = s
            .post(
                "/api/v1/users.updateOwnBasicInfo",
                &here,
                change("n3w-Password", PASSWORD),
            )
            .await;
        assert_error(&back, 400, Some("error-password-in-history"));
        // Plain current passwords are accepted too.
        let plain =
            json!({"data": {"currentPassword": "n3w-Password", "newPassword": "th1rd-Password"}});
        let (st, v) = s
            .post("/api/v1/users.updateOwnBasicInfo", &here, plain)
            .await;
        assert_eq!(st, 200, "{v}");
    }
}

fn common_digest(plain: &str) -> String {
    apogee_core::passwords::digest(plain)
}

#[tokio::test]
async fn forced_password_change_by_setuserpassword() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let admin = s.user("root").await;
        let (st, made) = s
            .post(
                "/api/v1/users.create",
                &admin,
                json!({"username": "gus", "email": "gus@example.com", "password": PASSWORD, "name": "g", "requirePasswordChange": true}),
            )
            .await;
        assert_eq!(st, 200, "{made}");
        assert_eq!(made["user"]["requirePasswordChange"], true, "admins see it");
        let gus = s.login("gus").await;
        assert_eq!(me(&s, &gus).await.1["requirePasswordChange"], true);

        let mut ddp = Ddp::connect(&s).await;
        ddp.resume(&gus).await;
        let blank = ddp.call("setUserPassword", json!(["   "])).await;
        assert_eq!(
            blank["error"]["error"], "error-password-policy-not-met",
            "{blank}"
        );
        let r = ddp.call("setUserPassword", json!(["a-fresh-one"])).await;
        assert!(r.get("error").is_none(), "{r}");
        let after = me(&s, &gus).await.1;
        assert!(after.get("requirePasswordChange").is_none(), "{after}");
        let again = ddp.call("setUserPassword", json!(["another-one"])).await;
        assert_eq!(again["error"]["error"], "error-not-allowed", "{again}");
        assert_eq!(login_with(&s, "gus", "a-fresh-one", FIREFOX).await.0, 200);
        assert_eq!(login_with(&s, "gus", "another-one", FIREFOX).await.0, 401);

        // An administrator may set it again; users.update shows it.
        let (_, v) = s
            .post(
                "/api/v1/users.update",
                &admin,
                json!({"userId": gus.user_id, "data": {"requirePasswordChange": true}}),
            )
            .await;
        assert_eq!(v["user"]["requirePasswordChange"], true, "{v}");
        // Others do not see it.
        let (_, seen) = s
            .get(
                &format!("/api/v1/users.info?userId={}", gus.user_id),
                &s.user("hal").await,
            )
            .await;
        assert!(
            seen["user"].get("requirePasswordChange").is_none(),
            "{seen}"
        );
    }
}

#[tokio::test]
async fn forgot_password_does_not_tell_who_exists() {
    for backend in backends() {
        let s = Server::start(backend).await;
        s.user("root").await;
        for email in ["root@example.com", "nobody@example.com"] {
            let (st, v) = s
                .call(
                    Method::POST,
                    "/api/v1/users.forgotPassword",
                    None,
                    Some(json!({"email": email})),
                )
                .await;
            assert_eq!(
                (st.as_u16(), v.clone()),
                (200, json!({"success": true})),
                "{email}"
            );
        }
        let bad = s
            .call(
                Method::GET,
                "/api/v1/pw.getPolicyReset?token=made-up",
                None,
                None,
            )
            .await;
        assert_eq!(
            (bad.0.as_u16(), bad.1.clone()),
            (403, json!({"success": false, "error": "unauthorized"}))
        );
        let mut ddp = Ddp::connect(&s).await;
        let r = ddp
            .call("resetPassword", json!(["made-up", "Whatever-1"]))
            .await;
        assert_eq!(r["error"]["reason"], "Token expired", "{r}");
    }
}

#[tokio::test]
async fn expired_logins_are_refused_and_old_passwords_must_change() {
    for backend in backends() {
        let env = [("OVERWRITE_SETTING_Accounts_Password_Expiration_Days", "30")];
        let s = Server::start_with(backend, &env).await;
        s.user("root").await;
        let old = s.user("ida").await;
        let fresh = s.login("ida").await;
        assert!(
            me(&s, &fresh)
                .await
                .1
                .get("requirePasswordChange")
                .is_none()
        );
        let (dir, db) = s.crash();
        // The first login is 100 days old (past Accounts_LoginExpiration's 90, though its
        // stored expiry is not), the password 31 days.
        let day: i64 = 86_400_000;
        let hashed = apogee_core::passwords::hash_token(&old.token);
        run_sql(
            backend,
            dir.path(),
            db.as_deref(),
            &format!(
                "UPDATE login_tokens SET created_at = created_at - {} WHERE hashed = '{hashed}'; \
                 UPDATE users SET password_changed_at = password_changed_at - {} WHERE username_lower = 'ida'",
                100 * day,
                31 * day
            ),
        );
        let s = Server::start_in(backend, dir, &env, db).await;
        assert_eq!(me(&s, &old).await.0, 401, "expired");
        let mut ddp = Ddp::connect(&s).await;
        let r = ddp.call("login", json!([{"resume": old.token}])).await;
        assert!(r["error"].is_object(), "{r}");
        let (_, list) = s.get("/api/v1/sessions/list", &fresh).await;
        assert_eq!(list["total"], 1, "expired sessions are not listed: {list}");
        assert!(
            me(&s, &fresh)
                .await
                .1
                .get("requirePasswordChange")
                .is_none(),
            "a resume does not check"
        );

        let (st, v) = login_with(&s, "ida", PASSWORD, FIREFOX).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"]["me"]["requirePasswordChange"], true, "{v}");
        assert_eq!(
            v["data"]["me"]["requirePasswordChangeReason"],
            "Your password has expired"
        );
        let ida = Auth::of_login(&v);
        let (st, v) = s
            .post(
                "/api/v1/users.updateOwnBasicInfo",
                &ida,
                json!({"data": {"currentPassword": common_digest(PASSWORD), "newPassword": "a-new-one"}}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let now = me(&s, &ida).await.1;
        assert!(
            now.get("requirePasswordChange").is_none(),
            "cleared by the change: {now}"
        );
        assert!(now.get("requirePasswordChangeReason").is_none());
        let (_, v) = login_with(&s, "ida", "a-new-one", FIREFOX).await;
        assert!(
            v["data"]["me"].get("requirePasswordChange").is_none(),
            "{v}"
        );
    }
}

/// The reset token in a reset mail's link `<Site_Url>/reset-password/<token>`.
fn reset_token(mail: &str) -> String {
    // Undo quoted-printable soft line breaks, should the mailer have used them.
    let text = mail.replace("=\n", "");
    let at = text
        .find("http://localhost:3000/reset-password/")
        .expect("reset link")
        + 37;
    text[at..]
        .split_whitespace()
        .next()
        .expect("token")
        .to_string()
}

#[tokio::test]
async fn password_reset_by_email_end_to_end() {
    let Some(mailbox) = common::mail::Mailbox::from_env() else {
        eprintln!("skipped: no SMTP (scripts/with-smtp.sh)");
        return;
    };
    for backend in backends() {
        let mut env = mailbox.server_env();
        env.push(("OVERWRITE_SETTING_Accounts_Password_Policy_Enabled", "true"));
        env.push((
            "OVERWRITE_SETTING_Accounts_Password_History_Enabled",
            "true",
        ));
        let s = Server::start_with(backend, &env).await;
        let root = json!({"username": "root", "email": "root@example.com", "pass": PASSWORD_STRONG, "name": "r"});
        s.call(Method::POST, "/api/v1/users.register", None, Some(root))
            .await;
        let kim = json!({"username": "kim", "email": "kim@example.com", "pass": PASSWORD_STRONG, "name": "Kim"});
        let (st, v) = s
            .call(Method::POST, "/api/v1/users.register", None, Some(kim))
            .await;
        assert_eq!(st, 200, "{v}");
        let (_, v) = login_with(&s, "kim", PASSWORD_STRONG, FIREFOX).await;
        let old = Auth::of_login(&v);
        let mut old_conn = Ddp::connect(&s).await;
        old_conn.resume(&old).await;
        let forgot = |email: &str| {
            s.call(
                Method::POST,
                "/api/v1/users.forgotPassword",
                None,
                Some(json!({"email": email})),
            )
        };

        // Two requests: the second link replaces the first.
        assert_eq!(forgot("kim@example.com").await.0, 200);
        let first = reset_token(&mailbox.wait_for("kim@example.com").await);
        assert_eq!(forgot("KIM@example.com").await.0, 200);
        let mail = mailbox.wait_for("kim@example.com").await;
        assert!(mail.contains("Hello Kim"), "{mail}");
        let token = reset_token(&mail);
        assert_ne!(first, token);
        assert_eq!(
            forgot("nobody@example.com").await.1,
            json!({"success": true})
        );

        let (st, policy) = s
            .call(
                Method::GET,
                &format!("/api/v1/pw.getPolicyReset?token={token}"),
                None,
                None,
            )
            .await;
        assert_eq!(
            (st.as_u16(), policy["enabled"].clone()),
            (200, json!(true)),
            "{policy}"
        );

        let mut ddp = Ddp::connect(&s).await;
        let superseded = ddp
            .call("resetPassword", json!([first, "N3w-Passw0rd!"]))
            .await;
        assert_eq!(
            superseded["error"]["reason"], "Token expired",
            "{superseded}"
        );
        let weak = ddp.call("resetPassword", json!([token, "weak"])).await;
        assert_eq!(
            weak["error"]["error"], "error-password-policy-not-met",
            "{weak}"
        );
        let reused = ddp
            .call("resetPassword", json!([token, PASSWORD_STRONG]))
            .await;
        assert_eq!(
            reused["error"]["error"], "error-password-in-history",
            "{reused}"
        );
        assert_eq!(me(&s, &old).await.0, 200, "refusals end nothing");

        let done = ddp
            .call("resetPassword", json!([token, "N3w-Passw0rd!"]))
            .await;
        assert!(done.get("error").is_none(), "{done}");
        let new = Auth {
            user_id: done["result"]["id"].as_str().unwrap().to_string(),
            token: done["result"]["token"].as_str().unwrap().to_string(),
        };
        assert_eq!(
            me(&s, &new).await.1["username"],
            "kim",
            "logged in by the reset"
        );
        assert_eq!(me(&s, &old).await.0, 401, "every earlier session ended");
        assert_eq!(old_conn.closed().await, Some(1000));
        assert_eq!(login_with(&s, "kim", PASSWORD_STRONG, FIREFOX).await.0, 401);
        assert_eq!(login_with(&s, "kim", "N3w-Passw0rd!", FIREFOX).await.0, 200);
        let again = ddp
            .call("resetPassword", json!([token, "An0ther-Passw0rd!"]))
            .await;
        assert_eq!(
            again["error"]["reason"], "Token expired",
            "single use: {again}"
        );
        let (st, _) = s
            .call(
                Method::GET,
                &format!("/api/v1/pw.getPolicyReset?token={token}"),
                None,
                None,
            )
            .await;
        assert_eq!(st, 403);

        // An expired link is refused too.
        assert_eq!(forgot("kim@example.com").await.0, 200);
        let late = reset_token(&mailbox.wait_for("kim@example.com").await);
        let (dir, db) = s.crash();
        run_sql(
            backend,
            dir.path(),
            db.as_deref(),
            "UPDATE password_resets SET expires_at = created_at - 1",
        );
        let s = Server::start_in(backend, dir, &env, db).await;
        let mut ddp = Ddp::connect(&s).await;
        let expired = ddp
            .call("resetPassword", json!([late, "Exp1red-Passw0rd!"]))
            .await;
        assert_eq!(expired["error"]["reason"], "Token expired", "{expired}");
        assert_eq!(
            login_with(&s, "kim", "N3w-Passw0rd!", FIREFOX).await.0,
            200,
            "unchanged"
        );
        assert!(
            !mailbox.has_mail_for("nobody@example.com"),
            "no mail to unknown addresses"
        );
    }
}

/// A password the policy accepts.
const PASSWORD_STRONG: &str = "Corr3ct-Horse!";
