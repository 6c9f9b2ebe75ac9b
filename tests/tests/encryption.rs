//! Records encrypted at rest: the record column holds no plaintext of any sample record; after
//! data key rotations (with and without re-encryption) every event reads back byte for byte;
//! a wrong or missing key stops the aggregator at start with a clear message.

use std::time::Duration;

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::key_service_client::KeyServiceClient;
use orgtrail_tests::cli_process::run_orgtrail;
use orgtrail_tests::samples::sample_files;
use orgtrail_tests::sealing::{assert_sealed_at_rest, expected_records, records_through_the_api};
use orgtrail_tests::{ingest_sample_files, TestStack, WAIT};

const BOUND: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_column_holds_no_plaintext_of_any_sample_record() {
    let stack = TestStack::start().await;
    let files = sample_files();
    ingest_sample_files(&stack, &files).await;
    let expected = expected_records(&files);

    assert_sealed_at_rest(&stack, &expected).await;

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
