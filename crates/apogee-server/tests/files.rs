//! Black-box file tests: uploads, confirmation, downloads and limits, on the real binary.

mod common;

use common::ddp::Ddp;
use common::{Auth, Server, assert_error, backends, run_sql};
use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

fn png_bytes(n: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..n).map(|i| (i * 7 % 256) as u8));
    v
}

fn authed(req: reqwest::RequestBuilder, a: &Auth) -> reqwest::RequestBuilder {
    req.header("X-User-Id", &a.user_id)
        .header("X-Auth-Token", &a.token)
}

async fn json_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn send_form(s: &Server, path: &str, a: &Auth, form: Form) -> (StatusCode, Value) {
    let req = s.client.post(format!("{}{path}", s.base)).multipart(form);
    json_of(authed(req, a).send().await.unwrap()).await
}

/// `rooms.media/<rid>`: uploads `form` into the room (not yet posted).
async fn upload_to(s: &Server, rid: &str, a: &Auth, form: Form) -> (StatusCode, Value) {
    send_form(s, &format!("/api/v1/rooms.media/{rid}"), a, form).await
}

/// A new private group of `owner` with `members`; its id.
async fn private_group(s: &Server, owner: &Auth, name: &str, members: &[&str]) -> String {
    let (status, g) = s
        .post(
            "/api/v1/groups.create",
            owner,
            json!({"name": name, "members": members}),
        )
        .await;
    assert_eq!(status, 200, "{g}");
    g["group"]["_id"].as_str().unwrap().to_string()
}

fn file_form(name: &str, bytes: Vec<u8>, mime: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(mime)
            .unwrap(),
    )
}

async fn download(s: &Server, url: &str, a: Option<&Auth>) -> Response {
    let req = s.client.get(format!("{}{url}", s.base));
    let req = match a {
        Some(a) => authed(req, a),
        None => req,
    };
    req.send().await.unwrap()
}

#[tokio::test]
async fn upload_confirm_download_and_list() {
    for b in backends() {
        let s = Server::start(b).await;
        let alice = s.user("alice").await;
        let bob = s.user("bob").await;
        let data = png_bytes(300_000);

        let up = upload_to(
            &s,
            "GENERAL",
            &alice,
            file_form("photo one.png", data.clone(), "image/png")
                .text("description", "ignored until confirmed"),
        )
        .await;
        assert_eq!(up.0, 200, "{}", up.1);
        let file_id = up.1["file"]["_id"].as_str().unwrap().to_string();
        let url = up.1["file"]["url"].as_str().unwrap().to_string();
        assert_eq!(url, format!("/file-upload/{file_id}/photo%20one.png"));

        // Only the uploader confirms, once.
        let (status, v) = s
            .post(
                &format!("/api/v1/rooms.mediaConfirm/GENERAL/{file_id}"),
                &bob,
                json!({"msg": "mine now"}),
            )
            .await;
        assert_error(&(status, v), 400, Some("invalid-file"));
        let (status, v) = s
            .post(
                &format!("/api/v1/rooms.mediaConfirm/GENERAL/{file_id}"),
                &alice,
                json!({"msg": "a photo", "description": "the view"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let m = &v["message"];
        assert_eq!(m["msg"], "a photo");
        assert_eq!(m["rid"], "GENERAL");
        assert_eq!(
            m["file"],
            json!({"_id": file_id, "name": "photo one.png", "type": "image/png", "size": data.len(), "format": "png"})
        );
        assert_eq!(m["files"], json!([m["file"]]));
        let att = &m["attachments"][0];
        assert_eq!(att["image_url"], url);
        assert_eq!(att["title_link"], url);
        assert_eq!(att["title_link_download"], true);
        assert_eq!(att["image_type"], "image/png");
        assert_eq!(att["image_size"], data.len());
        assert_eq!(att["description"], "the view");
        let again = s
            .post(
                &format!("/api/v1/rooms.mediaConfirm/GENERAL/{file_id}"),
                &alice,
                json!({"msg": "twice"}),
            )
            .await;
        assert_error(&again, 400, Some("invalid-file"));
        let (_, hist) = s
            .get("/api/v1/channels.history?roomId=GENERAL&count=1", &bob)
            .await;
        assert_eq!(hist["messages"][0]["file"]["_id"], file_id.as_str());

        // Download: headers, cookies or query; byte-identical.
        let resp = download(&s, &url, Some(&bob)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "image/png");
        assert_eq!(
            resp.headers()["content-length"],
            data.len().to_string().as_str()
        );
        assert_eq!(
            resp.headers()["content-disposition"],
            "inline; filename=\"photo one.png\"; filename*=UTF-8''photo%20one.png"
        );
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
        let resp = s
            .client
            .get(format!("{}{url}", s.base))
            .header(
                "Cookie",
                format!("rc_uid={}; rc_token={}", bob.user_id, bob.token),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().len(), data.len());
        let resp = download(
            &s,
            &format!("{url}?rc_uid={}&rc_token={}", bob.user_id, bob.token),
            None,
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(download(&s, &url, None).await.status(), 403);
        let resp = download(
            &s,
            &format!("{url}?rc_uid={}&rc_token=wrong", bob.user_id),
            None,
        )
        .await;
        assert_eq!(resp.status(), 403);
        assert_eq!(
            download(&s, "/file-upload/nope/x.png", Some(&bob))
                .await
                .status(),
            404
        );

        // Listing.
        let (status, v) = s.get("/api/v1/channels.files?roomId=GENERAL", &bob).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["total"], 1);
        assert_eq!(v["files"][0]["_id"], file_id.as_str());
        assert_eq!(v["files"][0]["name"], "photo one.png");
        assert_eq!(v["files"][0]["typeGroup"], "image");
        let (_, by_name) = s.get("/api/v1/channels.files?roomName=general", &bob).await;
        assert_eq!(by_name["files"], v["files"]);

        // Private group: outsiders can neither upload, download nor list.
        let gid = private_group(&s, &alice, "secret-files", &[]).await;
        let denied = upload_to(
            &s,
            &gid,
            &bob,
            file_form("x.png", png_bytes(2_000_000), "image/png"),
        )
        .await;
        assert_error(&denied, 403, None);
        let (_, up) = send_form(
            &s,
            &format!("/api/v1/rooms.upload/{gid}"),
            &alice,
            file_form("notes.txt", b"hello group".to_vec(), "text/plain")
                .text("msg", "legacy upload")
                .text("description", "notes"),
        )
        .await;
        assert_eq!(up["message"]["msg"], "legacy upload", "{up}");
        let att = &up["message"]["attachments"][0];
        assert_eq!(att["format"], "txt");
        assert_eq!(att["size"], 11);
        let gurl = att["title_link"].as_str().unwrap().to_string();
        assert_eq!(download(&s, &gurl, Some(&bob)).await.status(), 403);
        let resp = download(&s, &gurl, Some(&alice)).await;
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"hello group");
        let listed = s
            .get(&format!("/api/v1/groups.files?roomId={gid}"), &bob)
            .await;
        assert_error(&listed, 400, None);
        let (_, listed) = s
            .get("/api/v1/groups.files?roomName=secret-files", &alice)
            .await;
        assert_eq!(listed["total"], 1);

        // Direct messages by room id or username.
        let (_, dm) = s
            .post("/api/v1/im.create", &alice, json!({"username": "bob"}))
            .await;
        let dm_id = dm["room"]["_id"].as_str().unwrap().to_string();
        let up = upload_to(
            &s,
            &dm_id,
            &bob,
            file_form("a.bin", vec![0, 1, 2], "application/octet-stream"),
        )
        .await;
        assert_eq!(up.0, 200, "{}", up.1);
        let (_, by_id) = s
            .get(&format!("/api/v1/im.files?roomId={dm_id}"), &alice)
            .await;
        let (_, by_user) = s.get("/api/v1/dm.files?username=bob", &alice).await;
        assert_eq!(by_id["total"], 1);
        assert_eq!(by_id["files"], by_user["files"]);
        let resp = download(&s, up.1["file"]["url"].as_str().unwrap(), Some(&alice)).await;
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
    }
}

#[tokio::test]
async fn oversize_and_disabled_uploads_are_refused_and_leave_nothing() {
    let s = Server::start_with(
        common::Backend::Sqlite,
        &[("OVERWRITE_SETTING_FileUpload_MaxFileSize", "1000")],
    )
    .await;
    let alice = s.user("alice").await;
    let fits = upload_to(
        &s,
        "GENERAL",
        &alice,
        file_form("ok.png", png_bytes(900), "image/png"),
    )
    .await;
    assert_eq!(fits.0, 200, "{}", fits.1);
    let too_big = upload_to(
        &s,
        "GENERAL",
        &alice,
        file_form("big.png", png_bytes(5_000_000), "image/png"),
    )
    .await;
    assert_error(&too_big, 400, Some("error-file-too-large"));
    assert_eq!(
        too_big.1["error"],
        "File exceeds allowed size of 1 kB. [error-file-too-large]"
    );
    let (_, listed) = s.get("/api/v1/channels.files?roomId=GENERAL", &alice).await;
    assert_eq!(listed["total"], 1, "only the file that fit is recorded");

    let (status, v) = s
        .post(
            "/api/v1/settings/FileUpload_Enabled",
            &alice,
            json!({"value": false}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let off = upload_to(
        &s,
        "GENERAL",
        &alice,
        file_form("ok.png", png_bytes(10), "image/png"),
    )
    .await;
    assert_error(&off, 400, Some("error-file-upload-disabled"));

    let dir = s.stop();
    let uploads = dir.path().join("uploads");
    let stored: Vec<_> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != ".tmp")
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(std::fs::read_dir(uploads.join(".tmp")).unwrap().count(), 0);
}

#[tokio::test]
async fn bad_forms_are_rejected_cleanly() {
    let s = Server::start(common::Backend::Sqlite).await;
    let alice = s.user("alice").await;
    let url = format!("{}/api/v1/rooms.media/GENERAL", s.base);

    // Not multipart at all.
    let r = s
        .post("/api/v1/rooms.media/GENERAL", &alice, json!({"file": "x"}))
        .await;
    assert_error(&r, 400, None);
    // Multipart without a boundary.
    let req = s
        .client
        .post(&url)
        .header("Content-Type", "multipart/form-data")
        .body("garbage");
    assert_error(
        &json_of(authed(req, &alice).send().await.unwrap()).await,
        400,
        None,
    );
    // A body that ends inside the file.
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello, this never ends";
    let req = s
        .client
        .post(&url)
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(body);
    let truncated = json_of(authed(req, &alice).send().await.unwrap()).await;
    assert_error(&truncated, 400, None);
    // No file field.
    let none = upload_to(
        &s,
        "GENERAL",
        &alice,
        Form::new().text("msg", "where is it"),
    )
    .await;
    assert_error(&none, 400, Some("invalid-field"));
    // Two files.
    let two = upload_to(
        &s,
        "GENERAL",
        &alice,
        file_form("a.txt", b"a".to_vec(), "text/plain")
            .part("file", Part::bytes(b"b".to_vec()).file_name("b.txt")),
    )
    .await;
    assert_error(&two, 400, None);
    // Unknown room; unauthenticated.
    let nowhere = send_form(
        &s,
        "/api/v1/rooms.media/nowhere",
        &alice,
        file_form("a.txt", b"a".to_vec(), "text/plain"),
    )
    .await;
    assert_error(&nowhere, 400, Some("error-invalid-room"));
    let anon = s
        .client
        .post(&url)
        .multipart(file_form("a.txt", b"a".to_vec(), "text/plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    // Confirming something that does not exist.
    let r = s
        .post(
            "/api/v1/rooms.mediaConfirm/GENERAL/nope",
            &alice,
            json!({"msg": "x"}),
        )
        .await;
    assert_error(&r, 400, Some("invalid-file"));

    let (_, listed) = s.get("/api/v1/channels.files?roomId=GENERAL", &alice).await;
    assert_eq!(listed["total"], 0, "nothing recorded: {listed}");
    let dir = s.stop();
    let stored = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != ".tmp")
        .count();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn path_traversal_names_are_harmless() {
    let s = Server::start(common::Backend::Sqlite).await;
    let alice = s.user("alice").await;
    let up = upload_to(
        &s,
        "GENERAL",
        &alice,
        file_form(
            "../../../../tmp/evil\"name.sh",
            b"#!/bin/sh".to_vec(),
            "text/x-sh",
        ),
    )
    .await;
    assert_eq!(up.0, 200, "{}", up.1);
    let url = up.1["file"]["url"].as_str().unwrap().to_string();
    assert!(url.ends_with("/evil%22name.sh"), "{url}");
    let resp = download(&s, &url, Some(&alice)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"evil_name.sh\"; filename*=UTF-8''evil%22name.sh"
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"#!/bin/sh");
    // Traversal in the download path finds nothing.
    for path in [
        "/file-upload/..%2Fapogee.db/x",
        "/file-upload/../apogee.db",
        "/file-upload/.tmp/x",
    ] {
        let status = download(&s, path, Some(&alice)).await.status();
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    let dir = s.stop();
    assert!(!dir.path().join("tmp").exists());
    assert!(!std::path::Path::new("/tmp/evil\"name.sh").exists());
}

async fn get_with(s: &Server, url: &str, a: &Auth, headers: &[(&str, &str)]) -> Response {
    let mut req = authed(s.client.get(format!("{}{url}", s.base)), a);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

/// Uploads a file into a private group and checks ranges, validators, HEAD and access on its
/// download URL (shared by the filesystem and S3 runs).
async fn check_ranges_and_caching(s: &Server) {
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let gid = private_group(s, &alice, "ranged", &[]).await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let size = data.len();
    let up = upload_to(
        s,
        &gid,
        &alice,
        file_form("clip.mp4", data.clone(), "video/mp4"),
    )
    .await;
    assert_eq!(up.0, 200, "{}", up.1);
    let url = up.1["file"]["url"].as_str().unwrap().to_string();

    // Whole file: validators and Accept-Ranges.
    let full = get_with(s, &url, &alice, &[]).await;
    assert_eq!(full.status(), 200);
    assert_eq!(header(&full, "accept-ranges"), "bytes");
    assert_eq!(header(&full, "content-length"), size.to_string());
    let etag = header(&full, "etag").to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let last_modified = header(&full, "last-modified").to_string();
    assert_eq!(
        header(&full, "content-security-policy"),
        "default-src 'none'"
    );
    assert_eq!(full.bytes().await.unwrap().as_ref(), data.as_slice());

    // Single ranges: exactly those bytes.
    for (range, start, end) in [
        ("bytes=0-0", 0, 1),
        ("bytes=1000-200999", 1000, 201_000),
        ("bytes=299990-", 299_990, size),
        ("bytes=-7", size - 7, size),
        ("bytes=299999-999999", 299_999, size),
        ("bytes=-999999", 0, size),
    ] {
        let resp = get_with(s, &url, &alice, &[("Range", range)]).await;
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(
            header(&resp, "content-range"),
            format!("bytes {start}-{}/{size}", end - 1),
            "{range}"
        );
        assert_eq!(header(&resp, "content-length"), (end - start).to_string());
        assert_eq!(header(&resp, "etag"), etag);
        let body = resp.bytes().await.unwrap();
        assert!(body.as_ref() == &data[start..end], "{range}: wrong bytes");
    }

    // Unsatisfiable: 416 with the size.
    for range in [
        "bytes=300000-",
        &format!("bytes={size}-{}", size + 10),
        "bytes=-0",
    ] {
        let resp = get_with(s, &url, &alice, &[("Range", range)]).await;
        assert_eq!(resp.status(), 416, "{range}");
        assert_eq!(header(&resp, "content-range"), format!("bytes */{size}"));
    }

    // Malformed or several ranges: the whole file.
    for range in [
        "bytes=5-2",
        "bytes=0-1,5-9",
        "bytes=abc",
        "lines=1-2",
        "bytes=",
    ] {
        let resp = get_with(s, &url, &alice, &[("Range", range)]).await;
        assert_eq!(resp.status(), 200, "{range}");
        assert!(resp.headers().get("content-range").is_none());
        assert_eq!(resp.bytes().await.unwrap().len(), size, "{range}");
    }

    // Conditional requests.
    let resp = get_with(s, &url, &alice, &[("If-None-Match", &etag)]).await;
    assert_eq!(resp.status(), 304);
    assert_eq!(header(&resp, "etag"), etag);
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = get_with(s, &url, &alice, &[("If-None-Match", "\"other\", W/\"x\"")]).await;
    assert_eq!(resp.status(), 200);
    let resp = get_with(s, &url, &alice, &[("If-Modified-Since", &last_modified)]).await;
    assert_eq!(resp.status(), 304);
    let resp = get_with(
        s,
        &url,
        &alice,
        &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    )
    .await;
    assert_eq!(resp.status(), 200);

    // If-Range: a matching validator keeps the range, anything else means the whole file.
    for (if_range, status) in [
        (etag.as_str(), 206),
        (last_modified.as_str(), 206),
        ("\"stale\"", 200),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
        ("not a validator", 200),
    ] {
        let resp = get_with(
            s,
            &url,
            &alice,
            &[("Range", "bytes=10-19"), ("If-Range", if_range)],
        )
        .await;
        assert_eq!(resp.status(), status, "If-Range: {if_range}");
        let body = resp.bytes().await.unwrap();
        if status == 206 {
            assert_eq!(body.as_ref(), &data[10..20]);
        } else {
            assert_eq!(body.len(), size);
        }
    }

    // HEAD: the headers, no body.
    let head = authed(s.client.head(format!("{}{url}", s.base)), &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), size.to_string());
    assert_eq!(header(&head, "etag"), etag);
    assert!(head.bytes().await.unwrap().is_empty());
    let head = authed(s.client.head(format!("{}{url}", s.base)), &alice)
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 206);
    assert_eq!(header(&head, "content-length"), "10");

    // Access is decided first: a non-member gets 403 whatever the range or validators.
    for extra in [
        ("Range", "bytes=0-9"),
        ("Range", "bytes=999999-"),
        ("If-None-Match", etag.as_str()),
    ] {
        let resp = get_with(s, &url, &bob, &[extra]).await;
        assert_eq!(resp.status(), 403, "{extra:?}");
        assert!(resp.headers().get("etag").is_none());
    }
    let resp = s
        .client
        .get(format!("{}{url}", s.base))
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn ranges_conditionals_and_head() {
    // SVG is refused by default (FileUpload_MediaTypeBlackList); allowed here to check how
    // it is served.
    let s = Server::start_with(
        common::Backend::Sqlite,
        &[("OVERWRITE_SETTING_FileUpload_MediaTypeBlackList", "")],
    )
    .await;
    check_ranges_and_caching(&s).await;

    // Content-Disposition: attachment for anything a browser could run.
    let alice = s.user("carol").await;
    let files: [(&str, &str, &[u8], &str); 5] = [
        (
            "a.svg",
            "image/svg+xml",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            "attachment",
        ),
        (
            "a.html",
            "text/html",
            b"<html><script>1</script></html>",
            "attachment",
        ),
        ("a.pdf", "application/pdf", b"%PDF-1.4\n", "attachment"),
        (
            "a.ogg",
            "audio/ogg",
            b"OggS\0\x02\0\0\0\0\0\0\0\0",
            "inline",
        ),
        (
            "a.jpg",
            "image/jpeg",
            b"\xff\xd8\xff\xe0\0\x10JFIF\0",
            "inline",
        ),
    ];
    for (name, mime, bytes, kind) in files {
        let up = upload_to(&s, "GENERAL", &alice, file_form(name, bytes.to_vec(), mime)).await;
        assert_eq!(up.0, 200, "{name}: {}", up.1);
        let url = up.1["file"]["url"].as_str().unwrap().to_string();
        let resp = download(&s, &url, Some(&alice)).await;
        assert_eq!(header(&resp, "content-type"), mime, "{name}");
        let cd = header(&resp, "content-disposition");
        assert!(cd.starts_with(kind), "{mime}: {cd}");
        assert!(cd.contains(&format!("filename*=UTF-8''{name}")), "{cd}");
    }
}

/// The same downloads with uploads in S3 (moto from `scripts/with-s3.sh`); an oversize upload
/// leaves no object and no unfinished multipart upload in the bucket.
#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_storage_uploads_and_downloads() {
    let Ok(endpoint) = std::env::var("APOGEE_TEST_S3_ENDPOINT") else {
        eprintln!("skipped: APOGEE_TEST_S3_ENDPOINT is not set (scripts/with-s3.sh starts one)");
        return;
    };
    let bucket = format!("apogee-files-{}", apogee_domain::random_id().to_lowercase());
    let http = reqwest::Client::new();
    let created = http
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let s = Server::start_with(
        common::Backend::Sqlite,
        &[
            ("APOGEE_S3_BUCKET", bucket.as_str()),
            ("APOGEE_S3_ENDPOINT", endpoint.as_str()),
            ("APOGEE_S3_ACCESS_KEY_ID", "testing"),
            ("APOGEE_S3_SECRET_ACCESS_KEY", "testing-secret"),
            ("OVERWRITE_SETTING_FileUpload_MaxFileSize", "400000"),
        ],
    )
    .await;
    check_ranges_and_caching(&s).await;

    let dave = s.user("dave").await;
    let refused = upload_to(
        &s,
        "GENERAL",
        &dave,
        file_form("big.png", png_bytes(500_000), "image/png"),
    )
    .await;
    assert_error(&refused, 400, Some("error-file-too-large"));
    let list = |q: &'static str| {
        let url = format!("{endpoint}/{bucket}?{q}");
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(list("list-type=2").await.matches("<Key>").count(), 1);
    assert_eq!(list("uploads").await.matches("<UploadId>").count(), 0);
}

/// The stored blobs under the data directory (not counting the staging directory).
fn stored_blobs(s: &Server) -> Vec<String> {
    std::fs::read_dir(s.data_dir().join("uploads"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .filter(|n| n != ".tmp")
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (the outbox deletes after the commit) until `id` is no longer stored.
async fn wait_until_removed(s: &Server, id: &str) {
    for _ in 0..200 {
        if !stored_blobs(s).iter().any(|n| n == id) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("blob {id} still stored: {:?}", stored_blobs(s));
}

async fn upload_and_post(s: &Server, rid: &str, a: &Auth) -> (String, String, String) {
    let up = upload_to(s, rid, a, file_form("f.png", png_bytes(5_000), "image/png")).await;
    assert_eq!(up.0, 200, "{}", up.1);
    let id = up.1["file"]["_id"].as_str().unwrap().to_string();
    let url = up.1["file"]["url"].as_str().unwrap().to_string();
    let (status, v) = s
        .post(
            &format!("/api/v1/rooms.mediaConfirm/{rid}/{id}"),
            a,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let msg = v["message"]["_id"].as_str().unwrap().to_string();
    (id, url, msg)
}

#[tokio::test]
async fn file_contents_go_with_their_message_their_room_or_when_never_posted() {
    let s = Server::start_with(
        common::Backend::Sqlite,
        &[(
            "OVERWRITE_SETTING_FileUpload_Unconfirmed_Expiry_Minutes",
            "0",
        )],
    )
    .await;
    let alice = s.user("alice").await;

    // Deleting a file message deletes the file.
    let (id, url, msg) = upload_and_post(&s, "GENERAL", &alice).await;
    assert!(stored_blobs(&s).contains(&id));
    let (status, v) = s
        .post(
            "/api/v1/chat.delete",
            &alice,
            json!({"roomId": "GENERAL", "msgId": msg}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(download(&s, &url, Some(&alice)).await.status(), 404);
    wait_until_removed(&s, &id).await;

    // Deleting a room deletes its files.
    let (status, v) = s
        .post("/api/v1/channels.create", &alice, json!({"name": "doomed"}))
        .await;
    assert_eq!(status, 200, "{v}");
    let rid = v["channel"]["_id"].as_str().unwrap().to_string();
    let (id, _, _) = upload_and_post(&s, &rid, &alice).await;
    let (status, v) = s
        .post("/api/v1/channels.delete", &alice, json!({"roomId": rid}))
        .await;
    assert_eq!(status, 200, "{v}");
    wait_until_removed(&s, &id).await;

    // An upload never posted is cleaned up (expiry 0 here: at the next heartbeat).
    let up = upload_to(
        &s,
        "GENERAL",
        &alice,
        file_form("orphan.png", png_bytes(100), "image/png"),
    )
    .await;
    let id = up.1["file"]["_id"].as_str().unwrap().to_string();
    let url = up.1["file"]["url"].as_str().unwrap().to_string();
    wait_until_removed(&s, &id).await;
    assert_eq!(download(&s, &url, Some(&alice)).await.status(), 404);
    let (status, _) = s
        .post(
            &format!("/api/v1/rooms.mediaConfirm/GENERAL/{id}"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 400, "a cleaned-up upload cannot be posted");
}

#[tokio::test]
async fn types_come_from_the_bytes_and_the_type_lists_apply() {
    let s = Server::start(common::Backend::Sqlite).await;
    let alice = s.user("alice").await;
    let media = "/api/v1/rooms.media/GENERAL";

    // A PDF that says it is a PNG is stored, posted and served as a PDF.
    let pdf = b"%PDF-1.4\n1 0 obj << >> endobj\n".to_vec();
    let up = send_form(&s, media, &alice, file_form("doc.png", pdf, "image/png")).await;
    assert_eq!(up.0, 200, "{}", up.1);
    let id = up.1["file"]["_id"].as_str().unwrap().to_string();
    let url = up.1["file"]["url"].as_str().unwrap().to_string();
    let (status, v) = s
        .post(
            &format!("/api/v1/rooms.mediaConfirm/GENERAL/{id}"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["message"]["file"]["type"], "application/pdf");
    assert!(v["message"]["attachments"][0].get("image_url").is_none());
    let got = download(&s, &url, Some(&alice)).await;
    assert_eq!(got.headers()["content-type"], "application/pdf");

    // SVG is on the default deny list, whatever it is called.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>".to_vec();
    let before = stored_blobs(&s).len();
    let refused = send_form(&s, media, &alice, file_form("x.png", svg, "image/png")).await;
    assert_error(&refused, 400, Some("error-invalid-file-type"));
    assert_eq!(stored_blobs(&s).len(), before, "nothing kept");

    // An allow list: images only. A 5 MB text file claiming to be an image is refused after
    // its first bytes, and nothing of it is kept.
    let (status, v) = s
        .post(
            "/api/v1/settings/FileUpload_MediaTypeWhiteList",
            &alice,
            json!({"value": "image/*"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let text = vec![b'a'; 5_000_000];
    let refused = send_form(&s, media, &alice, file_form("big.png", text, "image/png")).await;
    assert_error(&refused, 400, Some("error-invalid-file-type"));
    let ok = send_form(
        &s,
        media,
        &alice,
        file_form("p.png", png_bytes(100), "image/png"),
    )
    .await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(stored_blobs(&s).len(), before + 1);
    assert_eq!(
        std::fs::read_dir(s.data_dir().join("uploads/.tmp"))
            .unwrap()
            .count(),
        0
    );

    // Protected files need a login; unprotected ones are served to anyone with the link.
    assert_eq!(download(&s, &url, None).await.status(), 403);
    let (status, v) = s
        .post(
            "/api/v1/settings/FileUpload_ProtectFiles",
            &alice,
            json!({"value": false}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(download(&s, &url, None).await.status(), 200);
}

fn real_png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn images_get_dimensions_a_preview_and_a_thumbnail_off_the_request_path() {
    let s = Server::start(common::Backend::Sqlite).await;
    let alice = s.user("alice").await;
    let up = upload_to(
        &s,
        "GENERAL",
        &alice,
        file_form("wide.png", real_png(1000, 500), "image/png"),
    )
    .await;
    assert_eq!(up.0, 200, "{}", up.1);
    let id = up.1["file"]["_id"].as_str().unwrap().to_string();
    let (status, v) = s
        .post(
            &format!("/api/v1/rooms.mediaConfirm/GENERAL/{id}"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let msg_id = v["message"]["_id"].as_str().unwrap().to_string();

    // The worker updates the message shortly after.
    let mut message = Value::Null;
    for _ in 0..100 {
        let (_, v) = s
            .get(&format!("/api/v1/chat.getMessage?msgId={msg_id}"), &alice)
            .await;
        message = v["message"].clone();
        if message["attachments"][0].get("image_dimensions").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let a = &message["attachments"][0];
    assert_eq!(
        a["image_dimensions"],
        json!({"width": 1000, "height": 500}),
        "{message}"
    );
    assert!(a["image_preview"].as_str().is_some_and(|p| p.len() > 20));
    assert_eq!(a["title_link"], format!("/file-upload/{id}/wide.png"));
    let thumb_url = a["image_url"].as_str().unwrap().to_string();
    assert_ne!(thumb_url, a["title_link"].as_str().unwrap());
    let files = message["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[1]["type"], "image/jpeg");

    let got = download(&s, &thumb_url, Some(&alice)).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    let thumb = image::load_from_memory(&got.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (480, 240));

    // Deleting the message deletes the original and the thumbnail.
    let thumb_id = files[1]["_id"].as_str().unwrap().to_string();
    let (status, v) = s
        .post(
            "/api/v1/chat.delete",
            &alice,
            json!({"roomId": "GENERAL", "msgId": msg_id}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait_until_removed(&s, &id).await;
    wait_until_removed(&s, &thumb_id).await;
}

/// A v2 envelope (`rc.v2.aes-sha2`) as Rocket.Chat's client makes them; the bytes are noise.
fn envelope(seed: u8) -> Value {
    use base64::Engine;
    let b64 = |n: usize| {
        base64::engine::general_purpose::STANDARD.encode(
            (0..n)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect::<Vec<_>>(),
        )
    };
    json!({"algorithm": "rc.v2.aes-sha2", "kid": "3b0f4a52-8c1d-4e7a-9f26-5d8e1c7b9a40", "iv": b64(12), "ciphertext": b64(200)})
}

/// Rocket.Chat 7's encrypted file flow: `rooms.media` with the ciphertext (named by the
/// digest of its name, no type) and its encrypted `content`, then DDP `sendMessage` with
/// `filesToConfirm` — or `rooms.mediaConfirm` with `t: 'e2e'`. Stored as sent, never sniffed
/// or thumbnailed, and the message carries no readable name or description.
#[tokio::test]
async fn encrypted_files_are_stored_as_sent_and_never_inspected() {
    for b in backends() {
        let s = Server::start_with(b, &[("OVERWRITE_SETTING_E2E_Enable", "true")]).await;
        let alice = s.user("alice").await;
        let _bob = s.user("bob").await;
        let rid = private_group(&s, &alice, "vault", &["bob"]).await;
        let r = s
            .post(
                "/api/v1/groups.setEncrypted",
                &alice,
                json!({"roomId": rid, "encrypted": true}),
            )
            .await;
        assert_eq!(r.0, 200, "{}", r.1);

        // The "ciphertext" is a real PNG: were it inspected, it would be typed and thumbnailed.
        let ciphertext = real_png(600, 400);
        let digest_name = "9f2c1e0b7d4a6c3e5f8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60";
        let upload = |content: Value| {
            Form::new()
                .part(
                    "file",
                    Part::bytes(ciphertext.clone()).file_name(digest_name),
                )
                .text("content", content.to_string())
        };
        let up1 = upload_to(&s, &rid, &alice, upload(envelope(1))).await;
        assert_eq!(up1.0, 200, "{}", up1.1);
        let id1 = up1.1["file"]["_id"].as_str().unwrap().to_string();
        let up2 = upload_to(&s, &rid, &alice, upload(envelope(2))).await;
        let id2 = up2.1["file"]["_id"].as_str().unwrap().to_string();

        // `content` that is not JSON: refused, nothing kept.
        let bad = Form::new()
            .part("file", Part::bytes(b"x".to_vec()).file_name("x"))
            .text("content", "{not json");
        let r = upload_to(&s, &rid, &alice, bad).await;
        assert_error(&r, 400, Some("invalid-field-content"));

        // DDP sendMessage with filesToConfirm: the encrypted message as sent, no file fields.
        let mut d = Ddp::connect(&s).await;
        d.resume(&alice).await;
        let message = json!({"_id": "e2efilemessage001", "rid": rid, "t": "e2e", "e2e": "pending", "msg": "", "content": envelope(3)});
        let files = json!([{"_id": id1, "name": digest_name, "content": envelope(4)}]);
        let r = d.call("sendMessage", json!([message, [], files])).await;
        let sent = &r["result"];
        assert_eq!(sent["t"], "e2e", "{r}");
        assert_eq!(sent["content"], envelope(3));
        for field in ["file", "files", "attachments"] {
            assert!(sent.get(field).is_none(), "{field}: {sent}");
        }

        // rooms.mediaConfirm with an encrypted message: the same; a plaintext description is
        // not kept.
        let (status, v) = s
            .post(
                &format!("/api/v1/rooms.mediaConfirm/{rid}/{id2}"),
                &alice,
                json!({"t": "e2e", "msg": "", "content": envelope(5), "description": "secret plan"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["t"], "e2e");
        assert_eq!(v["message"]["content"], envelope(5));
        assert!(v["message"].get("attachments").is_none(), "{v}");

        // A plaintext file message is refused in the encrypted room; the upload stays unposted.
        let up3 = upload_to(&s, &rid, &alice, upload(envelope(6))).await;
        let id3 = up3.1["file"]["_id"].as_str().unwrap().to_string();
        let r = s
            .post(
                &format!("/api/v1/rooms.mediaConfirm/{rid}/{id3}"),
                &alice,
                json!({"msg": "holiday.png"}),
            )
            .await;
        assert_error(&r, 400, Some("error-not-allowed"));
        // An upload that does not exist (or is not the sender's) cannot be posted.
        let r = d
            .call("sendMessage", json!([{"rid": rid, "t": "e2e", "msg": "", "content": envelope(7)}, [], [{"_id": "nope"}]]))
            .await;
        assert_eq!(r["error"]["error"], "invalid-file", "{r}");

        // Past the thumbnail worker: still no attachments, no thumbnail uploads; the files keep
        // the declared (absent) type, the client's name and the latest encrypted content.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let (_, listed) = s
            .get(&format!("/api/v1/groups.files?roomId={rid}"), &alice)
            .await;
        assert_eq!(listed["total"], 3, "{listed}");
        let by_id = |id: &str| {
            listed["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["_id"] == id)
                .cloned()
                .unwrap()
        };
        for (id, content) in [
            (&id1, envelope(4)),
            (&id2, envelope(2)),
            (&id3, envelope(6)),
        ] {
            let f = by_id(id);
            assert_eq!(f["type"], "application/octet-stream", "{f}");
            assert_eq!(f["name"], digest_name);
            assert_eq!(f["content"], content, "{f}");
            assert!(f.get("description").is_none(), "{f}");
        }
        let (_, history) = s
            .get(&format!("/api/v1/groups.history?roomId={rid}"), &alice)
            .await;
        let text = history.to_string();
        assert!(
            !text.contains("secret plan") && !text.contains("holiday"),
            "{text}"
        );
        for m in history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["t"] == "e2e")
        {
            assert!(
                m.get("attachments").is_none() && m.get("files").is_none(),
                "{m}"
            );
        }
        let got = download(&s, up1.1["file"]["url"].as_str().unwrap(), Some(&alice)).await;
        assert_eq!(got.headers()["content-type"], "application/octet-stream");
        assert_eq!(got.bytes().await.unwrap().as_ref(), ciphertext.as_slice());
    }
}

/// A download with an expired login (by header, cookie or query) is refused like an
/// anonymous one, and sends no bytes; a fresh login still downloads.
#[tokio::test]
async fn downloads_with_expired_tokens_are_refused() {
    for backend in backends() {
        let s = Server::start(backend).await;
        let alice = s.user("alice").await;
        let gid = private_group(&s, &alice, "private-files", &[]).await;
        let up = upload_to(
            &s,
            &gid,
            &alice,
            file_form("plan.txt", b"the plan".to_vec(), "text/plain"),
        )
        .await;
        assert_eq!(up.0, 200, "{}", up.1);
        let url = up.1["file"]["url"].as_str().unwrap().to_string();
        assert_eq!(download(&s, &url, Some(&alice)).await.status(), 200);

        // The login is made 100 days old (past Accounts_LoginExpiration's 90).
        let (dir, db) = s.crash();
        let hashed = apogee_core::passwords::hash_token(&alice.token);
        run_sql(
            backend,
            dir.path(),
            db.as_deref(),
            &format!(
                "UPDATE login_tokens SET created_at = created_at - {} WHERE hashed = '{hashed}'",
                100 * 86_400_000i64
            ),
        );
        let s = Server::start_in(backend, dir, &[], db).await;
        let by_header = download(&s, &url, Some(&alice)).await;
        let by_cookie = s
            .client
            .get(format!("{}{url}", s.base))
            .header(
                "Cookie",
                format!("rc_uid={}; rc_token={}", alice.user_id, alice.token),
            )
            .send()
            .await
            .unwrap();
        let by_query = s
            .client
            .get(format!(
                "{}{url}?rc_uid={}&rc_token={}",
                s.base, alice.user_id, alice.token
            ))
            .send()
            .await
            .unwrap();
        for (how, resp) in [
            ("header", by_header),
            ("cookie", by_cookie),
            ("query", by_query),
        ] {
            let status = resp.status().as_u16();
            assert!(status == 401 || status == 403, "{how}: {status}");
            let body = resp.bytes().await.unwrap();
            assert!(
                !body.windows(8).any(|w| w == b"the plan"),
                "{how}: body leaked"
            );
        }
        let fresh = s.login("alice").await;
        let resp = download(&s, &url, Some(&fresh)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"the plan");
    }
}

/// Rocket.Chat 7's composer: uploads first, then one DDP `sendMessage` with `filesToConfirm`
/// (names may have been edited in between): one message with every file.
#[tokio::test]
async fn send_message_posts_several_uploads_in_one_message() {
    let s = Server::start(common::Backend::Sqlite).await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let mut ids = Vec::new();
    for (name, bytes, mime) in [
        ("a.txt", b"first".to_vec(), "text/plain"),
        ("b.pdf", b"%PDF-1.4\n".to_vec(), "application/pdf"),
    ] {
        let up = upload_to(&s, "GENERAL", &alice, file_form(name, bytes, mime)).await;
        ids.push(up.1["file"]["_id"].as_str().unwrap().to_string());
    }
    let bobs = upload_to(
        &s,
        "GENERAL",
        &bob,
        file_form("c.txt", b"c".to_vec(), "text/plain"),
    )
    .await;
    let bobs = bobs.1["file"]["_id"].as_str().unwrap().to_string();

    let mut d = Ddp::connect(&s).await;
    d.resume(&alice).await;
    // Bob's upload is not Alice's to post: refused, nothing posted or confirmed.
    let r = d
        .call(
            "sendMessage",
            json!([{"rid": "GENERAL", "msg": "x"}, [], [{"_id": ids[0]}, {"_id": bobs}]]),
        )
        .await;
    assert_eq!(r["error"]["error"], "invalid-file", "{r}");
    let r = d
        .call(
            "sendMessage",
            json!([{"rid": "GENERAL", "msg": "two files"}, [], [{"_id": ids[0], "name": "renamed.txt"}, {"_id": ids[1]}]]),
        )
        .await;
    let m = &r["result"];
    assert_eq!(m["msg"], "two files", "{r}");
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["name"], "renamed.txt");
    assert_eq!(files[1]["name"], "b.pdf");
    assert_eq!(m["file"], files[0]);
    let attachments = m["attachments"].as_array().unwrap();
    assert_eq!(
        attachments[0]["title_link"],
        format!("/file-upload/{}/renamed.txt", ids[0])
    );
    assert_eq!(attachments[1]["fileId"], ids[1].as_str());
    // Both are posted now: a second confirmation is refused.
    let r = s
        .post(
            &format!("/api/v1/rooms.mediaConfirm/GENERAL/{}", ids[1]),
            &alice,
            json!({}),
        )
        .await;
    assert_error(&r, 400, Some("invalid-file"));
}
