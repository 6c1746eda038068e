//! Who may use the ticket API and the console ([`super`]): the `[[api.tokens]]` users with their
//! roles and the `[[api.departments]]` logins, read from config once at start. A token is compared
//! in constant time against every login; a department login is read-only and console-only.

use crate::config::{ApiConfig, Role};
use anyhow::Context;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// An API user: its name is recorded as the author of every change it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Name from `[[api.tokens]]`.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// Whoever a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An engineer, viewer, administrator or system.
    User(User),
    /// A customer department (console only, read-only, its own tickets).
    Department(String),
}

/// Why a request is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denied {
    /// No or unknown token (401).
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    /// Known, but not allowed to do this (403).
    #[error("{0}")]
    Forbidden(String),
}

impl Principal {
    /// The user behind the principal when its role reaches `needs`.
    pub fn permit(&self, needs: Role) -> Result<&User, Denied> {
        match self {
            Principal::User(user) if user.role >= needs => Ok(user),
            Principal::User(user) => Err(Denied::Forbidden(format!("{} may only read", user.name))),
            Principal::Department(department) => Err(Denied::Forbidden(format!(
                "department {department} may only read its own tickets in the console"
            ))),
        }
    }
}

struct Login {
    principal: Principal,
    token: Vec<u8>,
}

/// Every configured login.
pub struct Logins(Vec<Login>);

impl Logins {
    /// Reads every token (inline or from its file); refuses an empty department id and a token
    /// used by two logins (it could not tell them apart).
    pub fn new(config: &ApiConfig) -> anyhow::Result<Self> {
        let mut logins = Vec::new();
        for (i, t) in config.tokens.iter().enumerate() {
            let at = format!("api.tokens[{i}]");
            logins.push(Login {
                principal: Principal::User(User {
                    name: t.name.clone(),
                    role: t.role,
                }),
                token: crate::agents::read_token(&at, t.token.as_ref(), t.token_file.as_deref())?,
            });
        }
        for (i, d) in config.departments.iter().enumerate() {
            let at = format!("api.departments[{i}]");
            anyhow::ensure!(
                !d.department.trim().is_empty(),
                "{at}.department: must name a department id of the inventory"
            );
            let token = crate::agents::read_token(&at, d.token.as_ref(), d.token_file.as_deref())
                .with_context(|| format!("{at} (department {})", d.department))?;
            logins.push(Login {
                principal: Principal::Department(d.department.clone()),
                token,
            });
        }
        for (i, a) in logins.iter().enumerate() {
            if logins[..i].iter().any(|b| b.token == a.token) {
                anyhow::bail!(
                    "api: {} shares its token with another login; every login needs its own",
                    describe(&a.principal)
                );
            }
        }
        Ok(Self(logins))
    }

    /// Who owns `token`; compares in constant time against every login.
    pub fn find(&self, token: &[u8]) -> Option<&Principal> {
        let mut found = None;
        for login in &self.0 {
            if bool::from(login.token.as_slice().ct_eq(token)) {
                found = Some(&login.principal);
            }
        }
        found
    }
}

fn describe(principal: &Principal) -> String {
    match principal {
        Principal::User(user) => format!("user {}", user.name),
        Principal::Department(department) => format!("department {department}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiToken, DepartmentLogin};
    use faultline_wire::config_file::Secret;

    fn config(user_token: &str, department: &str, department_token: &str) -> ApiConfig {
        ApiConfig {
            tokens: vec![ApiToken {
                name: "alice".into(),
                role: Role::Engineer,
                token: Some(Secret::new(user_token)),
                token_file: None,
            }],
            departments: vec![DepartmentLogin {
                department: department.into(),
                token: Some(Secret::new(department_token)),
                token_file: None,
            }],
            time_zone: None,
            ..ApiConfig::default()
        }
    }

    #[test]
    fn logins_need_a_department_and_their_own_token() {
        let logins =
            Logins::new(&config("a-token", "finance", "f-token")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            logins.find(b"f-token"),
            Some(&Principal::Department("finance".into()))
        );
        assert!(logins.find(b"f-toke").is_none());
        let shared = Logins::new(&config("same", "finance", "same")).err();
        assert!(
            shared.is_some_and(|e| e.to_string().contains("shares its token")),
            "a shared token is refused"
        );
        let nameless = Logins::new(&config("a-token", " ", "f-token")).err();
        assert!(nameless.is_some_and(|e| e.to_string().contains("api.departments[0].department")));
    }

    #[test]
    fn departments_and_viewers_may_not_change_tickets() {
        let department = Principal::Department("finance".into());
        assert!(matches!(
            department.permit(Role::Viewer),
            Err(Denied::Forbidden(_))
        ));
        let viewer = Principal::User(User {
            name: "victor".into(),
            role: Role::Viewer,
        });
        assert!(viewer.permit(Role::Viewer).is_ok());
        assert!(matches!(
            viewer.permit(Role::Engineer),
            Err(Denied::Forbidden(_))
        ));
    }
}
