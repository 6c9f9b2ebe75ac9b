//! The roles a caller may have. A leaf: configuration names roles for certificates, `auth`
//! checks them, the adapters hand them out with tokens.

use std::fmt;
use std::str::FromStr;

/// What a caller may do. An admin may do everything; a reader reads; ingest is what collectors
/// (and backfills) need: send files and keep their sources' bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Ingest,
    Reader,
    Admin,
}

impl Role {
    pub fn allows(self, required: Role) -> bool {
        self == required || self == Role::Admin
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Reader => "reader",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a role: use ingest, reader or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(text: &str) -> Result<Role, UnknownRole> {
        match text.to_ascii_lowercase().as_str() {
            "ingest" => Ok(Role::Ingest),
            "reader" => Ok(Role::Reader),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(text.to_string())),
        }
    }
}
