//! Records sealed under data keys from AWS KMS (moto's KMS on loopback): envelope encryption
//! end to end, rotation, moving a keyring-encrypted database to KMS, and the KMS failures that
//! must stop a start with a clear message.

use std::time::Duration;

use aws_sdk_kms::primitives::Blob;
use orgtrail_aggregator::crypto::RecordCipher;
use orgtrail_api::v1 as pb;
use orgtrail_api::v1::quarantine_service_client::QuarantineServiceClient;
use orgtrail_client::SenderSettings;
use orgtrail_tests::cli_process::run_orgtrail;
use orgtrail_tests::memory_file::{gzip, log_file_json, MemoryLogFile};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::samples::sample_files;
use orgtrail_tests::sealing::{
    assert_sealed_at_rest, expected_records, kms_client, records_through_the_api, KmsKey,
};
use orgtrail_tests::{ingest_sample_files, send_all, StackOptions, TestStack, WAIT};
use sqlx::PgPool;

const BOUND: Duration = Duration::from_secs(60);

/// The stored data keys: (key id, wrapped key, wrapped by).
async fn data_keys(pool: &PgPool) -> Vec<(i32, Vec<u8>, String)> {
    sqlx::query_as("SELECT key_id, wrapped_key, wrapped_by FROM data_keys ORDER BY key_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn events_per_key(pool: &PgPool) -> Vec<(Option<i32>, i64)> {
    sqlx::query_as("SELECT key_id, count(*) FROM events GROUP BY key_id ORDER BY key_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn rotate(stack: &TestStack, reencrypt: bool) {
    let endpoint = stack.endpoint();
    let mut arguments = vec!["--endpoint", endpoint.as_str(), "keys", "rotate"];
    if reencrypt {
        arguments.push("--reencrypt");
    }
    let rotated = run_orgtrail(&arguments, BOUND);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
}

/// Waits (bounded) until every event is under the newest data key.
async fn wait_until_all_under(pool: &PgPool, key_id: i32, events: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let per_key = events_per_key(pool).await;
        if per_key == [(Some(key_id), events as i64)] {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "re-encryption under data key {key_id} did not end within {WAIT:?}: {per_key:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_sealed_under_data_keys_that_only_kms_opens() {
    let moto = MotoServer::start();
    let kms = KmsKey::create(&moto.endpoint(), "orgtrail-records").await;
    let mut stack = TestStack::start_with(StackOptions {
        kms: Some(kms.clone()),
        ..Default::default()
    })
    .await;
    let files = sample_files();
    ingest_sample_files(&stack, &files).await;
    let expected = expected_records(&files);

    // One data key, stored only as KMS's ciphertext, named by the key's ARN (the alias the
    // aggregator was given is resolved by KMS).
    let pool = stack.pool().await;
    let keys = data_keys(&pool).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (key_id, wrapped, wrapped_by) = &keys[0];
    assert_eq!(wrapped_by, &format!("kms:{}", kms.arn));
    assert_ne!(wrapped.len(), 32, "a bare key is stored");
    assert_sealed_at_rest(&stack, &expected).await;
    assert_eq!(records_through_the_api(&stack).await, expected);

    // Envelope encryption for real: KMS itself opens the stored data key (with orgtrail's
    // encryption context, and not without it), and that key opens the stored records.
    let client = kms_client(&kms.endpoint).await;
    let without_context = client
        .decrypt()
        .ciphertext_blob(Blob::new(wrapped.clone()))
        .send()
        .await;
    assert!(without_context.is_err(), "opened without the context");
    let opened = client
        .decrypt()
        .ciphertext_blob(Blob::new(wrapped.clone()))
        .encryption_context("orgtrail", "record-data-key")
        .send()
        .await
        .unwrap();
    let data_key: [u8; 32] = opened.plaintext().unwrap().as_ref().try_into().unwrap();
    let cipher = RecordCipher::new();
    cipher.install(*key_id, &data_key);
    let rows: Vec<(uuid::Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT event_id, record FROM events ORDER BY event_id LIMIT 20")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (event_id, sealed) in rows {
        let record = cipher.open(*key_id, event_id, &sealed).unwrap();
        assert!(expected.values().any(|text| text.as_bytes() == record));
    }

    // A restart opens the key through KMS again and makes no new one (same master).
    stack.restart_aggregator();
    assert_eq!(records_through_the_api(&stack).await, expected);
    assert_eq!(data_keys(&pool).await.len(), 1);

    // Rotation with re-encryption: a second KMS data key, every row under it.
    rotate(&stack, true);
    let keys = data_keys(&pool).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].2, format!("kms:{}", kms.arn));
    wait_until_all_under(&pool, 2, expected.len()).await;
    stack.restart_aggregator();
    assert_eq!(records_through_the_api(&stack).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_database_moves_to_kms_without_losing_an_event() {
    let moto = MotoServer::start();
    let kms = KmsKey::create(&moto.endpoint(), "orgtrail-move").await;
    let mut stack = TestStack::start().await;
    let files = sample_files();
    let (first, second) = files.split_at(files.len() / 2);
    ingest_sample_files(&stack, first).await;
    let pool = stack.pool().await;
    let keyring_master = data_keys(&pool).await[0].2.clone();
    assert!(!keyring_master.starts_with("kms:"), "{keyring_master}");
    // A refused record, kept sealed in the quarantine under the keyring's data key too.
    let sender = stack.ingest_sender(SenderSettings::default()).await;
    let refused = r#"{"eventVersion":"1.08","eventName":"QuarantineMarkerWithoutEventId"}"#;
    let sent = send_all(
        &sender,
        vec![MemoryLogFile::shared(
            "kms-bucket",
            "AWSLogs/123837392027/CloudTrail/us-east-1/2024/01/01/refused.json.gz",
            gzip(&log_file_json(&[refused])),
        )],
    )
    .await;
    assert!(sent[0].result.is_ok(), "{:?}", sent[0].result);
    let (quarantine_id, quarantine_key): (i64, Option<i32>) = sqlx::query_as(
        "SELECT quarantine_id, key_id FROM quarantine WHERE object_key LIKE '%/refused.json.gz'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(quarantine_key, Some(1));

    // KMS beside the keyring: at start a KMS data key becomes the active one at once.
    for (name, value) in kms.environment() {
        stack.set_aggregator_environment(&name, Some(&value));
    }
    stack.restart_aggregator();
    let keys = data_keys(&pool).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[1].2, format!("kms:{}", kms.arn));
    ingest_sample_files(&stack, second).await;
    let per_key = events_per_key(&pool).await;
    assert_eq!(
        per_key.iter().map(|(key, _)| *key).collect::<Vec<_>>(),
        [Some(1), Some(2)],
        "{per_key:?}"
    );
    let expected = expected_records(&files);
    assert_eq!(records_through_the_api(&stack).await, expected);

    // Without the keyring, the keyring's data key cannot be opened: the start says so.
    stack.set_aggregator_environment("ORGTRAIL_ENCRYPTION__KEYRING", None);
    let log = stack.start_aggregator_expecting_failure(&[]);
    assert!(
        log.contains("data key 1 is wrapped by the keyring master key")
            && log.contains("encryption.keyring is not set"),
        "{log}"
    );

    // Re-encryption moves every row to a KMS data key; then the keyring can go.
    let keyring = stack.keyring.clone().unwrap();
    stack.set_aggregator_environment(
        "ORGTRAIL_ENCRYPTION__KEYRING",
        Some(&keyring.display().to_string()),
    );
    stack.restart_aggregator();
    rotate(&stack, true);
    wait_until_all_under(&pool, 3, expected.len()).await;
    // Once the rotation has settled, the data keys nothing is sealed with are retired (bounded
    // wait: the settle time is 25 s).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let retired: Vec<i32> = sqlx::query_scalar(
            "SELECT key_id FROM data_keys WHERE retired_at IS NOT NULL ORDER BY key_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if retired == [1, 2] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "data keys 1 and 2 were not retired within {WAIT:?}: {retired:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = run_orgtrail(
        &[
            "--endpoint",
            &stack.endpoint(),
            "keys",
            "list",
            "--output",
            "json",
        ],
        BOUND,
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let retired: Vec<bool> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["retired"].as_bool().unwrap())
        .collect();
    assert_eq!(retired, [true, true, false], "{listed}");
    // The quarantine's kept contents were re-encrypted too.
    let quarantine_keys: Vec<Option<i32>> =
        sqlx::query_scalar("SELECT DISTINCT key_id FROM quarantine WHERE content IS NOT NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(quarantine_keys, [Some(3)]);
    // The keyring is no longer needed.
    stack.set_aggregator_environment("ORGTRAIL_ENCRYPTION__KEYRING", None);
    stack.restart_aggregator();
    let shown = QuarantineServiceClient::new(stack.channel().await)
        .get_quarantined(pb::GetQuarantinedRequest { quarantine_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(String::from_utf8_lossy(&shown.content), refused);
    assert_eq!(records_through_the_api(&stack).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_failures_stop_the_start_with_a_clear_message() {
    let moto = MotoServer::start();
    let kms = KmsKey::create(&moto.endpoint(), "orgtrail-failures").await;
    let mut stack = TestStack::start_with(StackOptions {
        kms: Some(kms.clone()),
        ..Default::default()
    })
    .await;
    ingest_sample_files(&stack, &sample_files()).await;

    // A key that does not exist.
    let log = stack.start_aggregator_expecting_failure(&[(
        "ORGTRAIL_ENCRYPTION__KMS_KEY_ID".into(),
        "alias/nobody-made-this".into(),
    )]);
    assert!(
        log.contains("AWS KMS GenerateDataKey with key alias/nobody-made-this failed")
            && log.contains("NotFoundException")
            && log.contains("there is no such key"),
        "{log}"
    );

    // KMS out of reach (a closed port): refused within the KMS call's bounds, saying where.
    let closed = format!("http://127.0.0.1:{}", orgtrail_tests::stack::free_port());
    let log = stack.start_aggregator_expecting_failure(&[(
        "ORGTRAIL_ENCRYPTION__KMS_ENDPOINT".into(),
        closed.clone(),
    )]);
    assert!(
        log.contains("AWS KMS Decrypt") && log.contains(&format!("cannot reach {closed}")),
        "{log}"
    );

    // Another KMS (the keys this database was sealed under are not there): its own key makes
    // new data keys, but the stored data key does not open.
    let other_moto = MotoServer::start();
    let other = KmsKey::create(&other_moto.endpoint(), "orgtrail-failures").await;
    let log = stack.start_aggregator_expecting_failure(&other.environment());
    assert!(
        log.contains(&format!("AWS KMS Decrypt with key {} failed", kms.arn)),
        "{log}"
    );

    // No KMS configured at all, only a keyring.
    let keyring_dir = std::env::temp_dir().join(format!(
        "orgtrail-test-kms-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&keyring_dir).unwrap();
    let keyring = keyring_dir.join("keyring.json");
    let made = std::process::Command::new(orgtrail_tests::binary("orgtrail-aggregator"))
        .args(["keys", "init", "--keyring"])
        .arg(&keyring)
        .output()
        .unwrap();
    assert!(made.status.success());
    stack.set_aggregator_environment("ORGTRAIL_ENCRYPTION__KMS_KEY_ID", None);
    stack.set_aggregator_environment("ORGTRAIL_ENCRYPTION__KMS_ENDPOINT", None);
    stack.set_aggregator_environment("ORGTRAIL_ENCRYPTION__KMS_REGION", None);
    let log = stack.start_aggregator_expecting_failure(&[(
        "ORGTRAIL_ENCRYPTION__KEYRING".into(),
        keyring.display().to_string(),
    )]);
    assert!(
        log.contains(&format!(
            "data key 1 is wrapped by the AWS KMS key {}, and encryption.kms_key_id is not set",
            kms.arn
        )),
        "{log}"
    );
    std::fs::remove_dir_all(&keyring_dir).unwrap();

    // Nothing was made by the failed starts, and the right configuration still serves.
    for (name, value) in kms.environment() {
        stack.set_aggregator_environment(&name, Some(&value));
    }
    stack.restart_aggregator();
    let pool = stack.pool().await;
    assert_eq!(data_keys(&pool).await.len(), 1);
    assert!(!records_through_the_api(&stack).await.is_empty());
}
