//! Credentials for the engines a role connects to, and how it reaches them. `Debug` never prints the
//! password, so a logged config or error cannot leak it.

/// A user name and password (NATS users, one per role).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
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
            password: "hunter2-hunter2".into(),
        };
        let shown = format!("{login:?}");
        assert!(shown.contains("worker") && !shown.contains("hunter2"), "{shown}");
    }
}
