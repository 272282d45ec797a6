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
    /// One signing secret of a tenant, for variant URLs.
    SigningKeyId,
    "sgk_"
);
id_type!(
    /// One usage record; the aggregator deduplicates on it.
    RecordId,
    "rec_"
);

/// Who vouched for a request: an API key (`key_…`) or, for a signed variant
/// URL, the signing key that signed it (`sgk_…`). Usage records and the audit
/// trail carry it as the id's text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CredentialId {
    /// An API key.
    Key(KeyId),
    /// A URL signing key.
    Signing(SigningKeyId),
}

impl CredentialId {
    /// Parses either kind of id by its prefix.
    pub fn parse(s: &str) -> Option<Self> {
        KeyId::parse(s)
            .map(Self::Key)
            .or_else(|| SigningKeyId::parse(s).map(Self::Signing))
    }

    /// Returns the id as text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Key(k) => k.as_str(),
            Self::Signing(k) => k.as_str(),
        }
    }
}

impl From<KeyId> for CredentialId {
    fn from(k: KeyId) -> Self {
        Self::Key(k)
    }
}

impl From<SigningKeyId> for CredentialId {
    fn from(k: SigningKeyId) -> Self {
        Self::Signing(k)
    }
}

impl std::fmt::Display for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for CredentialId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| "not a valid key_ or sgk_ id".to_string())
    }
}

impl From<CredentialId> for String {
    fn from(id: CredentialId) -> String {
        id.as_str().to_string()
    }
}

impl utoipa::PartialSchema for CredentialId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^(key|sgk)_[0-9a-f]{32}$"))
            .into()
    }
}

impl utoipa::ToSchema for CredentialId {}

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
    fn test_credential_ids_parse_either_kind_and_nothing_else() {
        let (k, s) = (KeyId::random(), SigningKeyId::random());
        assert_eq!(
            CredentialId::parse(k.as_str()),
            Some(CredentialId::Key(k.clone()))
        );
        assert_eq!(CredentialId::parse(s.as_str()), Some(CredentialId::Signing(s)));
        assert!(CredentialId::parse(TenantId::random().as_str()).is_none());
        assert_eq!(CredentialId::from(k.clone()).as_str(), k.as_str());
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
