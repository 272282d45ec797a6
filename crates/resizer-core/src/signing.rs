//! Signed variant URLs: the string-to-sign, the signature and its check.
//!
//! A URL `GET /v1/img/{tenant}/{name}?width=320&exp=…&sig=…` is public when
//! `sig` is the unpadded base64url HMAC-SHA256, under one of the tenant's
//! signing secrets, of the path, `?`, and every other query parameter sorted
//! by name (then value), `name=value` joined by `&`, each name and value
//! percent-encoded with only RFC 3986's unreserved characters left as they are.
//! Decoded values are re-encoded here, so how a client or proxy escaped the
//! URL on the wire does not matter; the HMAC key is the secret string's bytes,
//! so clients use it as given, without decoding it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::capability::hmac_sha256;
use crate::ids::{random_bytes, to_hex};

/// The query parameter that carries the signature.
pub const SIG: &str = "sig";
/// The query parameter that carries the expiry (Unix seconds).
pub const EXP: &str = "exp";
const SECRET_PREFIX: &str = "sgs_";

/// A fresh signing secret: 256 random bits behind a kind prefix.
pub fn new_secret() -> String {
    let mut buf = [0u8; 32];
    random_bytes(&mut buf);
    format!("{SECRET_PREFIX}{}", to_hex(&buf))
}

/// Whether `s` has the shape of a secret made by [`new_secret`].
pub fn is_secret(s: &str) -> bool {
    s.strip_prefix(SECRET_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The canonical query: pairs other than `sig`, sorted, encoded, joined by `&`.
pub fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != SIG).collect();
    sorted.sort();
    let mut out = String::new();
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(k, &mut out);
        out.push('=');
        encode_component(v, &mut out);
    }
    out
}

/// What is signed: `path?canonical query`.
pub fn string_to_sign(path: &str, pairs: &[(String, String)]) -> String {
    format!("{path}?{}", canonical_query(pairs))
}

/// The signature of `path` and `pairs` under `secret`.
pub fn sign(secret: &str, path: &str, pairs: &[(String, String)]) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256(
        secret.as_bytes(),
        string_to_sign(path, pairs).as_bytes(),
    ))
}

/// Which of `secrets` (its index) signed `path` and `pairs` as `presented`,
/// each compared in constant time; every secret is tried, so the time says
/// nothing about which one matched.
pub fn verify<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    path: &str,
    pairs: &[(String, String)],
    presented: &str,
) -> Option<usize> {
    let mac = URL_SAFE_NO_PAD.decode(presented).ok()?;
    if mac.len() != 32 {
        return None;
    }
    let message = string_to_sign(path, pairs);
    let mut matched = None;
    for (i, secret) in secrets.into_iter().enumerate() {
        let ok: bool = hmac_sha256(secret.as_bytes(), message.as_bytes())
            .ct_eq(&mac[..])
            .into();
        if ok {
            matched = Some(i);
        }
    }
    matched
}

/// A signed URL's path and query: `pairs` plus `exp` when given, plus `sig`.
pub fn signed_path_and_query(
    secret: &str,
    path: &str,
    pairs: &[(String, String)],
    exp: Option<u64>,
) -> String {
    let mut all: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != SIG && k != EXP)
        .cloned()
        .collect();
    if let Some(exp) = exp {
        all.push((EXP.to_string(), exp.to_string()));
    }
    let sig = sign(secret, path, &all);
    let query = canonical_query(&all);
    if query.is_empty() {
        format!("{path}?{SIG}={sig}")
    } else {
        format!("{path}?{query}&{SIG}={sig}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn test_string_to_sign_sorts_encodes_and_drops_sig() {
        let p = pairs(&[
            ("width", "320"),
            ("sig", "x"),
            ("format", "auto"),
            ("exp", "17"),
            ("a b", "ü/&"),
        ]);
        assert_eq!(
            string_to_sign("/v1/img/t/n.jpg", &p),
            "/v1/img/t/n.jpg?a%20b=%C3%BC%2F%26&exp=17&format=auto&width=320"
        );
        assert_eq!(string_to_sign("/p", &[]), "/p?");
    }

    #[test]
    fn test_signature_matches_an_independent_hmac() {
        // `printf '/v1/img/t/a.jpg?width=320' | openssl dgst -sha256 -hmac k -binary | basenc --base64url`, padding dropped
        let sig = sign("k", "/v1/img/t/a.jpg", &pairs(&[("width", "320")]));
        assert_eq!(sig, "pHyvmFgNRV-toAHkpB1iw5wHtGZsIHH964g39dLYTUo");
    }

    #[test]
    fn test_verify_takes_any_active_secret_and_nothing_else() {
        let p = pairs(&[("width", "320"), ("fit", "cover")]);
        let sig = sign("old", "/v1/img/t/a", &p);
        assert_eq!(verify(["new", "old"], "/v1/img/t/a", &p, &sig), Some(1));
        assert_eq!(verify(["new"], "/v1/img/t/a", &p, &sig), None);
        assert_eq!(verify(["old"], "/v1/img/t/b", &p, &sig), None);
        let other = pairs(&[("width", "321"), ("fit", "cover")]);
        assert_eq!(verify(["old"], "/v1/img/t/a", &other, &sig), None);
        assert_eq!(verify(["old"], "/v1/img/t/a", &p, &sig[..sig.len() - 1]), None);
        assert_eq!(verify(["old"], "/v1/img/t/a", &p, "not base64 !"), None);
        assert_eq!(verify(Vec::<&str>::new(), "/v1/img/t/a", &p, &sig), None);
    }

    #[test]
    fn test_signed_path_verifies_with_its_own_query() {
        let url = signed_path_and_query("s", "/v1/img/t/a", &pairs(&[("width", "9")]), Some(100));
        let (path, query) = url.split_once('?').unwrap();
        let mut got: Vec<(String, String)> = query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sig = got
            .iter()
            .position(|(k, _)| k == SIG)
            .map(|i| got.remove(i).1)
            .unwrap();
        assert_eq!(verify(["s"], path, &got, &sig), Some(0));
        assert_eq!(got, pairs(&[("exp", "100"), ("width", "9")]));
    }

    #[test]
    fn test_new_secrets_are_random_and_recognised() {
        let (a, b) = (new_secret(), new_secret());
        assert!(is_secret(&a) && is_secret(&b) && a != b);
        assert!(!is_secret("sgs_12") && !is_secret(&a.replace("sgs_", "rsz_")));
    }
}
