//! JWKs as WebCrypto exports and imports them. Export member order is alphabetical (Chromium's);
//! the strings are opaque to everyone but the legacy SHA-256 key id, so any order imports.

use rsa::BigUint;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::codec::{b64url, unb64url};
use crate::{E2eeError, Result};

pub const RSA_ALG: &str = "RSA-OAEP-256";
/// Rocket.Chat generates 2048-bit keys; an E2EKey's RSA part is always 256 bytes.
pub const RSA_BITS: usize = 2048;

#[derive(Serialize)]
struct RsaPublicOut<'a> {
    alg: &'a str,
    e: String,
    ext: bool,
    key_ops: [&'a str; 1],
    kty: &'a str,
    n: String,
}

#[derive(Serialize)]
struct RsaPrivateOut<'a> {
    alg: &'a str,
    d: String,
    dp: String,
    dq: String,
    e: String,
    ext: bool,
    key_ops: [&'a str; 1],
    kty: &'a str,
    n: String,
    p: String,
    q: String,
    qi: String,
}

#[derive(Serialize)]
struct OctOut<'a> {
    alg: &'a str,
    ext: bool,
    k: String,
    key_ops: [&'a str; 2],
    kty: &'a str,
}

fn uint(v: &BigUint) -> String {
    b64url(&v.to_bytes_be())
}

fn member<'a>(obj: &'a Value, name: &'static str) -> Result<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .ok_or(E2eeError::Jwk(name))
}

fn big(obj: &Value, name: &'static str) -> Result<BigUint> {
    let bytes = unb64url(member(obj, name)?, name)?;
    if bytes.is_empty() {
        return Err(E2eeError::Jwk(name));
    }
    Ok(BigUint::from_bytes_be(&bytes))
}

/// WebCrypto refuses `ext: false` for keys imported extractable, and a `key_ops` list without the
/// usage asked for; a JWK this crate accepts is one a client would accept.
fn check_common(obj: &Value, kty: &str, alg: &str, usage: &str) -> Result<()> {
    if obj.get("kty").and_then(Value::as_str) != Some(kty) {
        return Err(E2eeError::Jwk("kty"));
    }
    match obj.get("alg") {
        Some(Value::String(a)) if a == alg => {}
        _ => return Err(E2eeError::Jwk("alg")),
    }
    if obj.get("ext") == Some(&Value::Bool(false)) {
        return Err(E2eeError::Jwk("ext"));
    }
    if let Some(ops) = obj.get("key_ops") {
        let ok = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some(usage)));
        if !ok {
            return Err(E2eeError::Jwk("key_ops"));
        }
    }
    Ok(())
}

fn parse(s: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(s).map_err(|_| E2eeError::Jwk("not JSON"))?;
    if !v.is_object() {
        return Err(E2eeError::Jwk("not an object"));
    }
    Ok(v)
}

fn check_size(n: &BigUint) -> Result<()> {
    if n.bits() != RSA_BITS {
        return Err(E2eeError::Jwk("modulus is not 2048 bits"));
    }
    Ok(())
}

pub fn rsa_public_from_jwk(s: &str) -> Result<RsaPublicKey> {
    let v = parse(s)?;
    check_common(&v, "RSA", RSA_ALG, "encrypt")?;
    if v.get("d").is_some() {
        return Err(E2eeError::Jwk("public key has d"));
    }
    let n = big(&v, "n")?;
    check_size(&n)?;
    RsaPublicKey::new(n, big(&v, "e")?).map_err(|_| E2eeError::Rsa("public key"))
}

pub fn rsa_private_from_jwk(s: &str) -> Result<RsaPrivateKey> {
    let v = parse(s)?;
    check_common(&v, "RSA", RSA_ALG, "decrypt")?;
    let n = big(&v, "n")?;
    check_size(&n)?;
    let key = RsaPrivateKey::from_components(
        n,
        big(&v, "e")?,
        big(&v, "d")?,
        vec![big(&v, "p")?, big(&v, "q")?],
    )
    .map_err(|_| E2eeError::Rsa("private key"))?;
    Ok(key)
}

pub fn rsa_public_to_jwk(key: &RsaPublicKey) -> String {
    serde_json::to_string(&RsaPublicOut {
        alg: RSA_ALG,
        e: uint(key.e()),
        ext: true,
        key_ops: ["encrypt"],
        kty: "RSA",
        n: uint(key.n()),
    })
    .expect("JWK serialises")
}

pub fn rsa_private_to_jwk(key: &RsaPrivateKey) -> Zeroizing<String> {
    let primes = key.primes();
    let (dp, dq, qi) = (
        key.dp().map(uint).unwrap_or_default(),
        key.dq().map(uint).unwrap_or_default(),
        key.crt_coefficient().as_ref().map(uint).unwrap_or_default(),
    );
    Zeroizing::new(
        serde_json::to_string(&RsaPrivateOut {
            alg: RSA_ALG,
            d: uint(key.d()),
            dp,
            dq,
            e: uint(key.e()),
            ext: true,
            key_ops: ["decrypt"],
            kty: "RSA",
            n: uint(key.n()),
            p: uint(&primes[0]),
            q: uint(&primes[1]),
            qi,
        })
        .expect("JWK serialises"),
    )
}

/// A symmetric key's raw bytes from an `oct` JWK with the given `alg`.
pub fn oct_from_jwk(v: &Value, alg: &str, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    check_common(v, "oct", alg, "decrypt")?;
    let k = Zeroizing::new(unb64url(member(v, "k")?, "k")?);
    if k.len() != len {
        return Err(E2eeError::Jwk("key length"));
    }
    Ok(k)
}

pub fn oct_to_jwk(alg: &str, key: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(
        serde_json::to_string(&OctOut {
            alg,
            ext: true,
            k: b64url(key),
            key_ops: ["encrypt", "decrypt"],
            kty: "oct",
        })
        .expect("JWK serialises"),
    )
}

pub fn oct_to_value(alg: &str, key: &[u8]) -> Value {
    serde_json::to_value(OctOut {
        alg,
        ext: true,
        k: b64url(key),
        key_ops: ["encrypt", "decrypt"],
        kty: "oct",
    })
    .expect("JWK serialises")
}

pub fn parse_object(s: &str) -> Result<Value> {
    parse(s)
}
