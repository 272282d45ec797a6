//! API key secrets: generation, hashing and constant-time verification.
//!
//! A secret reads `rsz_<key hex>_<secret hex>`: the first part is the key id
//! (used to find the stored hash without scanning), the second 256 random bits.
//! Only SHA-256 of the whole secret is stored. A slow password hash is not
//! needed because the secret is random with 256 bits of entropy, and a fast
//! hash keeps authentication in microseconds.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::{KeyId, random_bytes, to_hex};

const SECRET_PREFIX: &str = "rsz_";

/// The stored form of a key secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Hashes a presented secret.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Compares in constant time, so timing reveals nothing about the stored hash.
    pub fn verify(&self, presented: &str) -> bool {
        let candidate = Self::of(presented);
        bool::from(self.0.ct_eq(&candidate.0))
    }

    /// Returns the hash as hex, for storage.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses the hex form written by [`KeyHash::to_hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = (chunk[0] as char).to_digit(16)?;
            let lo = (chunk[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Self(out))
    }
}

/// A freshly issued key: the secret is shown to the caller once, then dropped.
pub struct IssuedKey {
    /// Public identifier of the key.
    pub key_id: KeyId,
    /// The full bearer secret.
    pub secret: String,
    /// What is stored.
    pub hash: KeyHash,
}

/// Issues a new random key.
pub fn issue() -> IssuedKey {
    let key_id = KeyId::random();
    let mut secret_bytes = [0u8; 32];
    random_bytes(&mut secret_bytes);
    let secret = format!(
        "{SECRET_PREFIX}{}_{}",
        &key_id.as_str()[KeyId::PREFIX.len()..],
        to_hex(&secret_bytes)
    );
    let hash = KeyHash::of(&secret);
    IssuedKey { key_id, secret, hash }
}

/// Extracts the key id from a presented secret, or `None` if it is malformed.
/// Only the shape is checked here; the hash decides whether it is valid.
pub fn key_id_of(secret: &str) -> Option<KeyId> {
    let rest = secret.strip_prefix(SECRET_PREFIX)?;
    let (id_hex, secret_hex) = rest.split_once('_')?;
    if secret_hex.len() != 64 {
        return None;
    }
    KeyId::parse(&format!("{}{id_hex}", KeyId::PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_issued_key_verifies_and_names_its_id() {
        let k = issue();
        assert!(k.hash.verify(&k.secret));
        assert_eq!(key_id_of(&k.secret), Some(k.key_id.clone()));
        assert_eq!(KeyHash::from_hex(&k.hash.to_hex()), Some(k.hash.clone()));
    }

    #[test]
    fn test_other_secret_with_same_key_id_fails() {
        for _ in 0..200 {
            let k = issue();
            // Change only the last hex digit of the secret part.
            let mut forged = k.secret.clone();
            let last = forged.pop().unwrap();
            forged.push(if last == '0' { '1' } else { '0' });
            assert_eq!(key_id_of(&forged), Some(k.key_id.clone()));
            assert!(!k.hash.verify(&forged));
        }
    }

    #[test]
    fn test_malformed_secrets_have_no_key_id() {
        for s in [
            "",
            "rsz_",
            "Bearer x",
            "rsz_abc_def",
            "key_00000000000000000000000000000000",
        ] {
            assert_eq!(key_id_of(s), None, "{s}");
        }
    }
}
