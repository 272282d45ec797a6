//! Names of originals: 1–255 bytes of `[A-Za-z0-9._/-]`, no `.` or `..`
//! segment, no empty segment, no leading or trailing `/`. Names become object
//! keys and URL paths, so the grammar leaves nothing to escape, normalise or
//! traverse: two different strings are always two different objects.

use serde::Serialize;

/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A checked name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OriginalName(String);

impl OriginalName {
    /// Checks `s` against the grammar and says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return Err(format!("a name is 1 to {MAX_NAME_LEN} bytes"));
        }
        if let Some(c) = s.chars().find(|&c| !allowed(c)) {
            return Err(format!(
                "a name may hold only letters, digits, `.`, `_`, `-` and `/`; it contains {c:?}"
            ));
        }
        if s.split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err("a name may not start or end with `/`, hold `//`, or a `.` or `..` segment".into());
        }
        Ok(Self(s.to_string()))
    }

    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a list prefix is made of name characters (it may end in `/`).
pub fn valid_prefix(s: &str) -> bool {
    s.len() <= MAX_NAME_LEN && s.chars().all(allowed)
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

impl std::fmt::Display for OriginalName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_follow_the_grammar() {
        for good in [
            "a",
            "photos/2026/cat.jpg",
            "A-b_c.d",
            "..a",
            "a..",
            "x/.hidden",
            &"n".repeat(255),
        ] {
            assert!(OriginalName::parse(good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "..",
            "a/../b",
            "./a",
            "a/.",
            "a b",
            "a%2e",
            "a\\b",
            "ü",
            "a\0",
            "a?b",
            "a#b",
            &"n".repeat(256),
        ] {
            assert!(OriginalName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn test_prefixes_use_name_characters() {
        assert!(valid_prefix("") && valid_prefix("photos/") && valid_prefix("a.b-c_d"));
        assert!(!valid_prefix("a b") && !valid_prefix("%") && !valid_prefix(&"a".repeat(256)));
    }
}
