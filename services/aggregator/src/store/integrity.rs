//! Digest validation as the collectors report it: each log file's integrity in the ledger,
//! how far each account and region was validated, problems raised as integrity findings (once
//! each), and the events a modified log file delivered moved to the quarantine — off the
//! events, the dedupe index and the rollups, their sealed records kept as they were.

use chrono::{DateTime, Duration, Utc};
use sqlx::{Postgres, QueryBuilder};

use super::findings::{raise_findings, NewFinding};
use super::rollups::{gone_columns, push_subtract_gone, remove_empty_rollups};
use super::{convert_sqlx_error, PgStore, StoreError};
use crate::crypto::SEAL_OVERHEAD;

/// The ledger's statuses a report may set.
pub const LEDGER_STATUSES: [&str; 5] = [
    "not_yet_covered",
    "verified",
    "modified",
    "unlisted",
    "unverifiable",
];

/// Where validation of an account and region stands, and the ledger's hashes asked for.
#[derive(Clone, Debug, Default)]
pub struct IntegrityState {
    /// The newest digest read, and its end time.
    pub digest: Option<(String, DateTime<Utc>)>,
    /// `(object_key, etag, content_sha256)` of the files asked for that the ledger holds
    /// with a hash (an empty etag asks for every version of the key).
    pub hashes: Vec<(String, String, Vec<u8>)>,
}

/// One log file's outcome.
#[derive(Clone, Debug)]
pub struct LogFileCheck {
    pub object_key: String,
    pub etag: String,
    pub status: String,
    pub digest_key: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ReportedProblem {
    pub kind: String,
    pub bucket: String,
    pub object_key: String,
    pub message: String,
}

/// A collector's validation of one account and region.
#[derive(Clone, Debug)]
pub struct IntegrityReport {
    pub source: String,
    pub bucket: String,
    pub account_id: String,
    pub aws_region: String,
    pub collector: String,
    pub digest: Option<(String, DateTime<Utc>)>,
    pub digests_read: u32,
    pub digests_verified: u32,
    pub log_files: Vec<LogFileCheck>,
    pub problems: Vec<ReportedProblem>,
}

/// What recording a report did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordedIntegrity {
    pub findings_raised: u64,
    pub events_quarantined: u64,
}

impl PgStore {
    pub async fn integrity_state(
        &self,
        source: &str,
        bucket: &str,
        account_id: &str,
        aws_region: &str,
        files: &[(String, String)],
    ) -> Result<IntegrityState, StoreError> {
        let digest: Option<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT digest_key, digest_end_time FROM digest_progress
             WHERE source = $1 AND account_id = $2 AND aws_region = $3 AND bucket = $4",
        )
        .bind(source)
        .bind(account_id)
        .bind(aws_region)
        .bind(bucket)
        .fetch_optional(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        let keys: Vec<&str> = files.iter().map(|(key, _)| key.as_str()).collect();
        let etags: Vec<&str> = files.iter().map(|(_, etag)| etag.as_str()).collect();
        let hashes = sqlx::query_as(
            "SELECT f.object_key, f.etag, f.content_sha256
             FROM UNNEST($2::text[], $3::text[]) AS wanted (object_key, etag)
             JOIN log_files AS f
               ON f.bucket = $1 AND f.object_key = wanted.object_key
              AND (f.etag = wanted.etag OR wanted.etag = '')
             WHERE f.content_sha256 IS NOT NULL",
        )
        .bind(bucket)
        .bind(&keys)
        .bind(&etags)
        .fetch_all(self.pool())
        .await
        .map_err(convert_sqlx_error)?;
        Ok(IntegrityState { digest, hashes })
    }

    /// Records a report in one transaction: the ledger's statuses, the quarantine of what
    /// modified files delivered (once: a file already `modified` has nothing left), the
    /// findings, and the progress (which only moves forward).
    pub async fn record_integrity(
        &self,
        report: &IntegrityReport,
        now: DateTime<Utc>,
    ) -> Result<RecordedIntegrity, StoreError> {
        let mut transaction = self.pool().begin().await.map_err(convert_sqlx_error)?;
        let mut recorded = RecordedIntegrity::default();
        let ledger: Vec<&LogFileCheck> = report
            .log_files
            .iter()
            .filter(|file| LEDGER_STATUSES.contains(&file.status.as_str()))
            .collect();
        let keys: Vec<&str> = ledger.iter().map(|file| file.object_key.as_str()).collect();
        let etags: Vec<&str> = ledger.iter().map(|file| file.etag.as_str()).collect();
        let statuses: Vec<&str> = ledger.iter().map(|file| file.status.as_str()).collect();
        let digests: Vec<Option<&str>> = ledger
            .iter()
            .map(|file| file.digest_key.as_deref())
            .collect();
        // The files newly found modified: their events leave the store below.
        let newly_modified: Vec<(i64, String)> = sqlx::query_as(
            "WITH checked AS (
                 SELECT f.log_file_id, f.integrity AS before, c.status, c.digest_key
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[])
                      AS c (object_key, etag, status, digest_key)
                 JOIN log_files AS f
                   ON f.bucket = $1 AND f.object_key = c.object_key AND f.etag = c.etag
                 FOR UPDATE OF f
             ),
             updated AS (
                 UPDATE log_files AS f
                 SET integrity = c.status, integrity_digest = c.digest_key,
                     integrity_checked_at = $6
                 FROM checked AS c
                 WHERE f.log_file_id = c.log_file_id
                   -- a modified file stays modified: its events are in the quarantine
                   AND f.integrity <> 'modified'
             )
             SELECT c.log_file_id, coalesce(c.digest_key, '') FROM checked AS c
             WHERE c.status = 'modified' AND c.before <> 'modified'",
        )
        .bind(&report.bucket)
        .bind(&keys)
        .bind(&etags)
        .bind(&statuses)
        .bind(&digests)
        .bind(now)
        .fetch_all(&mut *transaction)
        .await
        .map_err(convert_sqlx_error)?;
        for (log_file_id, digest_key) in newly_modified {
            let reason = format!(
                "log file modified: its SHA-256 is not the one digest s3://{}/{digest_key} lists",
                report.bucket
            );
            recorded.events_quarantined +=
                quarantine_file_events(&mut transaction, log_file_id, &reason).await?;
        }
        let findings: Vec<NewFinding> = report
            .problems
            .iter()
            .map(|problem| integrity_finding(report, problem, now))
            .collect();
        // Integrity problems are news whenever found: every destination taking their level
        // hears of them.
        let raised = raise_findings(&mut transaction, &findings, now - Duration::days(1)).await?;
        recorded.findings_raised = raised.raised;
        if let Some((digest_key, digest_end_time)) = &report.digest {
            sqlx::query(
                "INSERT INTO digest_progress
                     (source, bucket, account_id, aws_region, digest_key, digest_end_time,
                      digests_read, digests_verified, problems, checked_at, collector)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (source, account_id, aws_region) DO UPDATE
                 SET bucket = EXCLUDED.bucket,
                     digest_key = CASE WHEN EXCLUDED.digest_end_time >= digest_progress.digest_end_time
                                       THEN EXCLUDED.digest_key ELSE digest_progress.digest_key END,
                     digest_end_time = greatest(digest_progress.digest_end_time, EXCLUDED.digest_end_time),
                     digests_read = digest_progress.digests_read + EXCLUDED.digests_read,
                     digests_verified = digest_progress.digests_verified + EXCLUDED.digests_verified,
                     problems = digest_progress.problems + EXCLUDED.problems,
                     checked_at = EXCLUDED.checked_at,
                     collector = EXCLUDED.collector",
            )
            .bind(&report.source)
            .bind(&report.bucket)
            .bind(&report.account_id)
            .bind(&report.aws_region)
            .bind(digest_key)
            .bind(digest_end_time)
            .bind(i64::from(report.digests_read))
            .bind(i64::from(report.digests_verified))
            .bind(i64::try_from(raised.raised).unwrap_or(i64::MAX))
            .bind(now)
            .bind(&report.collector)
            .execute(&mut *transaction)
            .await
            .map_err(convert_sqlx_error)?;
        }
        transaction.commit().await.map_err(convert_sqlx_error)?;
        Ok(recorded)
    }
}

/// Moves the events `log_file_id` delivered first into the quarantine: off the events, the
/// dedupe index and the rollups, their records kept sealed as they were (a record is sealed
/// to its event id, which becomes the entry's seal id). Answers how many moved.
async fn quarantine_file_events(
    transaction: &mut sqlx::Transaction<'static, Postgres>,
    log_file_id: i64,
    reason: &str,
) -> Result<u64, StoreError> {
    // No index leads from a file to its events: one scan, for what is rare and grave.
    let span: (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT date_trunc('day', min(event_time), 'UTC'),
                date_trunc('day', max(event_time), 'UTC') + interval '1 day'
         FROM events WHERE log_file_id = $1",
    )
    .bind(log_file_id)
    .fetch_one(&mut **transaction)
    .await
    .map_err(convert_sqlx_error)?;
    let (Some(start), Some(end)) = span else {
        return Ok(0);
    };
    let mut sql = QueryBuilder::<Postgres>::new(
        "WITH gone AS (DELETE FROM events AS e WHERE e.log_file_id = ",
    );
    sql.push_bind(log_file_id)
        .push(" AND e.event_time >= ")
        .push_bind(start)
        .push(" AND e.event_time < ")
        .push_bind(end)
        .push(format!(
            " RETURNING e.event_id, e.record, e.key_id, {}), \
             ids AS (DELETE FROM event_ids AS i USING gone AS g WHERE i.event_id = g.event_id), ",
            gone_columns("e")
        ));
    push_subtract_gone(&mut sql, start, end);
    sql.push(
        ", moved AS (INSERT INTO quarantine (log_file_id, source, bucket, object_key, etag, \
         record_index, reason, content_bytes, content, seal_id, key_id) \
         SELECT f.log_file_id, f.source, f.bucket, f.object_key, f.etag, NULL, ",
    )
    .push_bind(reason.to_string())
    .push(", octet_length(g.record) - CASE WHEN g.key_id IS NULL THEN 0 ELSE ")
    .push_bind(i32::try_from(SEAL_OVERHEAD).unwrap_or(0))
    .push(
        " END, g.record, g.event_id, g.key_id FROM gone AS g JOIN log_files AS f \
         ON f.log_file_id = ",
    )
    .push_bind(log_file_id)
    .push(") SELECT count(*) FROM gone");
    let moved: i64 = sql
        .build_query_scalar()
        .fetch_one(&mut **transaction)
        .await
        .map_err(convert_sqlx_error)?;
    remove_empty_rollups(transaction, start, end).await?;
    Ok(u64::try_from(moved).unwrap_or(0))
}

/// A problem as a finding: one per kind and object, whatever how often it is found.
fn integrity_finding(
    report: &IntegrityReport,
    problem: &ReportedProblem,
    now: DateTime<Utc>,
) -> NewFinding {
    let level = match problem.kind.as_str() {
        "log_file_unlisted" | "gap" => "medium",
        _ => "high",
    };
    NewFinding {
        kind: "integrity",
        rule_id: problem.kind.clone(),
        rule_version: 1,
        title: integrity_title(&problem.kind).to_string(),
        level: level.to_string(),
        author: None,
        tags: vec!["attack.defense-evasion".into(), "attack.t1565.001".into()],
        account_id: Some(report.account_id.clone()),
        aws_region: Some(report.aws_region.clone()),
        event_time: now,
        event_ids: Vec::new(),
        summary: format!(
            "s3://{}/{}: {}",
            problem.bucket, problem.object_key, problem.message
        ),
        dedupe_key: format!(
            "integrity:{}:{}/{}",
            problem.kind, problem.bucket, problem.object_key
        ),
        suppression_id: None,
    }
}

fn integrity_title(kind: &str) -> &'static str {
    match kind {
        "log_file_modified" => "CloudTrail log file modified after delivery",
        "log_file_missing" => "CloudTrail log file deleted after delivery",
        "log_file_unlisted" => "Log file no CloudTrail digest lists",
        "digest_missing" => "CloudTrail digest file missing",
        "digest_malformed" => "CloudTrail digest file unreadable",
        "digest_bad_signature" => "CloudTrail digest signature does not verify",
        "digest_unknown_key" => "CloudTrail digest signed with an unknown key",
        "digest_moved" => "CloudTrail digest file moved",
        "chain_broken" => "CloudTrail digest chain broken",
        "gap" => "Gap in CloudTrail's hourly digests",
        _ => "CloudTrail integrity problem",
    }
}
