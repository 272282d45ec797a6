//! Secrets and credentials for the engines a role connects to, and how it
//! reaches them. [`Redacted`] is the one way a secret is held: `Debug` never
//! prints it, so a logged config or error cannot leak it.

use serde::{Deserialize, Serialize};

/// A secret: serialized as itself, printed as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Redacted {
    fn from(secret: &str) -> Self {
        Self(secret.to_string())
    }
}

impl Redacted {
    /// The secret itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A user name and password (NATS users, one per role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The user.
    pub user: String,
    /// The password.
    pub password: Redacted,
}

/// How a role reaches NATS beyond the server URLs: its user, and the CA that
/// makes TLS required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsAccess {
    /// This role's user, if the servers require one.
    pub login: Option<Login>,
    /// PEM certificate(s) trusted for the servers; set, the connection must be TLS.
    pub ca_file: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_debug_hides_the_password() {
        let login = Login {
            user: "worker".into(),
            password: Redacted("hunter2-hunter2".into()),
        };
        let shown = format!("{login:?}");
        assert!(shown.contains("worker") && !shown.contains("hunter2"), "{shown}");
    }
}
