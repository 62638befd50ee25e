//! The identity apogee publishes and the verification of requests from peers.

use crate::common::backends;
use crate::support::*;

#[tokio::test]
async fn identity_is_published_and_kept() {
    for backend in backends() {
        let (s, port) = start(backend, &[]).await;
        let name = format!("localhost:{port}");
        let (status, doc) = fed_get(port, "/_matrix/key/v2/server", None).await;
        assert_eq!(status, 200, "{doc}");
        let doc: CanonicalJsonObject = serde_json::from_value(doc).unwrap();
        let server = <&ServerName>::try_from(name.as_str()).unwrap();
        let keys = apogee_federation::keys::check_key_document(server, &doc, Timestamp::now())
            .expect("a self-signed key document for our name");
        assert_eq!(keys.len(), 1);
        let until = keys[0].valid_until.millis() - Timestamp::now().millis();
        assert!(
            (86_000_000..=86_400_000).contains(&until),
            "valid a day: {until}"
        );

        let (status, v) = fed_get(port, "/_matrix/federation/v1/version", None).await;
        assert_eq!(status, 200);
        assert_eq!(v["server"]["name"], "Apogee", "{v}");
        let (status, v) = fed_get(port, "/_matrix/federation/v1/no/such/thing", None).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (404, Some("M_UNRECOGNIZED"))
        );
        let (status, v) = s
            .call(
                reqwest::Method::GET,
                "/.well-known/matrix/server",
                None,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v, json!({"m.server": name}));

        // A restart on the same database publishes the same key (peers cache it by id).
        let db = s.db_url().to_string();
        let dir = s.stop();
        let db = (!db.is_empty()).then_some(db);
        let listen = format!("127.0.0.1:{port}");
        let s = Server::start_in(
            backend,
            dir,
            &[
                ("APOGEE_SERVER_NAME", &name),
                ("APOGEE_FEDERATION_LISTEN", &listen),
            ],
            db,
        )
        .await;
        wait_for_federation(port).await;
        let (_, again) = fed_get(port, "/_matrix/key/v2/server", None).await;
        let again: CanonicalJsonObject = serde_json::from_value(again).unwrap();
        let again =
            apogee_federation::keys::check_key_document(server, &again, Timestamp::now()).unwrap();
        assert_eq!(
            (&again[0].key_id, &again[0].public_key),
            (&keys[0].key_id, &keys[0].public_key)
        );
        drop(s);
    }
}

#[tokio::test]
async fn requests_are_verified_against_the_origins_keys() {
    for backend in backends() {
        let origin = peer("origin.test").await;
        let resolve = format!("origin.test={}", origin.url);
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        register(&s, "bob", "Bob Builder").await;
        let target = profile_target(&format!("@bob:{us}"));

        let (status, v) = fed_get(port, &target, None).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (401, Some("M_UNAUTHORIZED")),
            "unsigned"
        );

        let auth = signed(&origin.identity, &us, &Method::GET, &target);
        let (status, v) = fed_get(port, &target, Some(&auth)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v, json!({"displayname": "Bob Builder"}));
        assert_eq!(origin.fetches.load(Ordering::SeqCst), 1, "key fetched once");
        let (status, _) = fed_get(port, &target, Some(&auth)).await;
        assert_eq!(status, 200);
        assert_eq!(origin.fetches.load(Ordering::SeqCst), 1, "then cached");

        // The signature covers the exact target, the destination and the method.
        let other = profile_target(&format!("@alice:{us}"));
        let (status, _) = fed_get(port, &other, Some(&auth)).await;
        assert_eq!(status, 401, "signature of another target");
        let encoded_differently = target.replace("%40", "@");
        let (status, _) = fed_get(port, &encoded_differently, Some(&auth)).await;
        assert_eq!(status, 401, "same request decoded, not the bytes signed");
        let elsewhere = signed(&origin.identity, "localhost:1", &Method::GET, &target);
        let (status, _) = fed_get(port, &target, Some(&elsewhere)).await;
        assert_eq!(status, 401, "signed for another destination");
        let as_put = signed(&origin.identity, &us, &Method::PUT, &target);
        let (status, _) = fed_get(port, &target, Some(&as_put)).await;
        assert_eq!(status, 401, "signed for another method");
        // A key the origin does not publish: refused, and the origin not asked again at once.
        let unknown = auth.replace("ed25519:peer1", "ed25519:nope");
        let (status, _) = fed_get(port, &target, Some(&unknown)).await;
        assert_eq!(status, 401);
        let (status, _) = fed_get(port, &target, Some(&unknown)).await;
        assert_eq!(status, 401);
        assert!(
            origin.fetches.load(Ordering::SeqCst) <= 2,
            "refetch is rate limited"
        );
        // An impostor claiming the origin's name with its own key.
        let impostor = peer("origin.test").await;
        let forged = signed(&impostor.identity, &us, &Method::GET, &target);
        let (status, _) = fed_get(port, &target, Some(&forged)).await;
        assert_eq!(status, 401, "signature by a key the origin never published");

        // Verified requests get Matrix answers for users that are not there or not ours.
        let nobody = profile_target(&format!("@nobody:{us}"));
        let auth = signed(&origin.identity, &us, &Method::GET, &nobody);
        let (status, v) = fed_get(port, &nobody, Some(&auth)).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (404, Some("M_NOT_FOUND"))
        );
        let remote = profile_target("@bob:origin.test");
        let auth = signed(&origin.identity, &us, &Method::GET, &remote);
        let (status, v) = fed_get(port, &remote, Some(&auth)).await;
        assert_eq!(
            (status.as_u16(), v["errcode"].as_str()),
            (400, Some("M_INVALID_PARAM"))
        );

        // The origin's key was kept in the database: a restart verifies without refetching.
        let fetched = origin.fetches.load(Ordering::SeqCst);
        let db = s.db_url().to_string();
        let dir = s.stop();
        let listen = format!("127.0.0.1:{port}");
        let s = Server::start_in(
            backend,
            dir,
            &[
                ("APOGEE_SERVER_NAME", &us),
                ("APOGEE_FEDERATION_LISTEN", &listen),
                ("APOGEE_FEDERATION_RESOLVE", &resolve),
            ],
            (!db.is_empty()).then_some(db),
        )
        .await;
        wait_for_federation(port).await;
        let auth = signed(&origin.identity, &us, &Method::GET, &target);
        let (status, _) = fed_get(port, &target, Some(&auth)).await;
        assert_eq!(status, 200);
        assert_eq!(
            origin.fetches.load(Ordering::SeqCst),
            fetched,
            "key from the database"
        );
        drop(s);
    }
}

/// Interop with a real Synapse (`scripts/with-synapse.sh`): Synapse fetches our keys, asks us
/// for a profile with a signed request we verify, and accepts a request we sign.
#[tokio::test]
async fn synapse_interop() {
    let (Ok(synapse), Ok(synapse_name)) = (
        std::env::var("APOGEE_TEST_SYNAPSE_URL"),
        std::env::var("APOGEE_TEST_SYNAPSE_NAME"),
    ) else {
        eprintln!("skipped: no Synapse (run under scripts/with-synapse.sh)");
        return;
    };
    let user = std::env::var("APOGEE_TEST_SYNAPSE_USER").unwrap();
    let password = std::env::var("APOGEE_TEST_SYNAPSE_PASSWORD").unwrap();
    for backend in backends() {
        let resolve = format!("{synapse_name}={synapse}");
        let (s, port) = start(backend, &[("APOGEE_FEDERATION_RESOLVE", &resolve)]).await;
        let us = format!("localhost:{port}");
        register(&s, "bob", "Bob Builder").await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();

        // Synapse, as a key notary, fetches our key document and vouches for it.
        let (_, ours) = fed_get(port, "/_matrix/key/v2/server", None).await;
        let key_id = ours["verify_keys"]
            .as_object()
            .and_then(|k| k.keys().next())
            .expect("our key id")
            .clone();
        let v: Value = http
            .post(format!("{synapse}/_matrix/key/v2/query"))
            .json(&json!({"server_keys": {&us: {&key_id: {"minimum_valid_until_ts": 0}}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = &v["server_keys"][0];
        assert_eq!(keys["server_name"], us.as_str(), "{v}");
        assert_eq!(keys["verify_keys"], ours["verify_keys"], "{v}");
        assert!(keys["signatures"][&us].is_object(), "{v}");
        assert!(
            keys["signatures"][&synapse_name].is_object(),
            "notarised: {v}"
        );

        // Synapse asks us, signed, for our user's profile: we verify it (fetching Synapse's
        // key) and answer.
        let token = Matrix::login(&synapse, &user, &password).await.token;
        let answer = http
            .get(format!("{synapse}/_matrix/client/v3/profile/@bob:{us}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let profile: Value = answer.json().await.unwrap();
        assert_eq!(status, 200, "{profile}");
        assert_eq!(profile["displayname"], "Bob Builder", "{profile}");
        let answer = http
            .get(format!("{synapse}/_matrix/client/v3/profile/@nobody:{us}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "our 404 passed on");

        // We ask Synapse, signed with the key the running server publishes (the same
        // database), for its user's profile; Synapse fetches our key and accepts.
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apogee"));
        cmd.args(["admin", "federation", "request", "--data-dir"])
            .arg(s.data_dir())
            .args(["--server-name", &us, "--federation-resolve", &resolve])
            .arg(&synapse_name)
            .arg(profile_target(&format!("@{user}:{synapse_name}")));
        if !s.db_url().is_empty() {
            cmd.args(["--database-url", s.db_url()]);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some("200 OK"));
        let body: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(body["displayname"], user.as_str(), "{body}");

        // A request Synapse cannot verify (signed for another target) is refused by it.
        let target = profile_target(&format!("@{user}:{synapse_name}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apogee"));
        cmd.args(["admin", "federation", "request", "--data-dir"])
            .arg(s.data_dir())
            .args([
                "--server-name",
                "localhost:1",
                "--federation-resolve",
                &resolve,
            ])
            .arg(&synapse_name)
            .arg(&target);
        if !s.db_url().is_empty() {
            cmd.args(["--database-url", s.db_url()]);
        }
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "a server name whose keys Synapse cannot fetch"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("401"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        drop(s);
    }
}
