//! Credentials for the engines a role connects to. `Debug` never prints the
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
