//! Shamir secret sharing over GF(2^8), byte by byte (the field of AES: x^8 + x^4 + x^3 + x + 1).
//!
//! Written here rather than taken from a crate: the maintained crates are either unmaintained
//! (`sharks`) or generic over elliptic-curve fields (`vsss-rs`), and this is forty lines. Field
//! arithmetic is branch-free on secret values (no log/exp tables indexed by secrets), so share
//! handling does not leak through cache timing.
//!
//! A share is `x ‖ y[0..len]`: the x-coordinate (1–255) then one field element per secret byte.
//! Fewer than the threshold of shares reveal nothing about the secret; combining them gives
//! some other value, which the caller's authenticated decryption then refuses.

use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::{E2eeError, Result};

/// Multiplication in GF(2^8) without branches on the operands.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// The inverse as a^254 (0 maps to 0; callers never invert 0).
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exp = 254u8;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    result
}

/// Splits `secret` into `count` shares of which any `threshold` recover it.
pub fn split(secret: &[u8], threshold: u8, count: u8) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    if threshold < 2 || count < threshold || secret.is_empty() {
        return Err(E2eeError::Format("share threshold"));
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (1..=count)
        .map(|x| {
            let mut share = Zeroizing::new(Vec::with_capacity(secret.len() + 1));
            share.push(x);
            share
        })
        .collect();
    // One random polynomial per byte: coefficient 0 is the secret byte.
    let mut coefficients = Zeroizing::new(vec![0u8; usize::from(threshold)]);
    for &byte in secret {
        coefficients[0] = byte;
        OsRng.fill_bytes(&mut coefficients[1..]);
        for share in shares.iter_mut() {
            let x = share[0];
            // Horner's rule from the highest coefficient down.
            let y = coefficients
                .iter()
                .rev()
                .fold(0u8, |acc, &c| mul(acc, x) ^ c);
            share.push(y);
        }
    }
    Ok(shares)
}

/// Recovers the secret from shares (Lagrange interpolation at x = 0). The shares must have
/// distinct non-zero x-coordinates and equal lengths; whether there were enough of them is not
/// knowable here (too few give a wrong value).
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>> {
    let first = shares.first().ok_or(E2eeError::Format("no shares"))?;
    let len = first.len();
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(E2eeError::Format("share length"));
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[0]).collect();
    for (i, &x) in xs.iter().enumerate() {
        if x == 0 || xs[..i].contains(&x) {
            return Err(E2eeError::Format("share x-coordinate"));
        }
    }
    // Lagrange basis values at 0: l_i = Π_{j≠i} x_j / (x_j - x_i); subtraction is XOR.
    let basis: Vec<u8> = xs
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            xs.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(1u8, |acc, (_, &xj)| mul(acc, mul(xj, inv(xj ^ xi))))
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (share, &l) in shares.iter().zip(&basis) {
        for (out, &y) in secret.iter_mut().zip(&share[1..]) {
            *out ^= mul(y, l);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_matches_fips_197() {
        // FIPS-197 §4.2: {57} • {83} = {c1}, {57} • {13} = {fe}; §5.1.1: the inverse of {53} is {ca}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        assert_eq!(inv(0x53), 0xca);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn any_threshold_of_shares_recovers_the_secret() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 3, 5).unwrap();
        assert_eq!(shares.len(), 5);
        for a in 0..5 {
            for b in 0..5 {
                for c in 0..5 {
                    if a == b || b == c || a == c {
                        continue;
                    }
                    let picked = [&shares[a][..], &shares[b][..], &shares[c][..]];
                    assert_eq!(&combine(&picked).unwrap()[..], &secret[..]);
                }
            }
        }
        // All five also work; two give something else.
        let all: Vec<&[u8]> = shares.iter().map(|s| &s[..]).collect();
        assert_eq!(&combine(&all).unwrap()[..], &secret[..]);
        assert_ne!(&combine(&all[..2]).unwrap()[..], &secret[..]);
    }

    #[test]
    fn bad_shares_are_refused() {
        let shares = split(&[7; 32], 2, 3).unwrap();
        assert!(combine(&[&shares[0][..], &shares[0][..]]).is_err());
        assert!(combine(&[&shares[0][..], &shares[1][..5]]).is_err());
        let mut zero = shares[1].to_vec();
        zero[0] = 0;
        assert!(combine(&[&shares[0][..], &zero[..]]).is_err());
        assert!(combine(&[]).is_err());
        assert!(split(&[1], 1, 3).is_err());
        assert!(split(&[1], 4, 3).is_err());
    }
}
