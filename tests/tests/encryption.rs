//! Records encrypted at rest: the record column holds no plaintext of any sample record; after
//! data key rotations (with and without re-encryption) every event reads back byte for byte;
//! a wrong or missing key stops the aggregator at start with a clear message.

use std::collections::BTreeMap;
use std::time::Duration;

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::key_service_client::KeyServiceClient;
use orgtrail_domain::EventId;
use orgtrail_tests::cli_process::run_orgtrail;
use orgtrail_tests::samples::{expected_store, record_event_id, sample_files, SampleFile};
use orgtrail_tests::{ingest_sample_files, TestStack, WAIT};

const BOUND: Duration = Duration::from_secs(60);

/// Every stored record, read through the API, by eventID.
async fn records_through_the_api(stack: &TestStack) -> BTreeMap<String, String> {
    let mut client = stack.events_client().await;
    let mut records = BTreeMap::new();
    let mut next_token = String::new();
    loop {
        let page = client
            .lookup_events(pb::LookupEventsRequest {
                max_results: 1000,
                next_token: next_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|status| panic!("lookup: {status}"))
            .into_inner();
        for event in page.events {
            records.insert(
                record_event_id(&event.cloud_trail_event),
                event.cloud_trail_event,
            );
        }
        if page.next_token.is_empty() {
            return records;
        }
        next_token = page.next_token;
    }
}

fn expected_records(files: &[SampleFile]) -> BTreeMap<String, String> {
    expected_store(files)
        .events
        .into_iter()
        .map(|(id, event)| (id, event.record))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_column_holds_no_plaintext_of_any_sample_record() {
    let stack = TestStack::start().await;
    let files = sample_files();
    ingest_sample_files(&stack, &files).await;
    let expected = expected_records(&files);

    let pool = stack.pool().await;
    let (rows, sealed): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE key_id IS NOT NULL) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rows as usize, expected.len());
    assert_eq!(sealed, rows, "every row names its data key");
    // Over every row: no field name every CloudTrail record has, no eventID of its own, no
    // record text of any sample.
    for marker in [
        "eventVersion",
        "eventID",
        "userIdentity",
        "amazonaws.com",
        "eventTime",
    ] {
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE position(convert_to($1, 'UTF8') IN record) > 0",
        )
        .bind(marker)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(found, 0, "{marker:?} is stored in the clear");
    }
    let own_id: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE position(convert_to(event_id::text, 'UTF8') IN record) > 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(own_id, 0);
    // Each row against its own record: no 32-byte window of the record's text (taken at the
    // start, the middle and the end) is in it.
    let mut ids = Vec::new();
    let mut windows = Vec::new();
    for (event_id, record) in &expected {
        let id = EventId::from_cloudtrail(event_id).unwrap().as_uuid();
        let bytes = record.as_bytes();
        for start in [0, bytes.len() / 2, bytes.len().saturating_sub(32)] {
            let end = (start + 32).min(bytes.len());
            ids.push(id);
            windows.push(bytes[start..end].to_vec());
        }
    }
    let found: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events AS e
         JOIN unnest($1::uuid[], $2::bytea[]) AS own (event_id, window_bytes) USING (event_id)
         WHERE position(own.window_bytes IN e.record) > 0",
    )
    .bind(&ids)
    .bind(&windows)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        found, 0,
        "a piece of a sample record is stored in the clear"
    );

    // Sealed, yet every record reads back byte for byte.
    assert_eq!(records_through_the_api(&stack).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_key_rotations_every_event_reads_back_byte_for_byte() {
    let mut stack = TestStack::start().await;
    let files = sample_files();
    let (first, second) = files.split_at(files.len() / 2);
    ingest_sample_files(&stack, first).await;
    let endpoint = stack.endpoint();

    // Rotate without re-encryption: new writes use the new key, old rows keep theirs.
    let rotated = run_orgtrail(&["--endpoint", &endpoint, "keys", "rotate"], BOUND);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(String::from_utf8_lossy(&rotated.stdout).contains("data key 2 is now active"));
    ingest_sample_files(&stack, second).await;
    let pool = stack.pool().await;
    let per_key: Vec<(Option<i32>, i64)> =
        sqlx::query_as("SELECT key_id, count(*) FROM events GROUP BY key_id ORDER BY key_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(per_key.len(), 2, "{per_key:?}");
    assert_eq!(per_key[0].0, Some(1));
    assert_eq!(per_key[1].0, Some(2));
    let expected = expected_records(&files);
    assert_eq!(records_through_the_api(&stack).await, expected);

    // Rotate with re-encryption: every row ends under key 3 (bounded wait), still readable.
    let rotated = run_orgtrail(
        &["--endpoint", &endpoint, "keys", "rotate", "--reencrypt"],
        BOUND,
    );
    assert!(rotated.status.success());
    let mut keys = KeyServiceClient::new(stack.channel().await);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = keys
            .list_data_keys(pb::ListDataKeysRequest {})
            .await
            .unwrap()
            .into_inner();
        let newest = listed.keys.last().unwrap();
        if !listed.reencrypting {
            assert_eq!(newest.key_id, 3);
            assert!(newest.active);
            assert_eq!(newest.events as usize, expected.len(), "{listed:?}");
            assert!(listed.keys[..2].iter().all(|key| key.events == 0));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "re-encryption did not end within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(records_through_the_api(&stack).await, expected);
    // Straight from the database with the keyring, too, and after a restart.
    assert_eq!(stack.stored_records().await.len(), expected.len());
    stack.restart_aggregator();
    assert_eq!(records_through_the_api(&stack).await, expected);
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT subject FROM audit_log WHERE action = 'key.create' ORDER BY audit_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited, ["data key 1", "data key 2", "data key 3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_key_fails_at_start_with_a_clear_message() {
    let mut stack = TestStack::start().await;
    ingest_sample_files(&stack, &sample_files()).await;
    let keyring = stack.keyring.clone().unwrap();
    let dir = keyring.parent().unwrap().to_path_buf();

    // Missing.
    let missing = dir.join("nowhere.json");
    let log = stack.start_aggregator_expecting_failure(&[(
        "ORGTRAIL_ENCRYPTION__KEYRING".into(),
        missing.display().to_string(),
    )]);
    assert!(
        log.contains("cannot read the keyring") && log.contains("keys init"),
        "{log}"
    );

    // Another keyring.
    let other = dir.join("other.json");
    let made = std::process::Command::new(orgtrail_tests::binary("orgtrail-aggregator"))
        .args(["keys", "init", "--keyring"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let log = stack.start_aggregator_expecting_failure(&[(
        "ORGTRAIL_ENCRYPTION__KEYRING".into(),
        other.display().to_string(),
    )]);
    assert!(
        log.contains("data key 1 is wrapped by master key")
            && log.contains("which the keyring does not hold"),
        "{log}"
    );

    // The right key id with other key material.
    let mut text = std::fs::read_to_string(&keyring).unwrap();
    let key_start = text.find("\"key\": \"").unwrap() + 8;
    let replacement = if &text[key_start..key_start + 1] == "A" {
        "B"
    } else {
        "A"
    };
    text.replace_range(key_start..key_start + 1, replacement);
    let forged = dir.join("forged.json");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&forged)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }
    let log = stack.start_aggregator_expecting_failure(&[(
        "ORGTRAIL_ENCRYPTION__KEYRING".into(),
        forged.display().to_string(),
    )]);
    assert!(
        log.contains("data key 1 does not unwrap with master key"),
        "{log}"
    );

    // The right keyring, readable by others: refused until it is private again.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = stack.start_aggregator_expecting_failure(&[]);
    assert!(log.contains("is readable by others"), "{log}");
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o600)).unwrap();
    stack.restart_aggregator();
    assert!(!records_through_the_api(&stack).await.is_empty());
}
