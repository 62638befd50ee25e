//! The audit log: security events land in a hash chain that admins can browse, that
//! `apogee admin audit verify` checks (catching edits, removals and reorderings made directly
//! in the database), and that is shipped as RFC 5424 syslog to a receiver on loopback.

mod common;

use common::{Backend, PASSWORD, Server, backends};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::Command;

async fn events(server: &Server, auth: &common::Auth, query: &str) -> Vec<Value> {
    let (status, v) = server
        .call(
            Method::GET,
            &format!("/api/v1/audit.events{query}"),
            Some(auth),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["events"].as_array().cloned().unwrap_or_default()
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect()
}

/// A few security events: users created, a failed and a good login, a setting, a role, a
/// deactivation.
async fn make_history(server: &Server) -> (common::Auth, common::Auth) {
    let admin = server.user("auditadmin").await;
    let bob = server.user("bob").await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"user": "bob", "password": "wrong"})),
        )
        .await;
    assert_eq!(status, 401);
    let calls = [
        ("/api/v1/settings/Site_Name", json!({"value": "Audited"})),
        (
            "/api/v1/roles.create",
            json!({"name": "auditors", "scope": "Users"}),
        ),
        (
            "/api/v1/users.setActiveStatus",
            json!({"userId": bob.user_id, "activeStatus": false}),
        ),
    ];
    for (path, body) in calls {
        let (status, v) = server
            .call(Method::POST, path, Some(&admin), Some(body))
            .await;
        assert_eq!(status, 200, "{path}: {v}");
    }
    (admin, bob)
}

#[tokio::test]
async fn security_events_are_recorded_and_browsable() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (admin, bob) = make_history(&server).await;
        let all = events(&server, &admin, "").await;
        let mut seen = names(&all);
        seen.reverse(); // newest first on the wire
        for expected in [
            "user.created",
            "login",
            "login.failed",
            "setting.changed",
            "role.created",
            "user.deactivated",
        ] {
            assert!(seen.contains(&expected), "{expected} missing from {seen:?}");
        }
        // Numbered without gaps, each linked to the one before.
        for pair in all.windows(2) {
            assert_eq!(
                pair[0]["seq"].as_i64().unwrap(),
                pair[1]["seq"].as_i64().unwrap() + 1
            );
            assert_eq!(pair[0]["prevHash"], pair[1]["hash"]);
        }
        let failed = all.iter().find(|e| e["event"] == "login.failed").unwrap();
        assert_eq!(failed["details"]["user"], "bob");
        assert_eq!(failed["ip"], "127.0.0.1");
        let setting = all
            .iter()
            .find(|e| e["event"] == "setting.changed")
            .unwrap();
        assert_eq!(
            setting["details"],
            json!({"id": "Site_Name", "value": "Audited"})
        );
        assert_eq!(setting["actor"]["username"], "auditadmin");

        // Filters: an event family, an actor, a page before an entry.
        let logins = events(&server, &admin, "?event=login").await;
        assert!(!logins.is_empty());
        assert!(
            names(&logins)
                .iter()
                .all(|n| *n == "login" || n.starts_with("login."))
        );
        let by_admin = events(&server, &admin, &format!("?userId={}", admin.user_id)).await;
        assert!(
            by_admin
                .iter()
                .all(|e| e["actor"]["_id"] == admin.user_id.as_str())
        );
        let newest = all[0]["seq"].as_i64().unwrap();
        let page = events(&server, &admin, &format!("?before={newest}&count=2")).await;
        assert_eq!(page.len(), 2);
        assert_eq!(page[0]["seq"].as_i64().unwrap(), newest - 1);

        // Only for holders of can-audit-log; bad dates are refused.
        let carol = server.user("carol").await;
        let (status, v) = server
            .call(Method::GET, "/api/v1/audit.events", Some(&carol), None)
            .await;
        assert_eq!(status, 403, "{v}");
        let (status, v) = server
            .call(
                Method::GET,
                "/api/v1/audit.events?start=yesterday",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (status.as_u16(), v["success"].clone()),
            (400, json!(false)),
            "{v}"
        );
        drop(bob);
    }
}

/// Runs `apogee admin audit …` on a stopped server's data.
fn apogee_audit(dir: &std::path::Path, db: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apogee"));
    cmd.args(["admin", "audit"])
        .args(args)
        .arg("--data-dir")
        .arg(dir);
    if let Some(url) = db {
        cmd.args(["--database-url", url]);
    }
    let out = cmd.output().expect("run apogee");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs SQL directly against the stopped server's database, as an intruder with access would.
fn tamper(backend: Backend, dir: &std::path::Path, db: Option<&str>, sql: &str) {
    let ok = match backend {
        Backend::Sqlite => Command::new("python3")
            .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
            .arg(dir.join("apogee.db"))
            .arg(sql)
            .status(),
        Backend::Postgres => Command::new("psql")
            .arg(db.expect("database URL"))
            .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
            .status(),
    };
    assert!(ok.expect("run SQL").success(), "{sql}");
}

#[tokio::test]
async fn verify_catches_edits_removals_and_reordering() {
    for backend in backends() {
        let server = Server::start(backend).await;
        make_history(&server).await;
        let (dir, db) = server.crash();
        let (dir, db) = (dir.path().to_path_buf(), db);
        let _keep = &dir;
        let db = db.as_deref();
        let verify = || apogee_audit(&dir, db, &["verify"]);

        let (ok, out, err) = verify();
        assert!(ok, "{out}{err}");
        assert!(out.contains("audit log intact"), "{out}");

        // An edit: entry 3's document changed in place.
        tamper(
            backend,
            &dir,
            db,
            r#"UPDATE audit_log SET doc = replace(doc, '"event":"', '"event":"x') WHERE seq = 3"#,
        );
        let (ok, _, err) = verify();
        assert!(!ok);
        assert!(
            err.contains("audit entry 3") && err.contains("edited"),
            "{err}"
        );
        tamper(
            backend,
            &dir,
            db,
            r#"UPDATE audit_log SET doc = replace(doc, '"event":"x', '"event":"') WHERE seq = 3"#,
        );
        assert!(verify().0, "restored");

        // A reordering: entries 2 and 3 swap places.
        let swap = "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = -2;";
        tamper(backend, &dir, db, swap);
        let (ok, _, err) = verify();
        assert!(!ok);
        assert!(err.contains("audit entry 2"), "{err}");
        tamper(backend, &dir, db, swap);
        assert!(verify().0, "restored");

        // A removal in the middle, then of the newest entry.
        tamper(backend, &dir, db, "DELETE FROM audit_log WHERE seq = 2");
        let (ok, _, err) = verify();
        assert!(!ok);
        assert!(
            err.contains("audit entry 2") && err.contains("removed"),
            "{err}"
        );
        tamper(
            backend,
            &dir,
            db,
            "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
        );
        tamper(backend, &dir, db, "DELETE FROM audit_log WHERE seq > 2");
        let (ok, _, err) = verify();
        assert!(!ok);
        assert!(
            err.contains("audit entry 2") || err.contains("removed"),
            "{err}"
        );
    }
}

async fn verify_over_rest(server: &Server, auth: &common::Auth, query: &str) -> (u16, Value) {
    let (status, v) = server
        .call(
            Method::GET,
            &format!("/api/v1/audit.verify{query}"),
            Some(auth),
            None,
        )
        .await;
    (status.as_u16(), v)
}

/// `audit.verify`: the chain checked over REST, for `can-audit-log` only; an entry edited in
/// the database is reported with its number, and a range before it still verifies.
#[tokio::test]
async fn verify_endpoint_reports_the_first_broken_link() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let (admin, _) = make_history(&server).await;
        let (status, v) = verify_over_rest(&server, &admin, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["intact"], true, "{v}");
        let head = v["head"].as_i64().unwrap();
        assert!(head >= 6, "{v}");
        assert_eq!(
            (v["from"].as_i64(), v["verified"].as_i64()),
            (Some(1), Some(head))
        );
        let (_, v) = verify_over_rest(&server, &admin, "?from=2&to=4").await;
        assert_eq!(
            (v["intact"].clone(), v["verified"].as_i64()),
            (json!(true), Some(4)),
            "{v}"
        );

        let carol = server.user("carol").await;
        let (status, v) = verify_over_rest(&server, &carol, "").await;
        assert_eq!(status, 403, "{v}");
        for bad in ["?from=0", "?from=3&to=2", "?from=abc"] {
            let (status, v) = verify_over_rest(&server, &admin, bad).await;
            assert_eq!(
                (status, v["success"].clone()),
                (400, json!(false)),
                "{bad}: {v}"
            );
        }

        // Entry 3 edited behind the server's back, then the server started again on that data.
        let (dir, db) = server.crash();
        tamper(
            backend,
            dir.path(),
            db.as_deref(),
            r#"UPDATE audit_log SET doc = replace(doc, '"event":"', '"event":"x') WHERE seq = 3"#,
        );
        let server = Server::start_in(backend, dir, &[], db).await;
        let admin = server.login("auditadmin").await;
        let (status, v) = verify_over_rest(&server, &admin, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["intact"], false, "{v}");
        assert_eq!(v["broken"]["seq"], 3, "{v}");
        assert_eq!(v["verified"], 2, "{v}");
        assert_eq!(v["broken"]["kind"], "edited", "{v}");
        assert!(
            v["broken"]["reason"].as_str().unwrap().contains("edited"),
            "{v}"
        );
        // Entries before the edit still check out; a range starting after it trusts entry 3's
        // stored hash, so entry 4 onwards is found linked.
        let (_, v) = verify_over_rest(&server, &admin, "?to=2").await;
        assert_eq!(v["intact"], true, "{v}");
        let (_, v) = verify_over_rest(&server, &admin, "?from=4").await;
        assert_eq!(v["intact"], true, "{v}");
        let (_, v) = verify_over_rest(&server, &admin, "?from=3&to=3").await;
        assert_eq!(
            (v["intact"].clone(), v["broken"]["seq"].clone()),
            (json!(false), json!(3)),
            "{v}"
        );
    }
}

#[tokio::test]
async fn removing_the_newest_entry_is_caught() {
    let server = Server::start(Backend::Sqlite).await;
    make_history(&server).await;
    let (dir, _) = server.crash();
    let path = dir.path();
    tamper(
        Backend::Sqlite,
        path,
        None,
        "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
    );
    let (ok, _, err) = apogee_audit(path, None, &["verify"]);
    assert!(!ok);
    assert!(err.contains("entries removed"), "{err}");
}

#[tokio::test]
async fn export_prints_the_chain_as_json_lines_and_syslog() {
    let server = Server::start(Backend::Sqlite).await;
    make_history(&server).await;
    let (dir, _) = server.crash();
    let (ok, out, err) = apogee_audit(dir.path(), None, &["export"]);
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(lines.len() >= 6);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"].as_i64().unwrap(), i as i64 + 1);
    }
    let (ok, out, _) = apogee_audit(
        dir.path(),
        None,
        &["export", "--format", "syslog", "--after", "2"],
    );
    assert!(ok);
    let first = out.lines().next().expect("a line");
    assert!(first.starts_with("<1"), "{first}");
    assert!(first.contains("seq=\"3\""), "{first}");
    let (ok, _, err) = apogee_audit(dir.path(), None, &["export", "--format", "xml"]);
    assert!(!ok && err.contains("jsonl or syslog"), "{err}");
}

/// Checks an RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`; returns
/// (MSGID, SD, MSG).
fn parse_5424(line: &str) -> (String, String, String) {
    let rest = line.strip_prefix('<').expect("PRI");
    let (pri, rest) = rest.split_once(">1 ").expect("VERSION 1");
    let pri: u8 = pri.parse().expect("PRI number");
    assert_eq!(pri / 8, 13, "facility log audit");
    let mut fields = rest.splitn(6, ' ');
    let ts = fields.next().unwrap();
    assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    let _host = fields.next().unwrap();
    assert_eq!(fields.next(), Some("apogee"));
    let procid = fields.next().unwrap();
    assert!(procid.parse::<u32>().is_ok(), "{procid}");
    let msgid = fields.next().unwrap().to_string();
    let rest = fields.next().unwrap();
    let (sd, msg) = rest.split_once("] ").expect("structured data");
    (msgid, format!("{sd}]"), msg.to_string())
}

#[tokio::test]
async fn syslog_export_reaches_udp_and_tcp_receivers() {
    // UDP: one datagram per entry.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!("udp://{}", udp.local_addr().unwrap());
    let server =
        Server::start_with(Backend::Sqlite, &[("APOGEE_AUDIT_SYSLOG", target.as_str())]).await;
    make_history(&server).await;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !got
        .iter()
        .any(|(id, _, _): &(String, String, String)| id == "user.deactivated")
    {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), udp.recv(&mut buf))
            .await
            .expect("a datagram within 10 s")
            .unwrap();
        got.push(parse_5424(std::str::from_utf8(&buf[..n]).unwrap()));
    }
    let (_, sd, msg) = got
        .iter()
        .find(|(id, _, _)| id == "login.failed")
        .expect("login.failed");
    assert!(sd.starts_with("[apogee@32473 seq=\""), "{sd}");
    let doc: Value = serde_json::from_str(msg).unwrap();
    assert_eq!(doc["details"]["user"], "bob");
    drop(server);

    // TCP: octet-counted frames, and the export resumes where it stopped after a restart.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("tcp://{}", tcp.local_addr().unwrap());
    let env = [("APOGEE_AUDIT_SYSLOG", target.as_str())];
    let server = Server::start_with(Backend::Sqlite, &env).await;
    make_history(&server).await;
    let (mut conn, _) = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.accept())
        .await
        .expect("a connection")
        .unwrap();
    let frames = read_frames(&mut conn, |f| {
        f.iter().any(|m| m.contains(" user.deactivated "))
    })
    .await;
    let seqs: Vec<i64> = frames.iter().map(|f| seq_of(f)).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "in order, none missing"
    );
    let (dir, _) = server.crash();
    drop(conn);
    let server = Server::start_in(Backend::Sqlite, dir, &env, None).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"user": "auditadmin", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 200);
    let (mut conn, _) = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.accept())
        .await
        .expect("a connection after the restart")
        .unwrap();
    // At least once: entries shipped just before the crash may come again, then the new login.
    let last_before = *seqs.last().unwrap();
    let more = read_frames(&mut conn, |f| {
        f.iter()
            .any(|m| m.contains(" login ") && seq_of(m) > last_before)
    })
    .await;
    assert!(
        seq_of(&more[0]) <= last_before + 1,
        "resumes after what was shipped"
    );
    assert!(more.iter().any(|m| seq_of(m) > last_before));
}

fn seq_of(message: &str) -> i64 {
    let start = message.find("seq=\"").expect("seq") + 5;
    message[start..].split('"').next().unwrap().parse().unwrap()
}

/// Reads `LEN SP MSG` frames until `done` says enough (10 s at most).
async fn read_frames(
    conn: &mut tokio::net::TcpStream,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut data = Vec::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done(&frames) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, conn.read(&mut chunk))
            .await
            .expect("frames within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        data.extend_from_slice(&chunk[..n]);
        while let Some(space) = data.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&data[..space])
                .unwrap()
                .parse()
                .expect("octet count");
            if data.len() < space + 1 + len {
                break;
            }
            let frame = String::from_utf8(data[space + 1..space + 1 + len].to_vec()).unwrap();
            parse_5424(&frame);
            frames.push(frame);
            data.drain(..space + 1 + len);
        }
    }
    frames
}
