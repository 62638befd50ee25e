//! Canonical JSON and signatures against the Matrix specification's own examples (appendices
//! "Canonical JSON" and "Signing JSON"), and X-Matrix headers as ruma verifies them.

use crate::identity::Identity;
use apogee_core::store::FederationSigningKey;
use apogee_domain::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ruma::api::federation::authentication::XMatrix;
use ruma::signatures::{PublicKeyMap, to_canonical_json_string_for_signing};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, ServerName};

/// The specification's example key: seed `YJDBA9Xn…`, id `ed25519:1`, server `domain`.
fn spec_identity() -> Identity {
    // The published seed has stray bits in its last symbol; decode it as the spec's tools do.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let seed = lenient
        .decode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
        .unwrap();
    // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410).
    let mut der = hex_prefix();
    der.extend_from_slice(&seed);
    let stored = FederationSigningKey {
        key_id: "ed25519:1".into(),
        pkcs8: STANDARD.encode(&der),
        created_at: Timestamp::now(),
    };
    Identity::from_stored("domain".try_into().unwrap(), &stored).unwrap()
}

fn hex_prefix() -> Vec<u8> {
    vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ]
}

fn object(json: &str) -> CanonicalJsonObject {
    serde_json::from_str(json).unwrap()
}

fn canonical(json: &str) -> String {
    to_canonical_json_string_for_signing(&object(json)).unwrap()
}

#[test]
fn canonical_json_matches_the_specification() {
    assert_eq!(
        canonical(r#"{"one": 1, "two": "Two"}"#),
        r#"{"one":1,"two":"Two"}"#
    );
    assert_eq!(canonical(r#"{"b": "2", "a": "1"}"#), r#"{"a":"1","b":"2"}"#);
    assert_eq!(
        canonical(
            r#"{"auth": {"success": true, "mxid": "@john.doe:example.com",
                "profile": {"display_name": "John Doe", "three_pids": [
                    {"medium": "email", "address": "john.doe@example.org"},
                    {"medium": "msisdn", "address": "123456789"}]}}}"#
        ),
        r#"{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}"#
    );
    assert_eq!(canonical(r#"{"a": "日本語"}"#), r#"{"a":"日本語"}"#);
    assert_eq!(canonical(r#"{"本": 2, "日": 1}"#), r#"{"日":1,"本":2}"#);
    assert_eq!(canonical(r#"{"a": "\u65E5"}"#), r#"{"a":"日"}"#);
    assert_eq!(canonical(r#"{"a": null}"#), r#"{"a":null}"#);
    // Signing leaves out `signatures` and `unsigned`.
    assert_eq!(
        canonical(r#"{"b": 1, "signatures": {"x": {}}, "unsigned": {"age": 3}}"#),
        r#"{"b":1}"#
    );
}

#[test]
fn what_canonical_json_cannot_hold_is_refused() {
    for bad in [
        r#"{"a": 1.5}"#,
        r#"{"a": 9007199254740992}"#,
        r#"{"a": -9007199254740992}"#,
    ] {
        let value: serde_json::Value = serde_json::from_str(bad).unwrap();
        assert!(
            CanonicalJsonValue::try_from(value).is_err(),
            "{bad} must not be canonical JSON"
        );
    }
    let edge: serde_json::Value = serde_json::from_str(r#"{"a": 9007199254740991}"#).unwrap();
    assert!(CanonicalJsonValue::try_from(edge).is_ok(), "2^53-1 is");
}

#[test]
fn signatures_match_the_specification() {
    let id = spec_identity();
    let mut empty = CanonicalJsonObject::new();
    id.sign(&mut empty).unwrap();
    assert_eq!(
        serde_json::to_value(&empty).unwrap()["signatures"]["domain"]["ed25519:1"],
        "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
    );
    let mut two = object(r#"{"one": 1, "two": "Two"}"#);
    id.sign(&mut two).unwrap();
    assert_eq!(
        serde_json::to_value(&two).unwrap()["signatures"]["domain"]["ed25519:1"],
        "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
    );
    // Key order and whitespace do not matter; content does.
    let map: PublicKeyMap = [(
        "domain".to_string(),
        [(
            "ed25519:1".to_string(),
            ruma::serde::Base64::parse(id.public_key()).unwrap(),
        )]
        .into(),
    )]
    .into();
    let mut reordered = object(r#"{ "two" : "Two", "one" : 1 }"#);
    reordered.insert("signatures".into(), two["signatures"].clone());
    ruma::signatures::verify_json(&map, &reordered).expect("same canonical form");
    reordered.insert("one".into(), CanonicalJsonValue::Integer(2u32.into()));
    assert!(ruma::signatures::verify_json(&map, &reordered).is_err());
}

/// The header we send is what ruma (and so a Rust peer) verifies, for the exact target and body.
#[test]
fn x_matrix_headers_verify() {
    let id = spec_identity();
    let destination = <&ServerName>::try_from("peer.test:8448").unwrap();
    let target = "/_matrix/federation/v1/send/txn1?x=%21a%3Ab";
    let body = br#"{"origin":"domain","pdus":[],"edus":[]}"#;
    let header =
        crate::client::x_matrix_header(&id, destination, &http::Method::PUT, target, Some(body))
            .unwrap();
    let text = header.to_str().unwrap();
    assert!(text.starts_with("X-Matrix "), "{text}");
    let x_matrix = XMatrix::parse(text).unwrap();
    assert_eq!(x_matrix.origin.as_str(), "domain");
    assert_eq!(x_matrix.destination.as_deref(), Some(destination));
    assert_eq!(x_matrix.key.as_str(), "ed25519:1");
    let map: PublicKeyMap = [(
        "domain".to_string(),
        [(
            "ed25519:1".to_string(),
            ruma::serde::Base64::parse(id.public_key()).unwrap(),
        )]
        .into(),
    )]
    .into();
    let request = |uri: &str, body: &'static [u8]| {
        http::Request::builder()
            .method("PUT")
            .uri(uri)
            .body(body)
            .unwrap()
    };
    x_matrix
        .verify_http_request(&request(target, body), destination, &map)
        .expect("verifies");
    // The same body with other whitespace is the same content.
    let spaced: &'static [u8] = br#"{ "edus": [], "pdus": [], "origin": "domain" }"#;
    x_matrix
        .verify_http_request(&request(target, spaced), destination, &map)
        .expect("canonical content");
    let decoded = "/_matrix/federation/v1/send/txn1?x=!a:b";
    assert!(
        x_matrix
            .verify_http_request(&request(decoded, body), destination, &map)
            .is_err(),
        "the target is compared byte for byte"
    );
    let other_body: &'static [u8] = br#"{"origin":"domain","pdus":[{}],"edus":[]}"#;
    assert!(
        x_matrix
            .verify_http_request(&request(target, other_body), destination, &map)
            .is_err()
    );
    let elsewhere = <&ServerName>::try_from("other.test").unwrap();
    assert!(
        x_matrix
            .verify_http_request(&request(target, body), elsewhere, &map)
            .is_err()
    );
}
