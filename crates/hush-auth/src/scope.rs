//! The scopes a caller can hold.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One permission on Hush's APIs. `auditor:admin` includes `auditor:read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Submit opt-outs, limits of sensitive data and GPC signals.
    #[serde(rename = "requests:opt_out")]
    RequestsOptOut,
    /// Submit verified deletions.
    #[serde(rename = "requests:delete")]
    RequestsDelete,
    /// Submit opt-ins (which reverse an opt-out).
    #[serde(rename = "requests:opt_in")]
    RequestsOptIn,
    /// Read request records, the report and the dashboard.
    #[serde(rename = "auditor:read")]
    AuditorRead,
    /// Extend, deny, resolve and retry requests.
    #[serde(rename = "auditor:admin")]
    AuditorAdmin,
    /// Ask the deny-list whether identifiers may be used.
    #[serde(rename = "denylist:check")]
    DenylistCheck,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::RequestsOptOut,
        Scope::RequestsDelete,
        Scope::RequestsOptIn,
        Scope::AuditorRead,
        Scope::AuditorAdmin,
        Scope::DenylistCheck,
    ];

    /// The scope's name, e.g. `requests:opt_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RequestsOptOut => "requests:opt_out",
            Scope::RequestsDelete => "requests:delete",
            Scope::RequestsOptIn => "requests:opt_in",
            Scope::AuditorRead => "auditor:read",
            Scope::AuditorAdmin => "auditor:admin",
            Scope::DenylistCheck => "denylist:check",
        }
    }

    /// The scope named `name`, if any.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == name)
    }

    /// Whether an anonymous caller (a consumer's browser) may be given this scope: only an
    /// opt-out, never a deletion, an opt-in or any auditor or deny-list access.
    pub fn may_be_anonymous(self) -> bool {
        self == Scope::RequestsOptOut
    }

    /// Whether holding `self` grants `wanted`.
    pub fn grants(self, wanted: Scope) -> bool {
        self == wanted || (self == Scope::AuditorAdmin && wanted == Scope::AuditorRead)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_parses_back_from_its_name() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
        }
        assert_eq!(Scope::parse("requests:everything"), None);
    }

    #[test]
    fn admin_grants_read_but_read_does_not_grant_admin() {
        assert!(Scope::AuditorAdmin.grants(Scope::AuditorRead));
        assert!(!Scope::AuditorRead.grants(Scope::AuditorAdmin));
        assert!(!Scope::RequestsOptOut.grants(Scope::RequestsDelete));
    }

    #[test]
    fn only_an_opt_out_may_be_anonymous() {
        let anonymous: Vec<Scope> = Scope::ALL
            .into_iter()
            .filter(|s| s.may_be_anonymous())
            .collect();
        assert_eq!(anonymous, vec![Scope::RequestsOptOut]);
    }
}
