//! Records sealed at rest, as tests see them: every record read back through the API, the
//! records expected from sample files, the check that no plaintext is stored, and AWS KMS keys
//! in moto for stacks whose master key is KMS.

use std::collections::BTreeMap;

use orgtrail_api::v1 as pb;
use orgtrail_domain::EventId;

use crate::organization::{moto_sdk_config, test_credentials};
use crate::samples::{expected_store, record_event_id, SampleFile};
use crate::TestStack;

/// Every stored record, read through the API, by eventID.
pub async fn records_through_the_api(stack: &TestStack) -> BTreeMap<String, String> {
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

pub fn expected_records(files: &[SampleFile]) -> BTreeMap<String, String> {
    expected_store(files)
        .events
        .into_iter()
        .map(|(id, event)| (id, event.record))
        .collect()
}

/// Every row names its data key, and over every row: no field name every CloudTrail record
/// has, no eventID of its own, and no 32-byte window of its own record (taken at the start, the
/// middle and the end) is in the stored bytes.
pub async fn assert_sealed_at_rest(stack: &TestStack, expected: &BTreeMap<String, String>) {
    let pool = stack.pool().await;
    let (rows, sealed): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE key_id IS NOT NULL) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
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
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(found, 0, "{marker:?} is stored in the clear");
    }
    let own_id: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE position(convert_to(event_id::text, 'UTF8') IN record) > 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(own_id, 0);
    // Each row against its own record: no 32-byte window of the record's text (taken at the
    // start, the middle and the end) is in it.
    let mut ids = Vec::new();
    let mut windows = Vec::new();
    for (event_id, record) in expected {
        let id = EventId::from_cloudtrail(event_id)
            .unwrap_or_else(|| panic!("{event_id} is not an eventID"))
            .as_uuid();
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
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        found, 0,
        "a piece of a sample record is stored in the clear"
    );
}

/// An AWS KMS key in moto that a stack's records are sealed under.
#[derive(Clone, Debug)]
pub struct KmsKey {
    pub endpoint: String,
    /// As the aggregator is configured with it (an ARN, a key id or an alias).
    pub key_id: String,
    /// The key's ARN, as `data_keys.wrapped_by` names it after `kms:`.
    pub arn: String,
}

impl KmsKey {
    /// A new symmetric key in moto, configured by its alias `alias/<alias>`.
    pub async fn create(endpoint: &str, alias: &str) -> KmsKey {
        let client = kms_client(endpoint).await;
        let created = client
            .create_key()
            .description("orgtrail test master key")
            .send()
            .await
            .unwrap_or_else(|error| panic!("moto: CreateKey: {error:?}"));
        let metadata = created
            .key_metadata()
            .unwrap_or_else(|| panic!("moto: CreateKey answered no key"));
        let alias = format!("alias/{alias}");
        client
            .create_alias()
            .alias_name(&alias)
            .target_key_id(metadata.key_id())
            .send()
            .await
            .unwrap_or_else(|error| panic!("moto: CreateAlias: {error:?}"));
        KmsKey {
            endpoint: endpoint.to_string(),
            key_id: alias,
            arn: metadata
                .arn()
                .unwrap_or_else(|| panic!("moto: the key has no ARN"))
                .to_string(),
        }
    }

    /// The aggregator's environment for this key (moto's test credentials included).
    pub fn environment(&self) -> Vec<(String, String)> {
        [
            ("ORGTRAIL_ENCRYPTION__KMS_KEY_ID", self.key_id.as_str()),
            ("ORGTRAIL_ENCRYPTION__KMS_ENDPOINT", self.endpoint.as_str()),
            ("ORGTRAIL_ENCRYPTION__KMS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
    }
}

pub async fn kms_client(endpoint: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&moto_sdk_config(endpoint, test_credentials()).await)
}
