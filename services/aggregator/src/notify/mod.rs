//! Notifications: where they go (`NotificationService`: destinations created, listed, deleted
//! and tested; their URLs and signing secrets sealed), how they leave (`delivery`: signed
//! webhooks, Slack, Amazon SNS) and the outbox's dispatcher (`dispatcher`).

pub mod delivery;
pub mod dispatcher;

use std::time::Duration;

use base64::Engine;
use orgtrail_detection::alarm_definition::is_destination_name;
use serde_json::json;

use crate::store::{
    DestinationSecrets, PgStore, StoreError, StoredDestination, StoredNotification,
};

/// How long `destinations test` waits for its message to be delivered (or given up).
pub const TEST_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum NotificationServiceError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} exists already")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for NotificationServiceError {
    fn from(error: StoreError) -> NotificationServiceError {
        match error {
            StoreError::NotFound(what) => NotificationServiceError::NotFound(what),
            StoreError::AlreadyExists(what) => NotificationServiceError::AlreadyExists(what),
            StoreError::VersionConflict(what) => NotificationServiceError::Conflict(what),
            other => NotificationServiceError::Store(other),
        }
    }
}

/// A destination as asked for.
pub struct DestinationRequest {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub every_alarm: bool,
    /// Takes findings at or above this level.
    pub finding_level: Option<String>,
}

#[derive(Clone)]
pub struct NotificationService {
    store: PgStore,
}

impl NotificationService {
    pub fn new(store: PgStore) -> NotificationService {
        NotificationService { store }
    }

    /// Stores a destination; a webhook's signing secret is made here and returned once.
    pub async fn create_destination(
        &self,
        actor: &str,
        request: DestinationRequest,
    ) -> Result<(StoredDestination, Option<String>), NotificationServiceError> {
        if !is_destination_name(&request.name) {
            return Err(NotificationServiceError::InvalidRequest(format!(
                "destination name {:?} must have 1 to 64 letters, digits, '-', '_' or '.'",
                request.name
            )));
        }
        if let Some(level) = &request.finding_level {
            if crate::store::level_rank(level).is_none() {
                return Err(NotificationServiceError::InvalidRequest(format!(
                    "finding level {level:?} is not one of {}",
                    crate::store::FINDING_LEVELS.join(", ")
                )));
            }
        }
        let target = request.target.trim().to_string();
        let (display, signing_secret) = match request.kind.as_str() {
            "webhook" | "slack" => {
                delivery::validate_target_url(&target)
                    .map_err(NotificationServiceError::InvalidRequest)?;
                let secret = (request.kind == "webhook")
                    .then(new_signing_secret)
                    .transpose()?;
                (url_display(&target), secret)
            }
            "sns" => {
                delivery::validate_topic_arn(&target)
                    .map_err(NotificationServiceError::InvalidRequest)?;
                (target.clone(), None)
            }
            other => {
                return Err(NotificationServiceError::InvalidRequest(format!(
                    "destination kind {other:?} is not webhook, slack or sns"
                )))
            }
        };
        let destination = self
            .store
            .create_destination(
                actor,
                &request.name,
                &request.kind,
                &display,
                &DestinationSecrets {
                    target,
                    signing_secret: signing_secret.clone(),
                },
                request.every_alarm,
                request.finding_level.as_deref(),
            )
            .await?;
        Ok((destination, signing_secret))
    }

    pub async fn list_destinations(
        &self,
    ) -> Result<Vec<StoredDestination>, NotificationServiceError> {
        Ok(self.store.list_destinations().await?)
    }

    pub async fn delete_destination(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<StoredDestination, NotificationServiceError> {
        Ok(self.store.delete_destination(actor, name).await?)
    }

    /// Queues a test message and waits (at most [`TEST_WAIT`]) until it is delivered or given
    /// up; answers the notification as it then is (still pending, if the wait ran out).
    pub async fn test_destination(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<StoredNotification, NotificationServiceError> {
        let notification_id = self
            .store
            .queue_test_notification(
                actor,
                name,
                json!({ "message": "orgtrail test message: this destination receives orgtrail's notifications", "requestedBy": actor }),
            )
            .await?;
        let deadline = tokio::time::Instant::now() + TEST_WAIT;
        loop {
            let notification = self.store.get_notification(notification_id).await?;
            if notification.state != "pending"
                || notification.attempts > 0
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(notification);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn list_notifications(
        &self,
        failed_only: bool,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, NotificationServiceError> {
        Ok(self
            .store
            .list_notifications(failed_only, before_id, limit)
            .await?)
    }
}

/// 32 random bytes, base64url: the HMAC-SHA256 key a webhook's receiver verifies with.
fn new_signing_secret() -> Result<String, NotificationServiceError> {
    let key = crate::crypto::random_key().map_err(|error| {
        NotificationServiceError::Store(StoreError::Encryption(error.to_string()))
    })?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    ))
}

/// A URL without its path, query and credentials: what may be shown of it.
fn url_display(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(unreadable URL)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_path_query_or_credentials() {
        assert_eq!(
            url_display("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            url_display("http://user:pw@127.0.0.1:8080/hook?token=secret"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(url_display("nonsense"), "(unreadable URL)");
    }
}
