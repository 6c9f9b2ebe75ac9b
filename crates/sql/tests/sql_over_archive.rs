//! SQL over the sample events: half the partitions archived as the archive writes them (Parquet
//! objects in the archive's layout, in a directory), the rest as recent events not archived
//! yet. Answers are checked against what the sample records say, read with serde_json here,
//! and against DuckDB (PyPI) over the same objects plus the recent events as one more file.
//! Scoped sessions cannot reach other accounts by any SQL; writes, DDL and files are refused.

#[path = "../../archive/tests/sample_events/mod.rs"]
mod sample_events;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use orgtrail_archive::{encode_parquet, events_batch, partition_events, ArchiveEvent, ObjectKey};
use orgtrail_sql::{archive_files_under, EventSources, QueryScope, SqlEngine, SqlError, SqlLimits};
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
            archive_files: archive_files_under(&directory.join(PREFIX)).unwrap(),
            recent: vec![events_batch(&recent).unwrap()],
            fetcher: None,
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
        let archived: std::collections::HashSet<String> =
            archive_files_under(&fixture.directory.join(PREFIX))
                .unwrap()
                .iter()
                .flat_map(|file| {
                    orgtrail_archive::decode_parquet(&std::fs::read(&file.path).unwrap()).unwrap()
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

#[tokio::test]
async fn predicates_on_time_account_region_and_principal_open_only_the_objects_they_reach() {
    let fixture = fixture("pruning");
    let engine = SqlEngine::default();
    let everyone = QueryScope::default();
    let files = &fixture.sources.archive_files;

    // The busiest archived partition's account, region and day.
    let busiest = files
        .iter()
        .max_by_key(|file| std::fs::metadata(&file.path).unwrap().len())
        .unwrap()
        .partition
        .clone();
    let day_start = busiest
        .hour
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let day_end = day_start + chrono::Duration::days(1);
    let sql = format!(
        "SELECT count(*) FROM events WHERE recipientaccountid = '{}' AND awsregion = '{}' \
         AND eventtime >= TIMESTAMP '{}' AND eventtime < TIMESTAMP '{}'",
        busiest.account,
        busiest.region,
        day_start.format("%Y-%m-%d %H:%M:%S"),
        day_end.format("%Y-%m-%d %H:%M:%S"),
    );
    let result = engine
        .query(&sql, &fixture.sources, &everyone)
        .await
        .unwrap();
    // What the records say, and which objects could hold them.
    let expected = fixture
        .events
        .iter()
        .filter(|event| {
            event.account_id.as_deref() == Some(busiest.account.as_str())
                && event.aws_region.as_deref() == Some(busiest.region.as_str())
                && event.event_time >= day_start
                && event.event_time < day_end
        })
        .count();
    let reachable = files
        .iter()
        .filter(|file| {
            file.partition.account == busiest.account
                && file.partition.region == busiest.region
                && file.partition.hour >= day_start
                && file.partition.hour < day_end
        })
        .count();
    assert_eq!(single_count(&result.batches), expected as i64, "{sql}");
    assert!(reachable >= 1 && reachable < files.len());
    assert_eq!(result.objects_scanned, reachable, "{sql}");

    // With the bounds the other way round (literal first, BETWEEN), the same objects.
    let sql = format!(
        "SELECT count(*) FROM events WHERE '{}' = recipientaccountid AND awsregion IN ('{}') \
         AND eventtime BETWEEN TIMESTAMP '{}' AND TIMESTAMP '{}'",
        busiest.account,
        busiest.region,
        day_start.format("%Y-%m-%d %H:%M:%S"),
        (day_end - chrono::Duration::microseconds(1)).format("%Y-%m-%d %H:%M:%S%.6f"),
    );
    let result = engine
        .query(&sql, &fixture.sources, &everyone)
        .await
        .unwrap();
    assert_eq!(single_count(&result.batches), expected as i64, "{sql}");
    assert_eq!(result.objects_scanned, reachable, "{sql}");

    // A caller scoped to one account opens that account's objects only, whatever it asks.
    let scope = QueryScope {
        accounts: Some(vec![busiest.account.clone()]),
    };
    let result = engine
        .query("SELECT count(*) FROM events", &fixture.sources, &scope)
        .await
        .unwrap();
    let own = files
        .iter()
        .filter(|file| file.partition.account == busiest.account)
        .count();
    assert_eq!(result.objects_scanned, own);
    let own_events = fixture
        .events
        .iter()
        .filter(|event| event.account_id.as_deref() == Some(busiest.account.as_str()))
        .count();
    assert_eq!(single_count(&result.batches), own_events as i64);

    // With the principals of each object recorded (as the archiver records them), a query for
    // one principal opens only the objects that hold it.
    let with_principals = EventSources {
        archive_files: files
            .iter()
            .map(|file| {
                let events =
                    orgtrail_archive::decode_parquet(&std::fs::read(&file.path).unwrap()).unwrap();
                file.clone()
                    .with_principals(events.into_iter().filter_map(|event| event.user_arn))
            })
            .collect(),
        ..fixture.sources.clone()
    };
    let mut by_principal: BTreeMap<String, usize> = BTreeMap::new();
    for file in &with_principals.archive_files {
        for principal in file.principals.as_deref().unwrap_or_default() {
            *by_principal.entry(principal.clone()).or_default() += 1;
        }
    }
    let (principal, holding) = by_principal
        .iter()
        .max_by_key(|(_, objects)| **objects)
        .unwrap();
    let sql = format!("SELECT count(*) FROM events WHERE useridentity.arn = '{principal}'");
    let result = engine
        .query(&sql, &with_principals, &everyone)
        .await
        .unwrap();
    let expected = fixture
        .events
        .iter()
        .filter(|event| event.user_arn.as_deref() == Some(principal.as_str()))
        .count();
    assert_eq!(single_count(&result.batches), expected as i64, "{sql}");
    assert_eq!(result.objects_scanned, *holding, "{sql}");
    assert!(*holding < files.len());

    // Predicates on other columns prune nothing and lose nothing.
    let result = engine
        .query(
            "SELECT count(*) FROM events WHERE eventname IS NOT NULL OR eventname IS NULL",
            &fixture.sources,
            &everyone,
        )
        .await
        .unwrap();
    assert_eq!(result.objects_scanned, files.len());
    assert_eq!(single_count(&result.batches), fixture.events.len() as i64);
    let _ = std::fs::remove_dir_all(&fixture.directory);
}

#[tokio::test]
async fn ip_country_places_addresses_with_the_configured_database_and_fails_without_one() {
    let path = std::env::var_os("ORGTRAIL_TEST_GEOIP_FILE").unwrap_or_else(|| {
        panic!("ORGTRAIL_TEST_GEOIP_FILE is not set: it names a GeoIP country database (cargo xtask test fetches DB-IP's)")
    });
    let database = orgtrail_sql::GeoIpDatabase::open(std::path::Path::new(&path)).unwrap();
    let engine = SqlEngine::default().with_geoip(std::sync::Arc::new(database));
    let sources = EventSources::default();
    let everyone = QueryScope::default();
    let sql = "SELECT ip_country('8.8.8.8') AS v4, ip_country('2001:4860:4860::8888') AS v6, \
               ip_country('s3.amazonaws.com') AS service, ip_country('10.0.0.1') AS private, \
               ip_country(NULL) AS nothing";
    let result = engine.query(sql, &sources, &everyone).await.unwrap();
    let row: Value = serde_json::from_str(&result.json_lines().unwrap()[0]).unwrap();
    // As DB-IP's lite database of June 2026 places them (the version xtask pins).
    assert_eq!(row, serde_json::json!({"v4": "US", "v6": "CA"}));

    let error = SqlEngine::default()
        .query("SELECT ip_country('8.8.8.8') AS c", &sources, &everyone)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("query.geoip_file"), "{error}");

    let not_a_database =
        std::env::temp_dir().join(format!("orgtrail-geoip-{}", std::process::id()));
    std::fs::write(&not_a_database, b"not a database").unwrap();
    let error = orgtrail_sql::GeoIpDatabase::open(&not_a_database).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&not_a_database.display().to_string()),
        "{error}"
    );
    let _ = std::fs::remove_file(&not_a_database);
}

#[tokio::test]
async fn a_querys_reach_is_the_partitions_its_predicates_allow_planned_without_reading() {
    use chrono::TimeZone;
    use orgtrail_archive::HourPartition;
    let engine = SqlEngine::default();
    let at = |account: &str, region: &str, day: u32, hour: u32| {
        HourPartition::new(
            Some(account),
            Some(region),
            chrono::Utc
                .with_ymd_and_hms(2026, 7, day, hour, 0, 0)
                .unwrap(),
        )
    };
    let everyone = QueryScope::default();
    let reach = engine
        .reach(
            "SELECT count(*) FROM events WHERE recipientaccountid = '111122223333' \
             AND eventtime >= TIMESTAMP '2026-07-02 00:00:00' AND eventtime < TIMESTAMP '2026-07-03 00:00:00'",
            &everyone,
        )
        .await
        .unwrap();
    assert!(reach.may_read(&at("111122223333", "us-east-1", 2, 5)));
    assert!(!reach.may_read(&at("111122223333", "us-east-1", 3, 0)));
    assert!(!reach.may_read(&at("444455556666", "us-east-1", 2, 5)));

    // Each scan's filters count: a UNION of two accounts reads both, and no other.
    let reach = engine
        .reach(
            "SELECT eventid FROM events WHERE recipientaccountid = '111122223333' \
             UNION ALL SELECT eventid FROM orgtrail WHERE recipientaccountid = '444455556666'",
            &everyone,
        )
        .await
        .unwrap();
    assert!(reach.may_read(&at("111122223333", "eu-west-1", 1, 0)));
    assert!(reach.may_read(&at("444455556666", "eu-west-1", 1, 0)));
    assert!(!reach.may_read(&at("777788889999", "eu-west-1", 1, 0)));

    // No predicate: everything; a scope: its accounts only, whatever the query says.
    let reach = engine
        .reach("SELECT count(*) FROM events", &everyone)
        .await
        .unwrap();
    assert!(reach.may_read(&at("777788889999", "eu-west-1", 1, 0)));
    let scoped = QueryScope {
        accounts: Some(vec!["111122223333".into()]),
    };
    let reach = engine
        .reach(
            "SELECT count(*) FROM events WHERE recipientaccountid = '444455556666' OR true",
            &scoped,
        )
        .await
        .unwrap();
    assert!(reach.may_read(&at("111122223333", "eu-west-1", 1, 0)));
    assert!(!reach.may_read(&at("444455556666", "eu-west-1", 1, 0)));

    // What a query refuses, its reach refuses.
    let refused = engine
        .reach("DELETE FROM events", &everyone)
        .await
        .unwrap_err();
    assert!(matches!(refused, SqlError::Refused(_)), "{refused}");
}
