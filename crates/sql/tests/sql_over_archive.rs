//! SQL over the sample events: half the partitions archived as the archive writes them (Parquet
//! objects in the archive's layout, in a directory), the rest as recent events not archived
//! yet. Answers are checked against what the sample records say, read with serde_json here,
//! and against DuckDB (PyPI) over the same objects plus the recent events as one more file.
//! Scoped sessions cannot reach other accounts by any SQL; writes, DDL and files are refused.

#[path = "../../archive/tests/sample_events/mod.rs"]
mod sample_events;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use orgtrail_archive::{encode_parquet, events_batch, partition_events, ArchiveEvent, ObjectKey};
use orgtrail_sql::{EventSources, QueryScope, SqlEngine, SqlError, SqlLimits};
use sample_events::read_sample_events;
use serde_json::Value;

const PREFIX: &str = "orgtrail";

struct Fixture {
    directory: PathBuf,
    sources: EventSources,
    events: Vec<ArchiveEvent>,
}

/// The samples: every other partition archived to `directory`, the others recent.
fn fixture(name: &str) -> Fixture {
    let directory =
        std::env::temp_dir().join(format!("orgtrail-sql-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let events = read_sample_events();
    let mut recent = Vec::new();
    for (index, (partition, events)) in partition_events(events.clone()).into_iter().enumerate() {
        if index % 2 == 0 {
            let key = ObjectKey::next_for(PREFIX, partition, std::iter::empty())
                .unwrap()
                .to_string();
            let path = directory.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, encode_parquet(&events).unwrap()).unwrap();
        } else {
            recent.extend(events);
        }
    }
    assert!(!recent.is_empty());
    Fixture {
        sources: EventSources {
            archive_files: walk(&directory.join(PREFIX)),
            recent: vec![events_batch(&recent).unwrap()],
        },
        directory,
        events,
    }
}

fn record(event: &ArchiveEvent) -> Value {
    serde_json::from_str(&event.record).unwrap()
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The rows of a two-column answer (text, count), as a map.
fn counts(batches: &[RecordBatch]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for batch in batches {
        let keys = batch.column(0).as_string::<i32>();
        let values = batch.column(1).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let key = if keys.is_null(row) {
                "<null>".to_string()
            } else {
                keys.value(row).to_string()
            };
            counts.insert(key, values.value(row));
        }
    }
    counts
}

fn single_count(batches: &[RecordBatch]) -> i64 {
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

async fn query(
    engine: &SqlEngine,
    fixture: &Fixture,
    scope: &QueryScope,
    sql: &str,
) -> Vec<RecordBatch> {
    engine
        .query(sql, &fixture.sources, scope)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .batches
}

#[tokio::test]
async fn lake_queries_answer_what_the_records_say_across_archive_and_recent_events() {
    let fixture = fixture("answers");
    let engine = SqlEngine::default();
    let everyone = QueryScope::default();

    let total = query(&engine, &fixture, &everyone, "SELECT count(*) FROM events").await;
    assert_eq!(single_count(&total), fixture.events.len() as i64);

    // Count by event name, as the records name them.
    let mut by_name: BTreeMap<String, i64> = BTreeMap::new();
    for event in &fixture.events {
        let value = record(event);
        let name = text(&value, "/eventName")
            .or_else(|| text(&value, "/insightDetails/eventName"))
            .unwrap_or_else(|| "<null>".into());
        *by_name.entry(name).or_default() += 1;
    }
    let found = query(
        &engine,
        &fixture,
        &everyone,
        "SELECT eventname, count(*) AS n FROM events GROUP BY eventname",
    )
    .await;
    assert_eq!(counts(&found), by_name);

    // A field of the request, through Presto's JSON functions.
    let mut by_bucket: BTreeMap<String, i64> = BTreeMap::new();
    for event in &fixture.events {
        if let Some(bucket) = text(&record(event), "/requestParameters/bucketName") {
            *by_bucket.entry(bucket).or_default() += 1;
        }
    }
    assert!(!by_bucket.is_empty());
    let found = query(
        &engine,
        &fixture,
        &everyone,
        "SELECT json_extract_scalar(requestparameters, '$.bucketName') AS bucket, count(*) \
         FROM events WHERE json_extract_scalar(requestparameters, '$.bucketName') IS NOT NULL \
         GROUP BY 1",
    )
    .await;
    assert_eq!(counts(&found), by_bucket);

    // The caller as a struct, and a time window.
    let mut root_calls = 0;
    for event in &fixture.events {
        let value = record(event);
        let time = text(&value, "/eventTime").unwrap();
        if text(&value, "/userIdentity/type").as_deref() == Some("Root")
            && time.as_str() >= "2020-01-01"
        {
            root_calls += 1;
        }
    }
    let found = query(
        &engine,
        &fixture,
        &everyone,
        "SELECT count(*) FROM events WHERE useridentity.type = 'Root' \
         AND eventtime >= TIMESTAMP '2020-01-01 00:00:00'",
    )
    .await;
    assert_eq!(single_count(&found), root_calls);
    let _ = std::fs::remove_dir_all(&fixture.directory);
}

#[tokio::test]
async fn a_scoped_session_reads_its_accounts_whatever_the_sql() {
    let fixture = fixture("scope");
    let engine = SqlEngine::default();
    let mut per_account: BTreeMap<String, i64> = BTreeMap::new();
    for event in &fixture.events {
        *per_account
            .entry(event.account_id.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let (own, own_count) = per_account
        .iter()
        .filter(|(account, _)| !account.is_empty())
        .max_by_key(|(_, count)| **count)
        .map(|(account, count)| (account.clone(), *count))
        .unwrap();
    let scope = QueryScope {
        accounts: Some(vec![own.clone()]),
    };
    let others: Vec<&String> = per_account
        .keys()
        .filter(|account| **account != own)
        .collect();
    assert!(!others.is_empty());
    let other = others[0];
    for sql in [
        "SELECT count(*) FROM events".to_string(),
        format!("SELECT count(*) FROM events WHERE recipientaccountid <> '{own}' OR true"),
        "SELECT count(*) FROM (SELECT * FROM events UNION ALL SELECT * FROM events WHERE false) AS t"
            .into(),
        "SELECT count(*) FROM events AS a WHERE a.eventid IN (SELECT eventid FROM events)".into(),
        "WITH e AS (SELECT * FROM events) SELECT count(*) FROM e".into(),
        format!("SELECT count(*) FROM events WHERE eventjson LIKE '%{other}%' OR true"),
    ] {
        let found = query(&engine, &fixture, &scope, &sql).await;
        assert_eq!(single_count(&found), own_count, "{sql}");
    }
    let found = query(
        &engine,
        &fixture,
        &scope,
        "SELECT recipientaccountid, count(*) FROM events GROUP BY 1",
    )
    .await;
    assert_eq!(counts(&found), BTreeMap::from([(own.clone(), own_count)]));
    let nobody = QueryScope {
        accounts: Some(Vec::new()),
    };
    let found = query(&engine, &fixture, &nobody, "SELECT count(*) FROM events").await;
    assert_eq!(single_count(&found), 0);
    let _ = std::fs::remove_dir_all(&fixture.directory);
}

#[tokio::test]
async fn writes_ddl_files_and_other_tables_are_refused_and_limits_hold() {
    let fixture = fixture("refusals");
    let engine = SqlEngine::default();
    let everyone = QueryScope::default();
    let path = fixture.directory.join("copied.parquet");
    for sql in [
        "INSERT INTO events SELECT * FROM events".to_string(),
        "DELETE FROM events".into(),
        "CREATE TABLE stolen AS SELECT * FROM events".into(),
        "DROP TABLE events".into(),
        format!("COPY (SELECT * FROM events) TO '{}'", path.display()),
        "SET datafusion.execution.batch_size = 1".into(),
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'".into(),
        "SELECT * FROM information_schema.tables".into(),
        format!("SELECT * FROM '{}'", fixture.directory.display()),
        "SELECT * FROM archived_events".into(),
        "SELECT * FROM recent_events".into(),
    ] {
        match engine.query(&sql, &fixture.sources, &everyone).await {
            Err(SqlError::Refused(_) | SqlError::Invalid(_)) => {}
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert!(!path.exists());

    let tight = SqlEngine::new(SqlLimits {
        max_rows: 10,
        ..SqlLimits::default()
    });
    match tight
        .query("SELECT eventid FROM events", &fixture.sources, &everyone)
        .await
    {
        Err(SqlError::TooManyRows { limit: 10 }) => {}
        other => panic!("{other:?}"),
    }
    let long = "SELECT 1 ".repeat(2_000);
    assert!(matches!(
        engine.query(&long, &fixture.sources, &everyone).await,
        Err(SqlError::TooLong { .. })
    ));
    let short_memory = SqlEngine::new(SqlLimits {
        max_memory_bytes: 64 << 10,
        ..SqlLimits::default()
    });
    match short_memory
        .query(
            "SELECT eventjson, count(*) FROM events GROUP BY eventjson ORDER BY eventjson",
            &fixture.sources,
            &everyone,
        )
        .await
    {
        Err(SqlError::OutOfMemory { .. }) => {}
        other => panic!("{other:?}"),
    }
    let instant = SqlEngine::new(SqlLimits {
        timeout: Duration::from_nanos(1),
        ..SqlLimits::default()
    });
    assert!(matches!(
        instant
            .query("SELECT count(*) FROM events", &fixture.sources, &everyone)
            .await,
        Err(SqlError::Timeout(_))
    ));
    let _ = std::fs::remove_dir_all(&fixture.directory);
}

/// The Python with DuckDB (`cargo xtask test` sets it).
const PYTHON_VARIABLE: &str = "ORGTRAIL_TEST_PYTHON";

#[tokio::test]
async fn duckdb_over_the_same_objects_gives_the_same_answers() {
    let fixture = fixture("duckdb");
    let engine = SqlEngine::default();
    let everyone = QueryScope::default();
    // The recent events as one more object, for DuckDB (orgtrail reads them from memory).
    let recent = fixture.directory.join("recent.parquet");
    let recent_events: Vec<ArchiveEvent> = {
        let archived: std::collections::HashSet<String> = walk(&fixture.directory.join(PREFIX))
            .iter()
            .flat_map(|path| {
                orgtrail_archive::decode_parquet(&std::fs::read(path).unwrap()).unwrap()
            })
            .map(|event| event.event_id)
            .collect();
        fixture
            .events
            .iter()
            .filter(|event| !archived.contains(&event.event_id))
            .cloned()
            .collect()
    };
    std::fs::write(&recent, encode_parquet(&recent_events).unwrap()).unwrap();
    let queries = [
        (
            "SELECT eventname, count(*) FROM events GROUP BY eventname",
            "SELECT event_name, count(*) FROM e GROUP BY event_name",
        ),
        (
            "SELECT recipientaccountid, count(*) FROM events WHERE errorcode IS NOT NULL GROUP BY 1",
            "SELECT account_id, count(*) FROM e WHERE error_code IS NOT NULL GROUP BY 1",
        ),
        (
            "SELECT useridentity.arn, count(*) FROM events WHERE eventname = 'ConsoleLogin' GROUP BY 1",
            "SELECT user_arn, count(*) FROM e WHERE event_name = 'ConsoleLogin' GROUP BY 1",
        ),
    ];
    let python = std::env::var_os(PYTHON_VARIABLE).unwrap_or_else(|| {
        panic!("{PYTHON_VARIABLE} is not set: it names a Python with duckdb (cargo xtask test sets it)")
    });
    for (ours, theirs) in queries {
        let found = counts(&query(&engine, &fixture, &everyone, ours).await);
        let script = format!(
            "import duckdb, json\n\
             con = duckdb.connect()\n\
             con.execute(\"CREATE VIEW e AS SELECT * FROM read_parquet('{}/**/*.parquet', hive_partitioning=false) UNION ALL SELECT * FROM read_parquet('{}')\")\n\
             print(json.dumps({{str(k) if k is not None else '<null>': v for k, v in con.execute(\"{}\").fetchall()}}))\n",
            fixture.directory.join(PREFIX).display(),
            recent.display(),
            theirs
        );
        let output = Command::new(&python)
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let duckdb: BTreeMap<String, i64> = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(found, duckdb, "{ours}");
        assert!(!found.is_empty(), "{ours}");
    }
    let _ = std::fs::remove_dir_all(&fixture.directory);
}

fn walk(directory: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else if path
            .extension()
            .is_some_and(|extension| extension == "parquet")
        {
            found.push(path);
        }
    }
    found
}
