//! The consolidated archive against moto's S3 and KMS and a running aggregator: every stored
//! event ends up in exactly one Parquet object, encrypted with the archive's KMS key, read
//! back by pyarrow and DuckDB (readers no one here wrote) byte for byte; an aggregator that
//! crashes between an upload and its record loses and duplicates nothing once restarted; late
//! events for an archived hour go into another object, the first one untouched; the archive's
//! digests, signed by a KMS key, make `orgtrail verify --archive` pass, and fail naming the
//! object once one is changed and another removed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use orgtrail_tests::cli_process::{moto_aws_environment, run_orgtrail_with};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::organization::s3_client;
use orgtrail_tests::samples::sample_files;
use orgtrail_tests::sealing::{kms_client, KmsKey};
use orgtrail_tests::stack::StackOptions;
use orgtrail_tests::{ingest_sample_files, TestStack, WAIT};
use serde::Deserialize;

const BUCKET: &str = "orgtrail-archive";
const PREFIX: &str = "consolidated";
const PYTHON_VARIABLE: &str = "ORGTRAIL_TEST_PYTHON";
const CRASH_VARIABLE: &str = "ORGTRAIL_TEST_CRASH_AFTER_ARCHIVE_UPLOAD";

/// Seconds between the archive's digests in the test.
const DIGEST_INTERVAL: &str = "2";

/// The aggregator's environment for an archive in moto: every second, hours settled at once,
/// a digest every [`DIGEST_INTERVAL`] seconds signed by `signing_key` in KMS.
fn archive_environment(
    moto: &MotoServer,
    kms_key: &str,
    signing_key: &str,
) -> Vec<(String, String)> {
    [
        ("ORGTRAIL_ARCHIVE__ACCOUNT_ID", "123456789012"),
        ("ORGTRAIL_ARCHIVE__DIGEST_INTERVAL_SECONDS", DIGEST_INTERVAL),
        ("ORGTRAIL_ARCHIVE__SIGNING_KMS_KEY_ID", signing_key),
        ("ORGTRAIL_ARCHIVE__SIGNING_KMS_ENDPOINT", &moto.endpoint()),
        ("ORGTRAIL_ARCHIVE__BUCKET", BUCKET),
        ("ORGTRAIL_ARCHIVE__PREFIX", PREFIX),
        ("ORGTRAIL_ARCHIVE__ENDPOINT_URL", &moto.endpoint()),
        ("ORGTRAIL_ARCHIVE__REGION", "us-east-1"),
        ("ORGTRAIL_ARCHIVE__KMS_KEY_ID", kms_key),
        ("ORGTRAIL_ARCHIVE__SETTLE_SECONDS", "0"),
        ("ORGTRAIL_ARCHIVE__INTERVAL_SECONDS", "1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

/// moto with the archive's bucket, its SSE-KMS key and the digests' signing key (RSA, in KMS).
async fn archive_in_moto() -> (MotoServer, aws_sdk_s3::Client, KmsKey, String) {
    let moto = MotoServer::start();
    let s3 = s3_client(&moto.endpoint()).await;
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let kms = KmsKey::create(&moto.endpoint(), "orgtrail-archive").await;
    let signing_key = kms_client(&moto.endpoint())
        .await
        .create_key()
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    (moto, s3, kms, signing_key)
}

/// The archive's Parquet objects in the bucket, by key: (ETag, bytes).
async fn archive_objects(s3: &aws_sdk_s3::Client) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut objects = BTreeMap::new();
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("{PREFIX}/events/"))
        .send()
        .await
        .unwrap();
    for object in listed.contents() {
        let key = object.key().unwrap().to_string();
        let body = s3
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec();
        objects.insert(key, (object.e_tag().unwrap_or_default().to_string(), body));
    }
    objects
}

/// The objects the aggregator recorded: key → events.
async fn recorded_objects(stack: &TestStack) -> BTreeMap<String, i32> {
    sqlx::query_as("SELECT object_key, events FROM archive_objects")
        .fetch_all(&stack.pool().await)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Waits (bounded) until the recorded objects hold as many events as the store.
async fn wait_until_archived(stack: &TestStack) -> BTreeMap<String, i32> {
    let pool = stack.pool().await;
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    loop {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
        let objects = recorded_objects(stack).await;
        let archived: i64 = objects.values().map(|events| i64::from(*events)).sum();
        if archived >= stored {
            return objects;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{archived} of {stored} events archived after {:?}:\n{}",
            WAIT * 3,
            stack.aggregator_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Deserialize)]
struct ReadBack {
    pyarrow: Rows,
    duckdb: Rows,
}

#[derive(Deserialize)]
struct Rows {
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    record: String,
    #[serde(default)]
    account: Option<String>,
}

/// Reads the objects, written to a directory as they are keyed, with pyarrow and DuckDB.
fn read_back(objects: &BTreeMap<String, (String, Vec<u8>)>) -> ReadBack {
    let python = std::env::var_os(PYTHON_VARIABLE).unwrap_or_else(|| {
        panic!("{PYTHON_VARIABLE} is not set: it names a Python with pyarrow and duckdb (cargo xtask test sets it)")
    });
    let directory = std::env::temp_dir().join(format!("orgtrail-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    for (key, (_, bytes)) in objects {
        let path = directory.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/archive/tests/read_back.py");
    let events: PathBuf = directory.join(PREFIX).join("events");
    let output = Command::new(python)
        .arg(&script)
        .arg(&events)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    let _ = std::fs::remove_dir_all(&directory);
    assert!(
        output.status.success(),
        "read_back.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Each record, counted.
fn multiset<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> HashMap<Vec<u8>, usize> {
    let mut counts = HashMap::new();
    for record in records {
        *counts.entry(record.to_vec()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_event_is_archived_once_through_a_crash_and_reads_back_byte_for_byte() {
    let (moto, s3, kms, signing_key) = archive_in_moto().await;

    // The events stored first, the archive off.
    let mut stack = TestStack::start_with(StackOptions::default()).await;
    let files = sample_files();
    ingest_sample_files(&stack, &files).await;
    let stored = stack.stored_records().await;
    assert!(stored.len() > 1000);

    // The archive on, with an aggregator that aborts after its first upload.
    let environment = archive_environment(&moto, &kms.key_id, &signing_key);
    let mut with_crash: Vec<(&str, &str)> = environment
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    with_crash.push((CRASH_VARIABLE, "1"));
    with_crash.push(("ORGTRAIL_ARCHIVE__INTERVAL_SECONDS", "3"));
    stack.restart_aggregator_with(&with_crash, &[]);
    let code = stack.wait_for_aggregator_exit(WAIT);
    assert_ne!(
        code,
        Some(0),
        "the aggregator aborts after its first upload"
    );
    let uploaded = archive_objects(&s3).await;
    assert_eq!(uploaded.len(), 1, "one object uploaded before the crash");
    assert!(
        recorded_objects(&stack).await.is_empty(),
        "and not recorded"
    );

    // Restarted without the fault: everything archived, once.
    stack.restart_aggregator_with(
        &[("ORGTRAIL_ARCHIVE__INTERVAL_SECONDS", "1")],
        &[CRASH_VARIABLE],
    );
    let recorded = wait_until_archived(&stack).await;
    let objects = archive_objects(&s3).await;
    assert_eq!(
        objects.keys().collect::<Vec<_>>(),
        recorded.keys().collect::<Vec<_>>(),
        "every object in the bucket is recorded, and no more"
    );
    let crashed_key = uploaded.keys().next().unwrap();
    assert!(
        recorded.contains_key(crashed_key),
        "the crashed upload's key is written again"
    );

    // Every object is encrypted with the archive's KMS key.
    for key in objects.keys() {
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|sse| sse.as_str()),
            Some("aws:kms"),
            "{key}"
        );
        assert!(
            // moto answers the key as it was named (an alias); AWS answers its ARN.
            head.ssekms_key_id()
                .is_some_and(|id| id == kms.key_id || id == kms.arn),
            "{key}: {:?} is not {}",
            head.ssekms_key_id(),
            kms.arn
        );
    }

    // Read back by pyarrow and DuckDB: the store's records, each once, byte for byte.
    let expected = multiset(stored.iter().map(|(_, record)| record.as_slice()));
    let read = read_back(&objects);
    for (reader, rows) in [
        ("pyarrow", &read.pyarrow.rows),
        ("duckdb", &read.duckdb.rows),
    ] {
        assert_eq!(rows.len(), stored.len(), "{reader}");
        let archived = multiset(rows.iter().map(|row| row.record.as_bytes()));
        assert!(
            archived == expected,
            "{reader}: the records differ from the store's"
        );
    }
    assert!(read.duckdb.rows.iter().all(|row| row
        .account
        .as_deref()
        .is_some_and(|account| !account.is_empty())));

    // Late events for an archived hour: another object; the first is not written again.
    let (first_key, (first_etag, _)) = objects
        .iter()
        .find(|(key, _)| key.ends_with("-0000.parquet"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .unwrap();
    let pool = stack.pool().await;
    let (event_time,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT hour FROM archive_objects WHERE object_key = $1")
            .bind(&first_key)
            .fetch_one(&pool)
            .await
            .unwrap();
    let late = late_file_in_hour(&stack, &first_key, event_time).await;
    ingest_sample_files(&stack, &[late]).await;
    let recorded = wait_until_archived(&stack).await;
    let late_key = first_key.replace("-0000.parquet", "-0001.parquet");
    assert_eq!(recorded.get(&late_key), Some(&1), "{recorded:#?}");
    let objects = archive_objects(&s3).await;
    assert_eq!(
        objects[&first_key].0, first_etag,
        "the first object is untouched"
    );

    // orgtrail verify --archive: clean once every object is in a digest; each object changed
    // or removed afterwards is named.
    wait_until_digested(&stack).await;
    let (clean, report) = verify_archive(&moto);
    assert!(clean.status.success(), "{report:#}");
    assert_eq!(
        report["summary"]["log_files"]["verified"],
        objects.len(),
        "{report:#}"
    );
    assert!(report["summary"]["digests"].as_u64().unwrap() >= 1);
    let mut keys = objects.keys();
    let changed = keys.next().unwrap().clone();
    let removed = keys.next().unwrap().clone();
    let mut bytes = objects[&changed].1.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    s3.put_object()
        .bucket(BUCKET)
        .key(&changed)
        .body(bytes.into())
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(BUCKET)
        .key(&removed)
        .send()
        .await
        .unwrap();
    stack.terminate_aggregator();
    let (tampered, report) = verify_archive(&moto);
    assert_eq!(tampered.status.code(), Some(1), "{report:#}");
    let problems = orgtrail_tests::trail::report_problems(&report);
    assert!(
        problems.contains(&("log_file_modified".to_string(), changed.clone())),
        "{problems:#?}"
    );
    assert!(
        problems.contains(&("log_file_missing".to_string(), removed.clone())),
        "{problems:#?}"
    );
}

/// Waits (bounded) until a digest lists every archive object.
async fn wait_until_digested(stack: &TestStack) {
    let pool = stack.pool().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let undigested: i64 =
            sqlx::query_scalar("SELECT count(*) FROM archive_objects WHERE digest_key IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap();
        if undigested == 0 {
            // And the digests after the newest object's are due too.
            tokio::time::sleep(Duration::from_secs(5)).await;
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{undigested} archive objects in no digest after {WAIT:?}:\n{}",
            stack.aggregator_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `orgtrail verify --archive` over the test's bucket, with the keys published beside it.
fn verify_archive(moto: &MotoServer) -> (std::process::Output, serde_json::Value) {
    let environment = moto_aws_environment();
    let endpoint = moto.endpoint();
    let output = run_orgtrail_with(
        &environment,
        &[
            "verify",
            "--archive",
            "--bucket",
            BUCKET,
            "--prefix",
            PREFIX,
            "--digest-interval-seconds",
            DIGEST_INTERVAL,
            "--endpoint-url",
            &endpoint,
            "--output",
            "json",
        ],
        Duration::from_secs(300),
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "verify --archive printed no JSON ({error}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

/// A log file with one new event (a stored record of the object's hour under a new eventID).
async fn late_file_in_hour(
    stack: &TestStack,
    object_key: &str,
    hour: chrono::DateTime<chrono::Utc>,
) -> orgtrail_tests::samples::SampleFile {
    let (event_id,): (uuid::Uuid,) =
        sqlx::query_as("SELECT event_ids[1] FROM archive_objects WHERE object_key = $1")
            .bind(object_key)
            .fetch_one(&stack.pool().await)
            .await
            .unwrap();
    let record = stack
        .stored_records()
        .await
        .into_iter()
        .find(|(id, _)| *id == event_id)
        .map(|(_, record)| String::from_utf8(record).unwrap())
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&record).unwrap();
    let original = parsed["eventID"].as_str().unwrap();
    let record = record.replacen(original, &uuid::Uuid::new_v4().to_string(), 1);
    let parsed_time: chrono::DateTime<chrono::Utc> =
        parsed["eventTime"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        parsed_time.timestamp() / 3600,
        hour.timestamp() / 3600,
        "the late event is in the archived hour"
    );
    let content = format!("{{\"Records\":[{record}]}}");
    let path = std::env::temp_dir().join(format!(
        "orgtrail-archive-late-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, &content).unwrap();
    orgtrail_tests::samples::SampleFile {
        path,
        key: format!("late/{}.json", uuid::Uuid::new_v4().simple()),
        bytes: content.clone().into_bytes(),
        records: vec![record],
    }
}

/// `orgtrail query SQL --output json` as `identity`: its rows, or its standard error when it
/// failed.
fn sql_rows(
    stack: &TestStack,
    identity: orgtrail_tests::pki::ClientIdentity,
    sql: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let endpoint = stack.endpoint();
    let output = run_orgtrail_with(
        &orgtrail_tests::pki::cli_environment(identity),
        &["--endpoint", &endpoint, "query", sql, "--output", "json"],
        WAIT,
    );
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_reads_the_archive_and_the_recent_events_once_while_the_archiver_moves_them() {
    use orgtrail_tests::pki::ClientIdentity;
    let (moto, _s3, kms, signing_key) = archive_in_moto().await;
    let cache = std::env::temp_dir().join(format!("orgtrail-query-cache-{}", std::process::id()));
    let mut environment = archive_environment(&moto, &kms.key_id, &signing_key);
    environment.push((
        "ORGTRAIL_QUERY__CACHE_DIRECTORY".into(),
        cache.display().to_string(),
    ));
    let stack = TestStack::start_with(StackOptions {
        environment,
        ..Default::default()
    })
    .await;
    let files = sample_files();
    let expected = orgtrail_tests::samples::expected_store(&files);
    ingest_sample_files(&stack, &files).await;
    let stored = expected.events.len() as i64;

    // While the archiver moves hours from PostgreSQL to S3, every count is the whole store:
    // each event read once, from an object the snapshot lists or from PostgreSQL.
    let pool = stack.pool().await;
    let mut seen_mixed = false;
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    loop {
        let archived: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(events), 0)::bigint FROM archive_objects")
                .fetch_one(&pool)
                .await
                .unwrap();
        let rows = sql_rows(
            &stack,
            ClientIdentity::Admin,
            "SELECT count(*) AS n FROM events",
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            rows[0]["n"],
            serde_json::json!(stored),
            "{archived} archived"
        );
        seen_mixed |= archived > 0 && archived < stored;
        if archived >= stored {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not archived in time"
        );
    }
    eprintln!("a count ran while the archive held part of the events: {seen_mixed}");

    // Everything archived: the answers are the records' own, for a reader too.
    let rows = sql_rows(
        &stack,
        ClientIdentity::Reader,
        "SELECT eventname, count(*) AS n FROM events GROUP BY eventname",
    )
    .unwrap();
    let found: BTreeMap<String, i64> = rows
        .iter()
        .map(|row| {
            (
                row["eventname"].as_str().unwrap_or("<null>").to_string(),
                row["n"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
    for event in expected.events.values() {
        *wanted
            .entry(event.event_name.clone().unwrap_or_else(|| "<null>".into()))
            .or_default() += 1;
    }
    assert_eq!(found, wanted);
    let rows = sql_rows(
        &stack,
        ClientIdentity::Reader,
        "SELECT useridentity.username AS who, json_extract_scalar(eventjson, '$.sourceIPAddress') AS ip \
         FROM events WHERE eventname = 'ConsoleLogin' ORDER BY eventtime LIMIT 3",
    )
    .unwrap();
    assert_eq!(rows.len(), 3);

    // The collector's identity may not query; writes are refused for anyone.
    let refused = sql_rows(&stack, ClientIdentity::Collector, "SELECT 1").unwrap_err();
    assert!(refused.contains("needs reader"), "{refused}");
    let refused = sql_rows(&stack, ClientIdentity::Admin, "DELETE FROM events").unwrap_err();
    assert!(refused.contains("refused"), "{refused}");

    // Every query is audited with its text.
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT details->>'sql', details->>'outcome' FROM audit_log WHERE action = 'query.run'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(audited
        .iter()
        .any(|(sql, outcome)| sql == "DELETE FROM events" && outcome == "failed"));
    assert!(audited
        .iter()
        .any(|(sql, outcome)| sql.starts_with("SELECT eventname") && outcome == "ok"));
    let _ = std::fs::remove_dir_all(&cache);
}

/// One query of `docs/sql-cookbook.md`: its id (the heading's first word) and text.
struct CookbookQuery {
    id: String,
    sql: String,
}

/// The cookbook's queries, in order: each `### id — title` heading's first ```sql block.
fn cookbook_queries() -> Vec<CookbookQuery> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sql-cookbook.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let mut queries = Vec::new();
    let mut id: Option<String> = None;
    let mut sql: Option<String> = None;
    for line in text.lines() {
        match (&mut sql, line) {
            (Some(body), "```") => {
                let id = id.take().expect("a ```sql block under a ### heading");
                queries.push(CookbookQuery {
                    id,
                    sql: body.trim().to_string(),
                });
                sql = None;
            }
            (Some(body), line) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, "```sql") if id.is_some() => sql = Some(String::new()),
            (None, line) if line.starts_with("### ") => {
                id = line[4..].split_whitespace().next().map(str::to_string);
            }
            _ => {}
        }
    }
    queries
}

#[derive(Deserialize)]
struct CookbookReport {
    results: Vec<CookbookResult>,
}

#[derive(Deserialize)]
struct CookbookResult {
    id: String,
    #[serde(default)]
    rows: usize,
    #[serde(default)]
    matches: bool,
    #[serde(default)]
    only_duckdb: Vec<String>,
    #[serde(default)]
    only_orgtrail: Vec<String>,
    #[serde(default)]
    distinct_event_ids: Option<usize>,
    #[serde(default)]
    error: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_cookbook_answers_as_duckdb_does_over_the_same_objects() {
    use orgtrail_tests::pki::ClientIdentity;
    let geoip = std::env::var("ORGTRAIL_TEST_GEOIP_FILE").unwrap_or_else(|_| {
        panic!("ORGTRAIL_TEST_GEOIP_FILE is not set: it names a GeoIP country database (cargo xtask test fetches DB-IP's)")
    });
    let python = std::env::var_os(PYTHON_VARIABLE).unwrap_or_else(|| {
        panic!("{PYTHON_VARIABLE} is not set: it names a Python with duckdb and maxminddb (cargo xtask test sets it)")
    });
    let (moto, s3, kms, signing_key) = archive_in_moto().await;
    let directory = std::env::temp_dir().join(format!("orgtrail-cookbook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let mut environment = archive_environment(&moto, &kms.key_id, &signing_key);
    // No archive round until the samples are in.
    environment.retain(|(name, _)| name != "ORGTRAIL_ARCHIVE__INTERVAL_SECONDS");
    environment.extend([
        (
            "ORGTRAIL_ARCHIVE__INTERVAL_SECONDS".to_string(),
            "3600".to_string(),
        ),
        (
            "ORGTRAIL_QUERY__CACHE_DIRECTORY".to_string(),
            directory.join("cache").display().to_string(),
        ),
        ("ORGTRAIL_QUERY__GEOIP_FILE".to_string(), geoip.clone()),
    ]);
    let mut stack = TestStack::start_with(StackOptions {
        environment,
        ..Default::default()
    })
    .await;
    let files = sample_files();
    let expected = orgtrail_tests::samples::expected_store(&files);
    ingest_sample_files(&stack, &files).await;

    // Rounds of a few partitions each, then none: part of the history archived in S3, the rest
    // in PostgreSQL only.
    stack.restart_aggregator_with(
        &[
            ("ORGTRAIL_ARCHIVE__INTERVAL_SECONDS", "1"),
            ("ORGTRAIL_ARCHIVE__PARTITIONS_PER_ROUND", "25"),
        ],
        &[],
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while recorded_objects(&stack).await.len() < 25 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no archive round in time:\n{}",
            stack.aggregator_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.restart_aggregator_with(&[("ORGTRAIL_ARCHIVE__INTERVAL_SECONDS", "3600")], &[]);
    let recorded = recorded_objects(&stack).await;
    let archived: i64 = recorded.values().map(|events| i64::from(*events)).sum();
    let stored = expected.events.len() as i64;
    assert!(
        archived > 0 && archived < stored,
        "{archived} of {stored} archived"
    );

    // DuckDB's inputs: the archive's objects as they are in the bucket, and every expected
    // event (those no object holds are the ones still in PostgreSQL).
    let objects = archive_objects(&s3).await;
    assert_eq!(objects.len(), recorded.len());
    let archive_dir = directory.join("archive");
    for (key, (_, bytes)) in &objects {
        let path = archive_dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let expected_path = directory.join("expected.jsonl");
    let lines: Vec<String> = expected
        .events
        .values()
        .map(|event| {
            serde_json::json!({
                "event_id": event.event_id,
                "account_id": event.account_id,
                "event_category": event.event_category,
                "record": event.record,
            })
            .to_string()
        })
        .collect();
    std::fs::write(&expected_path, lines.join("\n")).unwrap();

    // A query bounded to one account, region and day fetches only that day's objects of that
    // account and region from the bucket (the cache is empty until now).
    let first = orgtrail_archive::ObjectKey::parse(recorded.keys().next().unwrap()).unwrap();
    let day = first.partition.hour.date_naive();
    let rows = sql_rows(
        &stack,
        ClientIdentity::Reader,
        &format!(
            "SELECT count(*) AS n FROM events WHERE recipientaccountid = '{}' AND awsregion = '{}' \
             AND eventtime >= TIMESTAMP '{day} 00:00:00' AND eventtime < TIMESTAMP '{} 00:00:00'",
            first.partition.account,
            first.partition.region,
            day + chrono::Duration::days(1)
        ),
    )
    .unwrap();
    let cached: Vec<orgtrail_sql::ArchiveFile> =
        orgtrail_sql::archive_files_under(&directory.join("cache")).unwrap();
    let reachable = recorded
        .keys()
        .filter_map(|key| orgtrail_archive::ObjectKey::parse(key))
        .filter(|key| {
            key.partition.account == first.partition.account
                && key.partition.region == first.partition.region
                && key.partition.hour.date_naive() == day
        })
        .count();
    assert!(rows[0]["n"].as_i64().unwrap() > 0);
    assert_eq!(cached.len(), reachable, "objects fetched for one day");
    assert!(cached
        .iter()
        .all(|file| file.partition.account == first.partition.account
            && file.partition.hour.date_naive() == day));
    assert!(reachable < recorded.len());

    // Each object's recorded principals are those of its events; a query for one principal
    // fetches only the objects that hold it.
    let pool = stack.pool().await;
    let recorded_principals: BTreeMap<String, Vec<String>> =
        sqlx::query_as("SELECT object_key, principals FROM archive_objects")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for (key, (_, bytes)) in &objects {
        let mut principals: Vec<String> = orgtrail_archive::decode_parquet(bytes)
            .unwrap()
            .into_iter()
            .filter_map(|event| event.user_arn)
            .collect();
        principals.sort();
        principals.dedup();
        assert_eq!(recorded_principals[key], principals, "{key}");
    }
    let mut holders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, principals) in &recorded_principals {
        for principal in principals {
            holders.entry(principal).or_default().push(key);
        }
    }
    let (principal, holding) = holders.iter().max_by_key(|(_, keys)| keys.len()).unwrap();
    std::fs::remove_dir_all(directory.join("cache")).unwrap();
    let rows = sql_rows(
        &stack,
        ClientIdentity::Reader,
        &format!("SELECT count(*) AS n FROM events WHERE useridentity.arn = '{principal}'"),
    )
    .unwrap();
    let wanted = expected
        .events
        .values()
        .filter(|event| {
            serde_json::from_str::<serde_json::Value>(&event.record).unwrap()["userIdentity"]["arn"]
                == serde_json::json!(principal)
        })
        .count();
    assert_eq!(rows[0]["n"], serde_json::json!(wanted), "{principal}");
    let mut fetched: Vec<String> = orgtrail_sql::archive_files_under(&directory.join("cache"))
        .unwrap()
        .iter()
        .map(|file| {
            file.path
                .strip_prefix(directory.join("cache"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    fetched.sort();
    let mut holding: Vec<String> = holding.iter().map(|key| key.to_string()).collect();
    holding.sort();
    assert_eq!(fetched, holding, "objects fetched for {principal}");
    assert!(holding.len() < recorded.len());

    // orgtrail's answers, through `orgtrail query`.
    let queries = cookbook_queries();
    assert!(queries.len() >= 25, "{} queries", queries.len());
    let mut answers = Vec::new();
    for query in &queries {
        let rows = sql_rows(&stack, ClientIdentity::Reader, &query.sql)
            .unwrap_or_else(|error| panic!("{}: {error}", query.id));
        answers.push(serde_json::json!({"id": query.id, "sql": query.sql, "rows": rows}));
    }
    let answers_path = directory.join("answers.json");
    std::fs::write(
        &answers_path,
        serde_json::json!({ "queries": answers }).to_string(),
    )
    .unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/sql_cookbook_duckdb.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(archive_dir.join(PREFIX).join("events"))
        .arg(&expected_path)
        .arg(&answers_path)
        .arg(&geoip)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: CookbookReport = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.results.len(), queries.len());
    let failed: Vec<&CookbookResult> = report
        .results
        .iter()
        .filter(|result| !result.matches || result.error.is_some())
        .collect();
    let differences: Vec<String> = failed
        .iter()
        .map(|result| {
            format!(
                "{}: {}\n  only DuckDB's: {:?}\n  only orgtrail's: {:?}",
                result.id,
                result.error.as_deref().unwrap_or("rows differ"),
                result.only_duckdb,
                result.only_orgtrail
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "answers differ from DuckDB's:\n{}",
        differences.join("\n")
    );
    for result in &report.results {
        eprintln!("{}: {} rows, as DuckDB", result.id, result.rows);
    }

    // The CIS questions answer as the independent evaluator of the CIS filters counted — with
    // 4.3 counting a record without eventType as not a service event (sql-cookbook.md).
    let cis: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/cis/EXPECTED.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for summary in cis["summary"].as_array().unwrap() {
        if summary["primary"] != serde_json::json!(true) {
            continue;
        }
        let id = format!("cis-{}", summary["id"].as_str().unwrap());
        let wanted = if id == "cis-4.3" {
            summary["count_if_neq_true_on_missing"].as_u64().unwrap()
        } else {
            summary["count"].as_u64().unwrap()
        };
        let result = report
            .results
            .iter()
            .find(|result| result.id == id)
            .unwrap_or_else(|| panic!("the cookbook has no {id}"));
        assert_eq!(
            result.distinct_event_ids,
            Some(wanted as usize),
            "{id}: events found, against EXPECTED.json"
        );
    }
    // Answers with rows: the comparison is not of empty sets.
    let with_rows = report
        .results
        .iter()
        .filter(|result| result.rows > 0)
        .count();
    assert!(with_rows >= 20, "{with_rows} queries answer rows");

    // Of the events not archived yet, a query reads only the partitions its predicates reach:
    // with room for 50 of them, a count of everything is refused, and a count of one account's
    // hour that is not archived is answered.
    let hot: Vec<(String, String, chrono::DateTime<chrono::Utc>, i64)> = sqlx::query_as(
        "SELECT h.account_id, h.aws_region, h.hour, sum(h.events)::bigint
         FROM hour_counts AS h
         WHERE h.account_id ~ '^[0-9]{12}$' AND h.aws_region ~ '^[a-z0-9-]+$'
           AND NOT EXISTS (SELECT 1 FROM archive_objects AS o WHERE o.account_id = h.account_id
                           AND o.aws_region = h.aws_region AND o.hour = h.hour)
         GROUP BY 1, 2, 3 HAVING sum(h.events) BETWEEN 2 AND 50
         ORDER BY 4 DESC, 1, 2, 3 LIMIT 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let (account, region, hour, events) = hot.first().cloned().expect("a small hour not archived");
    stack.restart_aggregator_with(&[("ORGTRAIL_QUERY__MAX_RECENT_EVENTS", "50")], &[]);
    let refused = sql_rows(
        &stack,
        ClientIdentity::Reader,
        "SELECT count(*) AS n FROM events",
    )
    .unwrap_err();
    assert!(
        refused.contains("more than 50 events are not archived yet"),
        "{refused}"
    );
    let rows = sql_rows(
        &stack,
        ClientIdentity::Reader,
        &format!(
            "SELECT count(*) AS n FROM events WHERE recipientaccountid = '{account}' \
             AND awsregion = '{region}' AND eventtime >= TIMESTAMP '{}' \
             AND eventtime < TIMESTAMP '{}'",
            hour.format("%Y-%m-%d %H:%M:%S"),
            (hour + chrono::Duration::hours(1)).format("%Y-%m-%d %H:%M:%S")
        ),
    )
    .unwrap_or_else(|error| panic!("{account} {region} {hour}: {error}"));
    assert_eq!(rows[0]["n"], serde_json::json!(events));
    let _ = std::fs::remove_dir_all(&directory);
}
