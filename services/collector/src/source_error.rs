//! What can go wrong reading a source, said so that an operator knows what to fix, and
//! whether trying again can help.

/// An error of one source (or one account and region of it). It never stops other sources.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot assume role {role_arn}: access denied ({detail})")]
    AssumeRoleDenied { role_arn: String, detail: String },
    #[error("cannot assume role {role_arn}: {detail}")]
    AssumeRole { role_arn: String, detail: String },
    #[error("access denied to s3://{bucket}/{prefix} ({operation}): {detail}")]
    AccessDenied {
        bucket: String,
        prefix: String,
        operation: &'static str,
        detail: String,
    },
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    #[error("the credentials for s3://{bucket} are expired or not valid: {detail}")]
    InvalidCredentials { bucket: String, detail: String },
    #[error("S3 {operation} of s3://{bucket}/{prefix} failed: {detail}")]
    S3 {
        bucket: String,
        prefix: String,
        operation: &'static str,
        detail: String,
        retryable: bool,
    },
    #[error("the aggregator's {operation} failed ({code:?}): {message}")]
    Aggregator {
        operation: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("the lease on the source was lost to {holder}")]
    LeaseLost { holder: String },
    #[error("stopped before the source was read")]
    Cancelled,
}

impl SourceError {
    /// Whether the same pass may succeed later without anyone fixing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::AssumeRoleDenied { .. }
            | SourceError::AccessDenied { .. }
            | SourceError::NoSuchBucket { .. } => false,
            SourceError::S3 { retryable, .. } => *retryable,
            SourceError::Aggregator { code, .. } => !matches!(
                code,
                tonic::Code::InvalidArgument
                    | tonic::Code::PermissionDenied
                    | tonic::Code::Unauthenticated
                    | tonic::Code::Unimplemented
            ),
            SourceError::AssumeRole { .. }
            | SourceError::InvalidCredentials { .. }
            | SourceError::LeaseLost { .. }
            | SourceError::Cancelled => true,
        }
    }

    pub fn aggregator(operation: &'static str, status: tonic::Status) -> SourceError {
        SourceError::Aggregator {
            operation,
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}
