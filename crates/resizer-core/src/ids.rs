//! Unguessable identifiers: 128 random bits, hex-encoded behind a kind prefix.
//!
//! The prefix names the kind of thing (`ten_`, `key_`, `job_`, `req_`), never a
//! tenant or a sequence, so an id leaks nothing and cannot be enumerated.

use serde::{Deserialize, Serialize};

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Panics
/// Panics if the OS has no entropy source; nothing safe can be done without one.
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("operating system entropy source unavailable");
}

/// Encodes bytes as lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

fn random_hex_128() -> String {
    let mut buf = [0u8; 16];
    random_bytes(&mut buf);
    to_hex(&buf)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The kind prefix every id of this type starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Returns a fresh random id.
            pub fn random() -> Self {
                Self(format!("{}{}", $prefix, random_hex_128()))
            }

            /// Parses an id, checking prefix and length.
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?;
                is_lower_hex(rest, 32).then(|| Self(s.to_string()))
            }

            /// Returns the id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// Documented as the string it is on the wire, with its exact grammar.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[0-9a-f]{32}$")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s).ok_or_else(|| format!("not a valid {} id", $prefix))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// A customer account.
    TenantId,
    "ten_"
);
id_type!(
    /// One API key of a tenant; the public half of the key secret.
    KeyId,
    "key_"
);
id_type!(
    /// One unit of resize work travelling through the queue.
    JobId,
    "job_"
);
id_type!(
    /// One HTTP request, echoed as `X-Request-Id` and used as the trace id.
    RequestId,
    "req_"
);
id_type!(
    /// One usage record; the aggregator deduplicates on it.
    RecordId,
    "rec_"
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn test_ids_are_prefixed_random_and_parse_back() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let id = TenantId::random();
            assert!(id.as_str().starts_with("ten_"));
            assert_eq!(id.as_str().len(), 4 + 32);
            assert_eq!(TenantId::parse(id.as_str()), Some(id.clone()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn test_id_parse_rejects_wrong_prefix_and_garbage() {
        let key = KeyId::random();
        assert!(TenantId::parse(key.as_str()).is_none());
        assert!(TenantId::parse("ten_1234").is_none());
        assert!(TenantId::parse("ten_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ").is_none());
        assert!(TenantId::parse("").is_none());
    }
}
