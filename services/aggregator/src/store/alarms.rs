//! Alarms: their versioned definitions (every change audited and bumping the detection
//! generation, so ingest picks it up in the next file), the matches ingest counts per minute,
//! and the evaluator's bookkeeping — transitions written with their notifications in the
//! outbox, in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orgtrail_detection::alarm::AlarmState;
use orgtrail_detection::alarm_definition::AlarmDefinition;
use serde_json::{json, Value};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::findings::{raise_findings, NewFinding};
use super::notifications::{enqueue_notification, NewNotification};
use super::retention::append_audit;
use super::{convert_sqlx_error, PgStore, StoreError};

/// An alarm as stored: its current definition and its state.
#[derive(Clone, Debug)]
pub struct StoredAlarm {
    pub alarm_id: i64,
    pub name: String,
    pub version: i32,
    pub definition: AlarmDefinition,
    pub cis_id: Option<String>,
    pub cis_title: Option<String>,
    pub state: AlarmState,
    pub state_since: Option<DateTime<Utc>>,
    pub state_reason: String,
    pub evaluated_through: Option<DateTime<Utc>>,
    pub evaluated_xmin: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A built-in alarm to make if it was never made.
pub struct BuiltinAlarm {
    pub name: String,
    pub cis_id: String,
    pub cis_title: String,
    pub definition: AlarmDefinition,
}

/// One row of matches: an alarm's matching events of one minute, from one file.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmMatchRow {
    pub alarm_id: i64,
    pub minute_start: DateTime<Utc>,
    pub matches: i64,
    pub event_ids: Vec<Uuid>,
}

/// The matches of an alarm per minute, with the first matching events of each minute.
pub type MinuteMatches = BTreeMap<DateTime<Utc>, (i64, Vec<Uuid>)>;

/// A transition as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTransition {
    pub transition_id: i64,
    pub alarm_version: i32,
    pub period_end: DateTime<Utc>,
    pub old_state: AlarmState,
    pub new_state: AlarmState,
    pub reason: String,
    pub datapoints: Value,
    pub event_ids: Vec<Uuid>,
    pub evaluated_at: DateTime<Utc>,
    pub superseded_at: Option<DateTime<Utc>>,
    pub not_notified_reason: Option<String>,
}

/// A transition the evaluator found, to record.
#[derive(Clone, Debug)]
pub struct NewTransition {
    pub period_end: DateTime<Utc>,
    pub old_state: AlarmState,
    pub new_state: AlarmState,
    pub reason: String,
    pub datapoints: Value,
    pub event_ids: Vec<Uuid>,
    /// Its notifications; empty with a reason when none is sent.
    pub notifications: Vec<NewNotification>,
    pub not_notified_reason: Option<String>,
    /// The finding it raises (entering ALARM), written with it.
    pub finding: Option<NewFinding>,
}

/// What one evaluation of an alarm decided.
pub struct EvaluationOutcome {
    /// Live transitions at or after this period end that are not in `transitions` are
    /// superseded.
    pub recomputed_from: DateTime<Utc>,
    pub transitions: Vec<NewTransition>,
    pub evaluated_through: DateTime<Utc>,
    pub evaluated_xmin: i64,
}

const ALARM_COLUMNS: &str = "a.alarm_id, a.name, v.version, v.definition, a.cis_id, a.cis_title, \
     a.state, a.state_since, a.state_reason, a.evaluated_through, a.evaluated_xmin, \
     a.created_at, v.created_at AS updated_at, v.created_by AS updated_by";

#[derive(sqlx::FromRow)]
struct PgAlarmRow {
    alarm_id: i64,
    name: String,
    version: i32,
    definition: Value,
    cis_id: Option<String>,
    cis_title: Option<String>,
    state: String,
    state_since: Option<DateTime<Utc>>,
    state_reason: String,
    evaluated_through: Option<DateTime<Utc>>,
    evaluated_xmin: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

impl TryFrom<PgAlarmRow> for StoredAlarm {
    type Error = StoreError;

    fn try_from(row: PgAlarmRow) -> Result<StoredAlarm, StoreError> {
        Ok(StoredAlarm {
            definition: serde_json::from_value(row.definition).map_err(|error| {
                StoreError::CorruptRow(format!("alarm {} definition: {error}", row.name))
            })?,
            state: parse_state(&row.state)?,
            alarm_id: row.alarm_id,
            name: row.name,
            version: row.version,
            cis_id: row.cis_id,
            cis_title: row.cis_title,
            state_since: row.state_since,
            state_reason: row.state_reason,
            evaluated_through: row.evaluated_through,
            evaluated_xmin: row.evaluated_xmin,
            created_at: row.created_at,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        })
    }
}

fn parse_state(text: &str) -> Result<AlarmState, StoreError> {
    text.parse()
        .map_err(|_| StoreError::CorruptRow(format!("alarm state {text:?}")))
}

fn alarm_json(alarm: &StoredAlarm) -> Value {
    json!({
        "name": alarm.name,
        "version": alarm.version,
        "cisId": alarm.cis_id,
        "definition": alarm.definition,
    })
}

fn definition_json(definition: &AlarmDefinition) -> Result<Value, StoreError> {
    serde_json::to_value(definition)
        .map_err(|error| StoreError::CorruptRow(format!("alarm definition: {error}")))
}

/// Moves the detection generation on: ingest reloads its filters from the next file on.
pub(super) async fn bump_generation(connection: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE detection_generation SET generation = generation + 1")
        .execute(connection)
        .await
        .map_err(convert_sqlx_error)?;
    Ok(())
}

/// The detection generation, read in a file's transaction.
pub async fn detection_generation(connection: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT generation FROM detection_generation")
        .fetch_one(connection)
        .await
        .map_err(convert_sqlx_error)
}

/// The live, enabled alarms' ids and definitions, read in a file's transaction.
pub async fn enabled_alarm_definitions(
    connection: &mut PgConnection,
) -> Result<Vec<(i64, String, AlarmDefinition)>, StoreError> {
    let rows: Vec<(i64, String, Value)> = sqlx::query_as(
        "SELECT a.alarm_id, a.name, v.definition FROM alarms a
         JOIN alarm_versions v ON v.alarm_id = a.alarm_id AND v.version = a.current_version
         WHERE a.deleted_at IS NULL AND (v.definition ->> 'enabled')::boolean",
    )
    .fetch_all(connection)
    .await
    .map_err(convert_sqlx_error)?;
    rows.into_iter()
        .map(|(alarm_id, name, definition)| {
            let definition: AlarmDefinition =
                serde_json::from_value(definition).map_err(|error| {
                    StoreError::CorruptRow(format!("alarm {name} definition: {error}"))
                })?;
            Ok((alarm_id, name, definition))
        })
        .collect()
}

/// Writes a file's matches, in its transaction.
pub async fn insert_alarm_matches(
    connection: &mut PgConnection,
    rows: &[AlarmMatchRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let alarm_ids: Vec<i64> = rows.iter().map(|row| row.alarm_id).collect();
    let minutes: Vec<DateTime<Utc>> = rows.iter().map(|row| row.minute_start).collect();
    let matches: Vec<i64> = rows.iter().map(|row| row.matches).collect();
    // UNNEST cannot take arrays of arrays of different lengths: each row's ids travel as an
    // array literal and are cast back.
    let event_ids: Vec<String> = rows
        .iter()
        .map(|row| {
            let ids: Vec<String> = row.event_ids.iter().map(Uuid::to_string).collect();
            format!("{{{}}}", ids.join(","))
        })
        .collect();
    sqlx::query(
        "INSERT INTO alarm_matches (alarm_id, minute_start, matches, event_ids)
         SELECT alarm_id, minute_start, matches, event_ids::uuid[]
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::bigint[], $4::text[])
              AS input (alarm_id, minute_start, matches, event_ids)",
    )
    .bind(alarm_ids)
    .bind(minutes)
    .bind(matches)
    .bind(event_ids)
    .execute(connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

async fn insert_version(
    connection: &mut PgConnection,
    alarm_id: i64,
    version: i32,
    definition: &AlarmDefinition,
    actor: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alarm_versions (alarm_id, version, definition, created_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(alarm_id)
    .bind(version)
    .bind(definition_json(definition)?)
    .bind(actor)
    .execute(connection)
    .await
    .map_err(convert_sqlx_error)?;
    Ok(())
}

async fn alarm_by_id(
    connection: &mut PgConnection,
    alarm_id: i64,
    version: Option<i32>,
) -> Result<StoredAlarm, StoreError> {
    let row: PgAlarmRow = sqlx::query_as(&format!(
        "SELECT {ALARM_COLUMNS} FROM alarms a
         JOIN alarm_versions v ON v.alarm_id = a.alarm_id AND v.version = COALESCE($2, a.current_version)
         WHERE a.alarm_id = $1"
    ))
    .bind(alarm_id)
    .bind(version)
    .fetch_optional(connection)
    .await
    .map_err(convert_sqlx_error)?
    .ok_or_else(|| StoreError::NotFound(format!("alarm {alarm_id} version {version:?}")))?;
    StoredAlarm::try_from(row)
}

impl PgStore {
    pub async fn create_alarm(
        &self,
        actor: &str,
        name: &str,
        definition: &AlarmDefinition,
        created_at: DateTime<Utc>,
    ) -> Result<StoredAlarm, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let alarm_id: i64 = sqlx::query_scalar(
            "INSERT INTO alarms (name, created_at, created_by, current_version) VALUES ($1, $2, $3, 1) RETURNING alarm_id",
        )
        .bind(name)
        .bind(created_at)
        .bind(actor)
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| match convert_sqlx_error(error) {
            StoreError::UniqueViolation(_) => StoreError::AlreadyExists(format!("alarm {name}")),
            other => other,
        })?;
        let created = finish_create(&mut transaction, alarm_id, definition, actor).await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(created)
    }

    /// Makes each built-in alarm that was never made (a built-in alarm an operator retuned or
    /// disabled is left as it is). Several replicas starting at once make each one once.
    /// Returns the names made.
    pub async fn ensure_builtin_alarms(
        &self,
        actor: &str,
        builtins: &[BuiltinAlarm],
        created_at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut made = Vec::new();
        for builtin in builtins {
            let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
            let alarm_id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO alarms (name, cis_id, cis_title, created_at, created_by, current_version)
                 VALUES ($1, $2, $3, $4, $5, 1)
                 ON CONFLICT (cis_id) DO NOTHING RETURNING alarm_id",
            )
            .bind(&builtin.name)
            .bind(&builtin.cis_id)
            .bind(&builtin.cis_title)
            .bind(created_at)
            .bind(actor)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
            if let Some(alarm_id) = alarm_id {
                finish_create(&mut transaction, alarm_id, &builtin.definition, actor).await?;
                made.push(builtin.name.clone());
            }
            transaction.commit().await.map_err(convert_sqlx_error)?;
        }
        Ok(made)
    }

    /// Writes a new version. With `expected_version`, refuses when the alarm moved on.
    pub async fn update_alarm(
        &self,
        actor: &str,
        name: &str,
        expected_version: Option<i32>,
        definition: &AlarmDefinition,
    ) -> Result<StoredAlarm, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let (alarm_id, current): (i64, i32) = sqlx::query_as(
            "SELECT alarm_id, current_version FROM alarms WHERE name = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("alarm {name}")))?;
        if let Some(expected) = expected_version {
            if expected != current {
                return Err(StoreError::VersionConflict(format!(
                    "alarm {name} is at version {current}, not {expected}"
                )));
            }
        }
        let before = alarm_by_id(&mut transaction, alarm_id, None).await?;
        insert_version(&mut transaction, alarm_id, current + 1, definition, actor).await?;
        sqlx::query("UPDATE alarms SET current_version = $2 WHERE alarm_id = $1")
            .bind(alarm_id)
            .bind(current + 1)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        bump_generation(&mut transaction).await?;
        let after = alarm_by_id(&mut transaction, alarm_id, None).await?;
        append_audit(
            &mut transaction,
            actor,
            "alarm.update",
            name,
            Some(&alarm_json(&before)),
            Some(&alarm_json(&after)),
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(after)
    }

    /// Deletes an alarm that is not built in (its history stays).
    pub async fn delete_alarm(&self, actor: &str, name: &str) -> Result<StoredAlarm, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let (alarm_id, cis_id): (i64, Option<String>) = sqlx::query_as(
            "SELECT alarm_id, cis_id FROM alarms WHERE name = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("alarm {name}")))?;
        if let Some(cis_id) = cis_id {
            return Err(StoreError::VersionConflict(format!(
                "alarm {name} is the built-in CIS {cis_id} alarm: disable it (orgtrail alarms update {name} --disable) rather than delete it"
            )));
        }
        sqlx::query("UPDATE alarms SET deleted_at = now() WHERE alarm_id = $1")
            .bind(alarm_id)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        bump_generation(&mut transaction).await?;
        let deleted = alarm_by_id(&mut transaction, alarm_id, None).await?;
        append_audit(
            &mut transaction,
            actor,
            "alarm.delete",
            name,
            Some(&alarm_json(&deleted)),
            None,
            None,
        )
        .await?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(deleted)
    }

    /// The live alarm named `name`, at its current version or at `version`.
    pub async fn get_alarm(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<StoredAlarm, StoreError> {
        let mut connection = self.pool().acquire().await.map_err(convert_sqlx_error)?;
        let alarm_id: i64 = sqlx::query_scalar(
            "SELECT alarm_id FROM alarms WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(name)
        .fetch_optional(&mut *connection)
        .await
        .map_err(convert_sqlx_error)?
        .ok_or_else(|| StoreError::NotFound(format!("alarm {name}")))?;
        alarm_by_id(&mut connection, alarm_id, version)
            .await
            .map_err(|error| match (error, version) {
                (StoreError::NotFound(_), Some(version)) => {
                    StoreError::NotFound(format!("version {version} of alarm {name}"))
                }
                (error, _) => error,
            })
    }

    /// The live alarms, by name.
    pub async fn list_alarms(&self) -> Result<Vec<StoredAlarm>, StoreError> {
        let rows: Vec<PgAlarmRow> = sqlx::query_as(&format!(
            "SELECT {ALARM_COLUMNS} FROM alarms a
             JOIN alarm_versions v ON v.alarm_id = a.alarm_id AND v.version = a.current_version
             WHERE a.deleted_at IS NULL ORDER BY a.name"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        rows.into_iter().map(StoredAlarm::try_from).collect()
    }

    /// An alarm's transitions, newest first — by the period end where the state changed, then
    /// latest recorded first (a live transition before the one it superseded) — after
    /// transition `before_id` in that order. Not by id alone: late events record transitions
    /// of old periods after those of newer ones.
    pub async fn alarm_history(
        &self,
        alarm_id: i64,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredTransition>, StoreError> {
        let rows: Vec<PgTransitionRow> = sqlx::query_as(&format!(
            "SELECT {TRANSITION_COLUMNS} FROM alarm_transitions
             WHERE alarm_id = $1
               AND ($2::bigint IS NULL OR (period_end, transition_id) <
                    (SELECT period_end, transition_id FROM alarm_transitions WHERE transition_id = $2))
             ORDER BY period_end DESC, transition_id DESC LIMIT $3"
        ))
        .bind(alarm_id)
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        rows.into_iter().map(StoredTransition::try_from).collect()
    }

    /// The xmin of a snapshot taken now: every transaction with a lower id has ended.
    pub async fn snapshot_xmin(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(self.pool())
            .await
            .map_err(convert_sqlx_error)
    }

    /// The earliest minute with matches written by transactions from `from_xid` on (all, with
    /// `None`): where late or new matches begin.
    pub async fn earliest_changed_minute(
        &self,
        alarm_id: i64,
        from_xid: Option<i64>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        sqlx::query_scalar(
            "SELECT min(minute_start) FROM alarm_matches
             WHERE alarm_id = $1 AND ($2::bigint IS NULL OR xid >= $2)",
        )
        .bind(alarm_id)
        .bind(from_xid)
        .fetch_one(self.pool())
        .await
        .map_err(convert_sqlx_error)
    }

    /// An alarm's matches per minute within `[from, until)`.
    pub async fn alarm_minute_matches(
        &self,
        alarm_id: i64,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<MinuteMatches, StoreError> {
        // The first events of a minute are its smallest ids: the same whatever the order the
        // files came in, so a replay picks the same events as live ingest.
        let rows: Vec<(DateTime<Utc>, i64, Vec<Uuid>)> = sqlx::query_as(
            "SELECT m.minute_start, m.total, ids.event_ids
             FROM (SELECT minute_start, sum(matches)::bigint AS total FROM alarm_matches
                   WHERE alarm_id = $1 AND minute_start >= $2 AND minute_start < $3
                   GROUP BY minute_start) AS m
             CROSS JOIN LATERAL (
                 SELECT COALESCE((array_agg(id ORDER BY id))[1:5], '{}') AS event_ids
                 FROM alarm_matches AS a, unnest(a.event_ids) AS id
                 WHERE a.alarm_id = $1 AND a.minute_start = m.minute_start) AS ids",
        )
        .bind(alarm_id)
        .bind(from)
        .bind(until)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(rows
            .into_iter()
            .map(|(minute, matches, ids)| (minute, (matches, ids)))
            .collect())
    }

    /// The state the alarm was in during the period ending at `period_end`'s predecessor:
    /// the newest live transition at or before `before`, else INSUFFICIENT_DATA.
    pub async fn alarm_state_before(
        &self,
        alarm_id: i64,
        before: DateTime<Utc>,
    ) -> Result<AlarmState, StoreError> {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT new_state FROM alarm_transitions
             WHERE alarm_id = $1 AND superseded_at IS NULL AND period_end <= $2
             ORDER BY period_end DESC, transition_id DESC LIMIT 1",
        )
        .bind(alarm_id)
        .bind(before)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        state
            .as_deref()
            .map(parse_state)
            .transpose()
            .map(|state| state.unwrap_or(AlarmState::InsufficientData))
    }

    /// Records an evaluation: supersedes the live transitions from `recomputed_from` on that it
    /// did not find again as they are (reason, datapoints and events included), writes the new
    /// ones with their notifications (one per period, state and destination, however often a
    /// state change is restated), and moves the alarm's state and bookkeeping — all in one
    /// transaction, under the alarm's row lock.
    pub async fn record_evaluation(
        &self,
        alarm_id: i64,
        alarm_version: i32,
        outcome: EvaluationOutcome,
    ) -> Result<Vec<i64>, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let live: Option<bool> = sqlx::query_scalar(
            "SELECT deleted_at IS NULL FROM alarms WHERE alarm_id = $1 FOR UPDATE",
        )
        .bind(alarm_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        if live != Some(true) {
            return Ok(Vec::new());
        }
        let existing: Vec<PgTransitionRow> = sqlx::query_as(&format!(
            "SELECT {TRANSITION_COLUMNS} FROM alarm_transitions
             WHERE alarm_id = $1 AND superseded_at IS NULL AND period_end >= $2"
        ))
        .bind(alarm_id)
        .bind(outcome.recomputed_from)
        .fetch_all(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let existing: Vec<StoredTransition> = existing
            .into_iter()
            .map(StoredTransition::try_from)
            .collect::<Result<_, _>>()?;
        // A live transition stays only when it is found again as it is. One found again with
        // another reason, other datapoints or other events (late events raised a breaching
        // period's count) is superseded by the new one, so the history says what a backfill
        // of the same events says; the new one's notifications are deduplicated on the period
        // and state below, so nobody is told twice.
        let same = |stored: &StoredTransition, new: &NewTransition| {
            same_state_change(stored, new)
                && stored.reason == new.reason
                && stored.event_ids == new.event_ids
                && same_json(&stored.datapoints, &new.datapoints)
        };
        let superseded: Vec<i64> = existing
            .iter()
            .filter(|stored| !outcome.transitions.iter().any(|new| same(stored, new)))
            .map(|stored| stored.transition_id)
            .collect();
        if !superseded.is_empty() {
            sqlx::query(
                "UPDATE alarm_transitions SET superseded_at = now() WHERE transition_id = ANY($1)",
            )
            .bind(&superseded)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        }
        let mut written = Vec::new();
        for transition in outcome
            .transitions
            .iter()
            .filter(|new| !existing.iter().any(|stored| same(stored, new)))
        {
            // Restating a state change that was notified: its notification went, and the
            // dedupe key keeps it from going again, so the new one does not say it was not sent
            // (e.g. because the late events came after `notify_within_hours`).
            let restates_a_notified_one = existing.iter().any(|stored| {
                same_state_change(stored, transition) && stored.not_notified_reason.is_none()
            });
            let not_notified_reason = if restates_a_notified_one {
                None
            } else {
                transition.not_notified_reason.clone()
            };
            let transition_id: i64 = sqlx::query_scalar(
                "INSERT INTO alarm_transitions (alarm_id, alarm_version, period_end, old_state, new_state,
                     reason, datapoints, event_ids, not_notified_reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING transition_id",
            )
            .bind(alarm_id)
            .bind(alarm_version)
            .bind(transition.period_end)
            .bind(transition.old_state.as_str())
            .bind(transition.new_state.as_str())
            .bind(&transition.reason)
            .bind(&transition.datapoints)
            .bind(&transition.event_ids)
            .bind(&not_notified_reason)
            .fetch_one(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
            for notification in &transition.notifications {
                let mut notification = notification.clone();
                notification.dedupe_key = format!(
                    "alarm-transition:{alarm_id}:{}:{}:{}",
                    transition.period_end.timestamp(),
                    transition.new_state.as_str(),
                    notification.destination_id
                );
                if let Some(body) = notification.body.as_object_mut() {
                    body.insert("transitionId".into(), json!(transition_id));
                }
                enqueue_notification(&mut transaction, &notification).await?;
            }
            if let Some(finding) = &transition.finding {
                // The alarm's own destinations were notified above: its finding joins the
                // queue without a second notification.
                raise_findings(
                    &mut transaction,
                    std::slice::from_ref(finding),
                    DateTime::<Utc>::MAX_UTC,
                )
                .await?;
            }
            written.push(transition_id);
        }
        // The state is the newest live transition's.
        let newest: Option<(String, DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT new_state, period_end, reason FROM alarm_transitions
             WHERE alarm_id = $1 AND superseded_at IS NULL
             ORDER BY period_end DESC, transition_id DESC LIMIT 1",
        )
        .bind(alarm_id)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        let (state, since, reason) = match newest {
            Some((state, since, reason)) => (state, Some(since), reason),
            None => (
                AlarmState::InsufficientData.as_str().to_string(),
                None,
                String::new(),
            ),
        };
        sqlx::query(
            "UPDATE alarms SET state = $2, state_since = $3, state_reason = $4,
                 evaluated_through = $5, evaluated_xmin = $6
             WHERE alarm_id = $1",
        )
        .bind(alarm_id)
        .bind(state)
        .bind(since)
        .bind(reason)
        .bind(outcome.evaluated_through)
        .bind(outcome.evaluated_xmin)
        .execute(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(written)
    }
}

/// The same state change: the period where it happened and the states before and after.
fn same_state_change(stored: &StoredTransition, new: &NewTransition) -> bool {
    stored.period_end == new.period_end
        && stored.old_state == new.old_state
        && stored.new_state == new.new_state
}

/// JSON equality with numbers compared by value: jsonb gives a number back in its own
/// spelling (serde_json writes `1e16`, jsonb returns `10000000000000000`, which serde_json
/// reads as an integer), and a transition must not look changed for that.
fn same_json(stored: &Value, new: &Value) -> bool {
    match (stored, new) {
        (Value::Number(stored), Value::Number(new)) => stored.as_f64() == new.as_f64(),
        (Value::Array(stored), Value::Array(new)) => {
            stored.len() == new.len()
                && stored
                    .iter()
                    .zip(new)
                    .all(|(stored, new)| same_json(stored, new))
        }
        (Value::Object(stored), Value::Object(new)) => {
            stored.len() == new.len()
                && stored
                    .iter()
                    .all(|(key, stored)| new.get(key).is_some_and(|new| same_json(stored, new)))
        }
        (stored, new) => stored == new,
    }
}

async fn finish_create(
    transaction: &mut Transaction<'static, Postgres>,
    alarm_id: i64,
    definition: &AlarmDefinition,
    actor: &str,
) -> Result<StoredAlarm, StoreError> {
    insert_version(transaction, alarm_id, 1, definition, actor).await?;
    bump_generation(transaction).await?;
    let created = alarm_by_id(transaction, alarm_id, None).await?;
    append_audit(
        transaction,
        actor,
        "alarm.create",
        &created.name,
        None,
        Some(&alarm_json(&created)),
        None,
    )
    .await?;
    Ok(created)
}

const TRANSITION_COLUMNS: &str = "transition_id, alarm_version, period_end, old_state, new_state, \
     reason, datapoints, event_ids, evaluated_at, superseded_at, not_notified_reason";

#[derive(sqlx::FromRow)]
struct PgTransitionRow {
    transition_id: i64,
    alarm_version: i32,
    period_end: DateTime<Utc>,
    old_state: String,
    new_state: String,
    reason: String,
    datapoints: Value,
    event_ids: Vec<Uuid>,
    evaluated_at: DateTime<Utc>,
    superseded_at: Option<DateTime<Utc>>,
    not_notified_reason: Option<String>,
}

impl TryFrom<PgTransitionRow> for StoredTransition {
    type Error = StoreError;

    fn try_from(row: PgTransitionRow) -> Result<StoredTransition, StoreError> {
        Ok(StoredTransition {
            transition_id: row.transition_id,
            alarm_version: row.alarm_version,
            period_end: row.period_end,
            old_state: parse_state(&row.old_state)?,
            new_state: parse_state(&row.new_state)?,
            reason: row.reason,
            datapoints: row.datapoints,
            event_ids: row.event_ids,
            evaluated_at: row.evaluated_at,
            superseded_at: row.superseded_at,
            not_notified_reason: row.not_notified_reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datapoints_read_back_from_jsonb_equal_those_written() {
        // As the evaluator writes them, and as PostgreSQL's jsonb gives them back.
        let written = json!([
            {"periodStart": "2026-11-29T00:00:00Z", "value": 1e16, "breaching": true},
            {"periodStart": "2026-11-29T00:05:00Z", "value": 3.0, "breaching": true},
            {"periodStart": "2026-11-29T00:10:00Z", "value": null, "breaching": false},
        ]);
        let read_back: Value = serde_json::from_str(
            r#"[{"value": 10000000000000000, "breaching": true, "periodStart": "2026-11-29T00:00:00Z"},
                {"value": 3.0, "breaching": true, "periodStart": "2026-11-29T00:05:00Z"},
                {"value": null, "breaching": false, "periodStart": "2026-11-29T00:10:00Z"}]"#,
        )
        .unwrap();
        assert_ne!(read_back, written, "serde_json alone tells them apart");
        assert!(same_json(&read_back, &written));
        let mut raised = written.clone();
        raised[1]["value"] = json!(5.0);
        assert!(!same_json(&read_back, &raised));
        raised[1]["value"] = json!(3.0);
        raised[2]["breaching"] = json!(true);
        assert!(!same_json(&read_back, &raised));
        assert!(!same_json(&read_back, &json!([])));
    }
}
