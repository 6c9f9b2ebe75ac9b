//! Notification destinations (their URLs and signing secrets sealed like records) and the
//! outbox: notifications are written in the transaction that causes them, claimed one at a
//! time by a dispatcher with `FOR UPDATE SKIP LOCKED` (so exactly one replica delivers each),
//! retried with backoff on PostgreSQL's clock (shared by every replica), marked failed after
//! the configured attempts — never deleted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::retention::append_audit;
use super::{convert_sqlx_error, PgStore, StoreError};

/// A destination as listed: nothing secret.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDestination {
    pub destination_id: i64,
    pub name: String,
    pub kind: String,
    pub target_display: String,
    pub every_alarm: bool,
    /// Takes findings at or above this level.
    pub finding_level: Option<&'static str>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// What is sealed of a destination.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationSecrets {
    /// The URL (webhook, Slack) or the topic ARN (SNS).
    pub target: String,
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for DestinationSecrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DestinationSecrets(…)")
    }
}

/// A destination with its secrets opened, for delivery.
#[derive(Clone, Debug)]
pub struct OpenedDestination {
    pub destination: StoredDestination,
    pub secrets: DestinationSecrets,
}

/// A notification to queue.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub destination_id: i64,
    pub kind: String,
    pub subject: String,
    /// One notification per cause and destination, however often the cause is evaluated.
    pub dedupe_key: String,
    pub body: Value,
}

/// A notification as stored.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredNotification {
    pub notification_id: i64,
    pub destination_id: i64,
    pub destination: String,
    pub kind: String,
    pub subject: String,
    pub body: Value,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A notification claimed for delivery: its row stays locked until the outcome is recorded
/// (or the transaction ends with the process, and the notification is due again).
pub struct ClaimedNotification {
    transaction: Transaction<'static, Postgres>,
    pub notification: StoredNotification,
    pub destination: OpenedDestination,
}

/// What became of a delivery attempt.
pub enum DeliveryOutcome {
    Delivered,
    /// Try again after `retry_in` (or give up, when the attempts are spent).
    Failed {
        error: String,
        retry_in: std::time::Duration,
    },
}

const NOTIFICATION_COLUMNS: &str = "n.notification_id, n.destination_id, d.name AS destination, \
     n.kind, n.subject, n.body, n.state, n.attempts, n.last_error, n.created_at, \
     n.next_attempt_at, n.delivered_at";

#[derive(sqlx::FromRow)]
struct PgDestinationRow {
    destination_id: i64,
    name: String,
    kind: String,
    target_display: String,
    every_alarm: bool,
    finding_level_rank: Option<i16>,
    created_at: DateTime<Utc>,
    created_by: String,
    seal_id: Uuid,
    key_id: Option<i32>,
    sealed_config: Vec<u8>,
}

impl From<&PgDestinationRow> for StoredDestination {
    fn from(row: &PgDestinationRow) -> StoredDestination {
        StoredDestination {
            destination_id: row.destination_id,
            name: row.name.clone(),
            kind: row.kind.clone(),
            target_display: row.target_display.clone(),
            every_alarm: row.every_alarm,
            finding_level: row
                .finding_level_rank
                .and_then(|rank| usize::try_from(rank).ok())
                .and_then(|rank| super::findings::FINDING_LEVELS.get(rank).copied()),
            created_at: row.created_at,
            created_by: row.created_by.clone(),
        }
    }
}

const DESTINATION_COLUMNS: &str = "destination_id, name, kind, target_display, every_alarm, \
     finding_level_rank, created_at, created_by, seal_id, key_id, sealed_config";

/// Queues a notification in the caller's transaction; a second one with the same dedupe key is
/// not queued.
pub async fn enqueue_notification(
    connection: &mut PgConnection,
    notification: &NewNotification,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (destination_id, kind, subject, dedupe_key, body)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(notification.destination_id)
    .bind(&notification.kind)
    .bind(&notification.subject)
    .bind(&notification.dedupe_key)
    .bind(&notification.body)
    .execute(connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

fn destination_json(destination: &StoredDestination) -> Value {
    json!({
        "name": destination.name,
        "kind": destination.kind,
        "target": destination.target_display,
        "everyAlarm": destination.every_alarm,
        "findingLevel": destination.finding_level,
    })
}

impl PgStore {
    /// Stores a destination, its target and secret sealed.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_destination(
        &self,
        actor: &str,
        name: &str,
        kind: &str,
        target_display: &str,
        secrets: &DestinationSecrets,
        every_alarm: bool,
        finding_level: Option<&str>,
    ) -> Result<StoredDestination, StoreError> {
        let finding_level_rank = finding_level.and_then(super::findings::level_rank);
        let seal_id = Uuid::new_v4();
        let plain = serde_json::to_vec(secrets)
            .map_err(|error| StoreError::Encryption(error.to_string()))?;
        let (key_id, sealed) = self.seal_secret(seal_id, &plain)?;
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let row: PgDestinationRow = sqlx::query_as(&format!(
            "INSERT INTO destinations (name, kind, target_display, seal_id, key_id, sealed_config, every_alarm, created_by, finding_level_rank)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {DESTINATION_COLUMNS}"
        ))
        .bind(name)
        .bind(kind)
        .bind(target_display)
        .bind(seal_id)
        .bind(key_id)
        .bind(&sealed)
        .bind(every_alarm)
        .bind(actor)
        .bind(finding_level_rank)
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| match convert_sqlx_error(error) {
            StoreError::UniqueViolation(_) => {
                StoreError::AlreadyExists(format!("destination {name}"))
            }
            other => other,
        })?;
        let created = StoredDestination::from(&row);
        append_audit(
            &mut transaction,
            actor,
            "destination.create",
            name,
            None,
            Some(&destination_json(&created)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(created)
    }

    /// Deletes a destination no live alarm names.
    pub async fn delete_destination(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<StoredDestination, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let naming: Vec<String> = sqlx::query_scalar(
            "SELECT a.name FROM alarms a
             JOIN alarm_versions v ON v.alarm_id = a.alarm_id AND v.version = a.current_version
             WHERE a.deleted_at IS NULL AND v.definition -> 'destinations' ? $1
             ORDER BY a.name",
        )
        .bind(name)
        .fetch_all(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        if !naming.is_empty() {
            return Err(StoreError::VersionConflict(format!(
                "destination {name} is named by alarms {}: take it out of them first",
                naming.join(", ")
            )));
        }
        let row: PgDestinationRow = sqlx::query_as(&format!(
            "UPDATE destinations SET deleted_at = now() WHERE name = $1 AND deleted_at IS NULL
             RETURNING {DESTINATION_COLUMNS}"
        ))
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("destination {name}")))?;
        let deleted = StoredDestination::from(&row);
        append_audit(
            &mut transaction,
            actor,
            "destination.delete",
            name,
            Some(&destination_json(&deleted)),
            None,
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(deleted)
    }

    /// The live destinations, by name.
    pub async fn list_destinations(&self) -> Result<Vec<StoredDestination>, StoreError> {
        let rows: Vec<PgDestinationRow> = sqlx::query_as(&format!(
            "SELECT {DESTINATION_COLUMNS} FROM destinations WHERE deleted_at IS NULL ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows.iter().map(StoredDestination::from).collect())
    }

    /// Queues a test message to a destination; returns its notification id.
    pub async fn queue_test_notification(
        &self,
        actor: &str,
        name: &str,
        body: Value,
    ) -> Result<i64, StoreError> {
        let destination = self
            .list_destinations()
            .await?
            .into_iter()
            .find(|destination| destination.name == name)
            .ok_or_else(|| StoreError::NotFound(format!("destination {name}")))?;
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let notification_id: i64 = sqlx::query_scalar(
            "INSERT INTO notifications (destination_id, kind, subject, dedupe_key, body)
             VALUES ($1, 'destination.test', $2, 'destination-test:' || gen_random_uuid(), $3)
             RETURNING notification_id",
        )
        .bind(destination.destination_id)
        .bind(name)
        .bind(&body)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        append_audit(
            &mut transaction,
            actor,
            "destination.test",
            name,
            None,
            None,
            Some(&json!({ "notificationId": notification_id })),
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(notification_id)
    }

    /// Notifications newest first, before `before_id`; only failed ones when asked.
    pub async fn list_notifications(
        &self,
        failed_only: bool,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n
             JOIN destinations d ON d.destination_id = n.destination_id
             WHERE (NOT $1 OR n.state = 'failed') AND ($2::bigint IS NULL OR n.notification_id < $2)
             ORDER BY n.notification_id DESC LIMIT $3"
        ))
        .bind(failed_only)
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    pub async fn get_notification(
        &self,
        notification_id: i64,
    ) -> Result<StoredNotification, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n
             JOIN destinations d ON d.destination_id = n.destination_id
             WHERE n.notification_id = $1"
        ))
        .bind(notification_id)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("notification {notification_id}")))
    }

    /// Pending notifications, and failed ones (a gauge of the outbox).
    pub async fn outbox_depth(&self) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed')
             FROM notifications WHERE state <> 'delivered'",
        )
        .fetch_one(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// Claims the most overdue pending notification no other replica holds, with its
    /// destination opened. `None` when nothing is due.
    pub async fn claim_due_notification(&self) -> Result<Option<ClaimedNotification>, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let notification_id: Option<i64> = sqlx::query_scalar(
            "SELECT notification_id FROM notifications
             WHERE state = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let Some(notification_id) = notification_id else {
            return Ok(None);
        };
        let notification: StoredNotification = sqlx::query_as(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n
             JOIN destinations d ON d.destination_id = n.destination_id
             WHERE n.notification_id = $1"
        ))
        .bind(notification_id)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let row: PgDestinationRow = sqlx::query_as(&format!(
            "SELECT {DESTINATION_COLUMNS} FROM destinations WHERE destination_id = $1"
        ))
        .bind(notification.destination_id)
        .fetch_one(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let destination = self.open_destination(&row)?;
        Ok(Some(ClaimedNotification {
            transaction,
            notification,
            destination,
        }))
    }

    fn open_destination(&self, row: &PgDestinationRow) -> Result<OpenedDestination, StoreError> {
        let plain = self.open_secret(
            &format!("destination {}", row.name),
            row.key_id,
            row.seal_id,
            &row.sealed_config,
        )?;
        let secrets = serde_json::from_slice(&plain).map_err(|error| {
            StoreError::CorruptRow(format!("destination {}: {error}", row.name))
        })?;
        Ok(OpenedDestination {
            destination: StoredDestination::from(row),
            secrets,
        })
    }

    /// The destinations an alarm's transitions go to: those it names and those that take
    /// every alarm (names it gives that do not exist are skipped: they are checked when the
    /// alarm is written).
    pub async fn alarm_destinations(&self, names: &[String]) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT destination_id FROM destinations
             WHERE deleted_at IS NULL AND (every_alarm OR name = ANY($1)) ORDER BY destination_id",
        )
        .bind(names)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// The live destinations among `names` (to check an alarm's list when it is written).
    pub async fn existing_destinations(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT name FROM destinations WHERE deleted_at IS NULL AND name = ANY($1)",
        )
        .bind(names)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }
}

impl ClaimedNotification {
    /// Records the attempt and releases the row: delivered, due again after the backoff, or
    /// failed for good once `max_attempts` are spent. Returns the new state.
    pub async fn record(
        mut self,
        outcome: DeliveryOutcome,
        max_attempts: u32,
    ) -> Result<&'static str, StoreError> {
        let attempts = self.notification.attempts.saturating_add(1);
        let state = match &outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Failed { .. }
                if u32::try_from(attempts).unwrap_or(u32::MAX) >= max_attempts =>
            {
                "failed"
            }
            DeliveryOutcome::Failed { .. } => "pending",
        };
        let (error, retry_seconds) = match &outcome {
            DeliveryOutcome::Delivered => (None, 0.0),
            DeliveryOutcome::Failed { error, retry_in } => {
                (Some(error.clone()), retry_in.as_secs_f64())
            }
        };
        sqlx::query(
            "UPDATE notifications SET state = $2, attempts = $3, last_error = COALESCE($4, last_error),
                 next_attempt_at = now() + make_interval(secs => $5),
                 delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
             WHERE notification_id = $1",
        )
        .bind(self.notification.notification_id)
        .bind(state)
        .bind(attempts)
        .bind(error)
        .bind(retry_seconds)
        .execute(&mut *self.transaction)
        .await
        .map_err(convert_sqlx_error)?;
        self.transaction
            .commit()
            .await
            .map_err(convert_sqlx_error)?;
        Ok(state)
    }
}
