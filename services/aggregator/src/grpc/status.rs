//! Domain errors → gRPC status: the one table of codes.
//!
//! | error                                    | code              |
//! |------------------------------------------|-------------------|
//! | invalid lookup (attribute, range, token) | INVALID_ARGUMENT  |
//! | summary, Insights replay with the rollups off (benchmarks) | FAILED_PRECONDITION |
//! | invalid source request (sizes, lease)    | INVALID_ARGUMENT  |
//! | retention: invalid policy, under a floor | INVALID_ARGUMENT  |
//! | retention: unknown policy, hold, event   | NOT_FOUND         |
//! | retention: name taken                    | ALREADY_EXISTS    |
//! | retention: version moved on, released    | FAILED_PRECONDITION |
//! | retention: another run did not end       | UNAVAILABLE       |
//! | token: bad name, role, unknown, taken  | INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS |
//! | keys: no such key (rotate, re-encrypt)   | FAILED_PRECONDITION |
//! | alarms: bad pattern (with its column), definition, scope | INVALID_ARGUMENT |
//! | alarms, destinations: unknown / name taken | NOT_FOUND / ALREADY_EXISTS |
//! | alarms: version moved on, built-in deleted | FAILED_PRECONDITION |
//! | alarms: backtest over its event limit    | RESOURCE_EXHAUSTED |
//! | rules: not a rule orgtrail evaluates (with the file and why), bad triage state | INVALID_ARGUMENT |
//! | rules: a built-in rule deleted           | FAILED_PRECONDITION |
//! | rules: backtest or replay over its event limit | RESOURCE_EXHAUSTED |
//! | keys: anything else                      | INTERNAL          |
//! | no credentials / too low a role        | UNAUTHENTICATED / PERMISSION_DENIED |
//! | credentials not checkable now            | UNAVAILABLE       |
//! | stream protocol misuse                   | INVALID_ARGUMENT  |
//! | store unavailable, conflict, closing     | UNAVAILABLE       |
//! | anything else in the store               | INTERNAL          |
//!
//! INTERNAL answers carry no database detail; the detail is logged.

use tonic::Status;

use orgtrail_service_runtime::error_chain;

use crate::alarms::AlarmServiceError;
use crate::auth::{Refusal, TokenRequestError};
use crate::findings::FindingServiceError;
use crate::ingest::IngestError;
use crate::insights::InsightError;
use crate::lookup::LookupServiceError;
use crate::notify::NotificationServiceError;
use crate::query::QueryServiceError;
use crate::retention::RetentionServiceError;
use crate::sigma_rules::RuleServiceError;
use crate::sources::SourcesError;
use crate::store::{EncryptionError, StoreError};

pub fn ingest_error_status(error: &IngestError) -> Status {
    match error {
        IngestError::MissingOrigin { .. } | IngestError::InterleavedFiles { .. } => {
            Status::invalid_argument(error.to_string())
        }
        IngestError::Closed => Status::unavailable(error.to_string()),
        IngestError::Store { origin, source } => {
            store_error_status(&format!("cannot store {origin}"), source)
        }
    }
}

pub fn lookup_error_status(error: &LookupServiceError) -> Status {
    match error {
        LookupServiceError::Invalid(invalid) => Status::invalid_argument(invalid.to_string()),
        LookupServiceError::RollupsOff => Status::failed_precondition(error.to_string()),
        LookupServiceError::Store(source) => store_error_status("cannot read events", source),
    }
}

pub fn retention_error_status(error: &RetentionServiceError) -> Status {
    match error {
        RetentionServiceError::Invalid(_) | RetentionServiceError::InvalidRequest(_) => {
            Status::invalid_argument(error.to_string())
        }
        RetentionServiceError::NotFound(_) => Status::not_found(error.to_string()),
        RetentionServiceError::AlreadyExists(_) => Status::already_exists(error.to_string()),
        RetentionServiceError::Conflict(_) => Status::failed_precondition(error.to_string()),
        RetentionServiceError::Busy(_) => Status::unavailable(error.to_string()),
        RetentionServiceError::Store(source) => {
            store_error_status("cannot read or change retention", source)
        }
    }
}

pub fn alarm_error_status(error: &AlarmServiceError) -> Status {
    match error {
        AlarmServiceError::Pattern(_)
        | AlarmServiceError::Definition(_)
        | AlarmServiceError::InvalidRequest(_) => Status::invalid_argument(error.to_string()),
        AlarmServiceError::NotFound(_) => Status::not_found(error.to_string()),
        AlarmServiceError::AlreadyExists(_) => Status::already_exists(error.to_string()),
        AlarmServiceError::Conflict(_) => Status::failed_precondition(error.to_string()),
        AlarmServiceError::BacktestTooLarge => Status::resource_exhausted(error.to_string()),
        AlarmServiceError::Store(source) => {
            store_error_status("cannot read or change alarms", source)
        }
    }
}

pub fn notification_error_status(error: &NotificationServiceError) -> Status {
    match error {
        NotificationServiceError::InvalidRequest(_) => Status::invalid_argument(error.to_string()),
        NotificationServiceError::NotFound(_) => Status::not_found(error.to_string()),
        NotificationServiceError::AlreadyExists(_) => Status::already_exists(error.to_string()),
        NotificationServiceError::Conflict(_) => Status::failed_precondition(error.to_string()),
        NotificationServiceError::Store(source) => {
            store_error_status("cannot read or change notifications", source)
        }
    }
}

pub fn rule_error_status(error: &RuleServiceError) -> Status {
    match error {
        RuleServiceError::InvalidRule { .. } | RuleServiceError::InvalidRequest(_) => {
            Status::invalid_argument(error.to_string())
        }
        RuleServiceError::NotFound(_) => Status::not_found(error.to_string()),
        RuleServiceError::Conflict(_) => Status::failed_precondition(error.to_string()),
        RuleServiceError::TooManyEvents => Status::resource_exhausted(error.to_string()),
        RuleServiceError::Store(source) => {
            store_error_status("cannot read or change rules", source)
        }
    }
}

pub fn insight_error_status(error: &InsightError) -> Status {
    match error {
        InsightError::InvalidRequest(_) => Status::invalid_argument(error.to_string()),
        InsightError::NotFound(_) => Status::not_found(error.to_string()),
        InsightError::RollupsOff => Status::failed_precondition(error.to_string()),
        InsightError::Store(StoreError::NotFound(_)) => Status::not_found(error.to_string()),
        InsightError::Store(source) => store_error_status("cannot read or change Insights", source),
        InsightError::Ingest(source) => {
            tracing::error!(error = %error_chain(source), "cannot write an Insight event");
            if source.is_retryable() {
                Status::unavailable("cannot write Insight events now; try again")
            } else {
                Status::internal("cannot write Insight events")
            }
        }
    }
}

pub fn finding_error_status(error: &FindingServiceError) -> Status {
    match error {
        FindingServiceError::InvalidRequest(_) => Status::invalid_argument(error.to_string()),
        FindingServiceError::NotFound(_) => Status::not_found(error.to_string()),
        FindingServiceError::Store(source) => {
            store_error_status("cannot read or change findings", source)
        }
    }
}

pub fn sources_error_status(error: &SourcesError) -> Status {
    match error {
        SourcesError::TooMany { .. }
        | SourcesError::InvalidLeaseSeconds(_)
        | SourcesError::Empty(_)
        | SourcesError::Invalid(_) => Status::invalid_argument(error.to_string()),
        SourcesError::Store(source) => {
            store_error_status("cannot read or write source state", source)
        }
    }
}

pub fn quarantine_error_status(error: &StoreError) -> Status {
    match error {
        StoreError::NotFound(_) => Status::not_found(error.to_string()),
        other => store_error_status("cannot read the quarantine", other),
    }
}

/// A call refused by `auth`: UNAUTHENTICATED when the caller is not known, PERMISSION_DENIED
/// when it lacks the role, UNAVAILABLE when the credentials cannot be checked now.
pub fn refusal_status(refusal: &Refusal) -> Status {
    match refusal {
        Refusal::Store(_) => Status::unavailable(refusal.to_string()),
        _ if refusal.is_permission() => Status::permission_denied(refusal.to_string()),
        _ => Status::unauthenticated(refusal.to_string()),
    }
}

pub fn token_request_status(error: &TokenRequestError) -> Status {
    match error {
        TokenRequestError::Invalid(_) => Status::invalid_argument(error.to_string()),
        TokenRequestError::Store(source) => token_error_status(source),
    }
}

pub fn key_error_status(error: &EncryptionError) -> Status {
    match error {
        EncryptionError::Store(StoreError::NotFound(what)) => {
            Status::failed_precondition(format!("{what} does not exist"))
        }
        other => {
            tracing::error!(error = %error_chain(other), "key operation failed");
            Status::internal(format!("key operation failed: {other}"))
        }
    }
}

pub fn token_error_status(error: &StoreError) -> Status {
    match error {
        StoreError::NotFound(_) => Status::not_found(error.to_string()),
        StoreError::AlreadyExists(_) => Status::already_exists(error.to_string()),
        other => store_error_status("cannot read or change tokens", other),
    }
}

pub fn query_error_status(error: &QueryServiceError) -> Status {
    use orgtrail_sql::SqlError;
    let message = error.to_string();
    match error {
        QueryServiceError::Sql(sql) => match sql {
            SqlError::TooLong { .. } | SqlError::Invalid(_) => Status::invalid_argument(message),
            SqlError::Refused(_) => Status::permission_denied(message),
            SqlError::TooManyRows { .. } | SqlError::OutOfMemory { .. } => {
                Status::resource_exhausted(message)
            }
            SqlError::Timeout(_) => Status::deadline_exceeded(message),
            SqlError::Failed(_) => {
                tracing::error!(error = %message, "a query failed");
                Status::internal(message)
            }
        },
        QueryServiceError::TooManyRecentEvents(_) => Status::resource_exhausted(message),
        QueryServiceError::NoArchiveBucket => Status::failed_precondition(message),
        QueryServiceError::ArchiveObject(..) => {
            tracing::error!(error = %message, "an archive object cannot be read for a query");
            Status::unavailable(message)
        }
        QueryServiceError::Store(store) => store_error_status("cannot read the events", store),
    }
}

fn store_error_status(context: &str, error: &StoreError) -> Status {
    let chain = error_chain(error);
    if error.is_retryable() {
        tracing::warn!(error = %chain, "{context}");
        Status::unavailable(format!("{context}: {error}; retry"))
    } else {
        tracing::error!(error = %chain, "{context}");
        Status::internal(format!("{context}: internal error"))
    }
}
