//! A sample AWS Organization in moto, built from the real sample records: three member
//! accounts with two regions each, every account trail in its account's bucket, and an
//! organization trail bucket holding the same files under `AWSLogs/<o-id>/<account>/…` — plus
//! what a collector needs to read it (roles, configuration) and what the store should then hold.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::memory_file::gzip;
use crate::moto::MotoServer;
use crate::samples::{expected_event, sample_files, ExpectedStore, SampleFile};
use crate::test_now;

pub const ORGANIZATION_ID: &str = "o-orgtrail001";
pub const ORGANIZATION_BUCKET: &str = "organization-trail";
/// The account whose role reads the organization trail bucket.
pub const MANAGEMENT_ACCOUNT: &str = "999999999999";
pub const EXTERNAL_ID: &str = "orgtrail-test-external-id";
pub const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// A log file as placed in the organization.
#[derive(Clone, Debug)]
pub struct PlacedFile {
    pub account_id: String,
    pub region: String,
    /// Its key in the account's own bucket.
    pub key: String,
    /// Its key in the organization trail bucket.
    pub organization_key: String,
    pub bytes: Vec<u8>,
    pub records: Vec<String>,
}

pub struct SampleOrganization {
    pub accounts: Vec<String>,
    pub files: Vec<PlacedFile>,
    pub endpoint: String,
}

pub fn account_bucket(account: &str) -> String {
    format!("cloudtrail-{account}")
}

pub fn reader_role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/OrgtrailReader")
}

/// An SDK configuration against moto with the given credentials.
pub async fn moto_sdk_config(endpoint: &str, credentials: Credentials) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

pub fn test_credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "test")
}

pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = moto_sdk_config(endpoint, test_credentials()).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

impl SampleOrganization {
    /// Places the sample files: GRyCAP's account keeps its own two regions, Invictus's
    /// account and a third account (Stratus Red Team and AWS documentation records) have their
    /// files spread over two regions; the AWS documentation Insight example goes to
    /// `CloudTrail-Insight/`, and each account also gets a digest file, which is not ingested.
    pub async fn seed(moto: &MotoServer) -> SampleOrganization {
        let endpoint = moto.endpoint();
        let mut files = Vec::new();
        for (position, sample) in sample_files().into_iter().enumerate() {
            files.push(place(sample, position));
        }
        let accounts: Vec<String> = {
            let mut accounts: Vec<String> =
                files.iter().map(|file| file.account_id.clone()).collect();
            accounts.sort();
            accounts.dedup();
            accounts
        };
        let organization = SampleOrganization {
            accounts,
            files,
            endpoint,
        };
        let s3 = s3_client(&organization.endpoint).await;
        for bucket in organization
            .accounts
            .iter()
            .map(|account| account_bucket(account))
            .chain([ORGANIZATION_BUCKET.to_string()])
        {
            s3.create_bucket()
                .bucket(&bucket)
                .send()
                .await
                .unwrap_or_else(|error| panic!("cannot create bucket {bucket}: {error:?}"));
        }
        for file in &organization.files {
            organization.upload(&s3, file).await;
        }
        for account in &organization.accounts {
            let digest_key = format!(
                "AWSLogs/{account}/CloudTrail-Digest/us-east-1/2024/01/01/{account}_CloudTrail-Digest_us-east-1_trail_us-east-1_20240101T010000Z.json.gz"
            );
            let digest = gzip(format!(r#"{{"awsAccountId":"{account}","digestStartTime":"2024-01-01T00:00:00Z","logFiles":[]}}"#).as_bytes());
            put(&s3, &account_bucket(account), &digest_key, digest).await;
        }
        organization
    }

    /// A generated organization for benchmarks: `accounts` × `regions`, each region folder
    /// holding `files_per_region` files of `records_per_file` records of the samples' shapes,
    /// in the account trails only.
    /// With `large_file_records` > 0, the first account's first region also gets one file of
    /// that many records (CloudTrail's largest files reach 50 MB compressed).
    pub async fn seed_generated(
        moto: &MotoServer,
        accounts: usize,
        regions: &[&str],
        files_per_region: usize,
        records_per_file: usize,
        large_file_records: usize,
    ) -> SampleOrganization {
        let endpoint = moto.endpoint();
        let account_ids: Vec<String> = (0..accounts)
            .map(|number| format!("{:012}", 200_000_000_000u64 + number as u64 * 7_919))
            .collect();
        let delivered = test_now() - chrono::Duration::hours(1);
        let mut files = Vec::new();
        for account in &account_ids {
            for region in regions {
                for file in 0..files_per_region {
                    let time = delivered + chrono::Duration::minutes(5 * file as i64);
                    files.push(new_log_file(
                        account,
                        region,
                        time,
                        fresh_records(records_per_file, Some(time)),
                    ));
                }
            }
        }
        if large_file_records > 0 {
            if let (Some(account), Some(region)) = (account_ids.first(), regions.first()) {
                files.push(new_log_file(
                    account,
                    region,
                    delivered,
                    fresh_records(large_file_records, Some(delivered)),
                ));
            }
        }
        let organization = SampleOrganization {
            accounts: account_ids,
            files,
            endpoint,
        };
        let s3 = s3_client(&organization.endpoint).await;
        for account in &organization.accounts {
            let bucket = account_bucket(account);
            s3.create_bucket()
                .bucket(&bucket)
                .send()
                .await
                .unwrap_or_else(|error| panic!("cannot create bucket {bucket}: {error:?}"));
        }
        futures::stream::iter(&organization.files)
            .for_each_concurrent(8, |file| {
                let s3 = s3.clone();
                async move {
                    put(
                        &s3,
                        &account_bucket(&file.account_id),
                        &file.key,
                        file.bytes.clone(),
                    )
                    .await
                }
            })
            .await;
        organization
    }

    /// Writes a file to its account's bucket and to the organization trail bucket.
    pub async fn upload(&self, s3: &aws_sdk_s3::Client, file: &PlacedFile) {
        put(
            s3,
            &account_bucket(&file.account_id),
            &file.key,
            file.bytes.clone(),
        )
        .await;
        put(
            s3,
            ORGANIZATION_BUCKET,
            &file.organization_key,
            file.bytes.clone(),
        )
        .await;
    }

    /// What the store must hold once everything was read: every distinct event of the
    /// placed files (records without a recipientAccountId take their key's account).
    pub fn expected_store(&self) -> ExpectedStore {
        let samples: Vec<SampleFile> = self
            .files
            .iter()
            .map(|file| SampleFile {
                path: file.key.clone().into(),
                key: file.key.clone(),
                bytes: file.bytes.clone(),
                records: file.records.clone(),
            })
            .collect();
        crate::samples::expected_store(&samples)
    }

    /// A collector configuration reading every account trail (a template over the member
    /// accounts, plus `extra_accounts`) and the organization trail.
    pub fn collector_config(
        &self,
        collector_id: &str,
        aggregator_endpoint: &str,
        extra_accounts: &[&str],
    ) -> String {
        let mut config =
            self.account_trails_config(collector_id, aggregator_endpoint, extra_accounts);
        config.push_str(&format!(
            r#"
[[sources]]
name = "organization-trail"
bucket = "{ORGANIZATION_BUCKET}"
bucket_region = "us-east-1"
role_arn = "{management_role}"
external_id = "{EXTERNAL_ID}"
"#,
            management_role = reader_role(MANAGEMENT_ACCOUNT),
        ));
        config
    }

    /// A collector configuration reading the account trails only.
    pub fn account_trails_config(
        &self,
        collector_id: &str,
        aggregator_endpoint: &str,
        extra_accounts: &[&str],
    ) -> String {
        let mut accounts: Vec<String> = self
            .accounts
            .iter()
            .map(|account| format!("\"{account}\""))
            .collect();
        accounts.extend(
            extra_accounts
                .iter()
                .map(|account| format!("\"{account}\"")),
        );
        format!(
            r#"collector_id = "{collector_id}"
poll_interval_seconds = 1
lease_seconds = 10
max_concurrent_sources = 3

[aggregator]
endpoint = "{aggregator_endpoint}"
streams = 2
{tls}
[aws]
region = "us-east-1"
endpoint_url = "{endpoint}"

# The organization's digest files are placeholders (they only show that digests are not
# ingested); digest validation has a trail of its own in tests/tests/digest_validation.rs.
[integrity]
validate_digests = false

[log]
level = "info"
format = "json"

[[sources]]
name = "member-{{account}}"
bucket = "cloudtrail-{{account}}"
bucket_region = "us-east-1"
role_arn = "arn:aws:iam::{{account}}:role/OrgtrailReader"
external_id = "{EXTERNAL_ID}"
accounts = [{accounts}]
"#,
            accounts = accounts.join(", "),
            endpoint = self.endpoint,
            tls = if aggregator_endpoint.starts_with("http://") {
                "insecure = true\n".to_string()
            } else {
                crate::pki::collector_tls_toml(crate::pki::ClientIdentity::Collector)
            },
        )
    }
}

impl SampleOrganization {
    /// Creates the reader role (trusting the security account, allowed to list and read
    /// buckets) in each of `accounts`, the way the member-account template does.
    pub async fn create_reader_roles(&self, accounts: &[&str]) {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
        let read = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject","s3:GetBucketLocation"],"Resource":"*"}]}"#;
        let base = moto_sdk_config(&self.endpoint, test_credentials()).await;
        let sts = aws_sdk_sts::Client::new(&base);
        for account in accounts {
            // Before IAM is enforced, moto lets anyone into any account.
            let assumed = sts
                .assume_role()
                .role_arn(format!("arn:aws:iam::{account}:role/Administrator"))
                .role_session_name("organization-setup")
                .send()
                .await
                .unwrap_or_else(|error| panic!("cannot enter account {account}: {error:?}"));
            let credentials = assumed
                .credentials()
                .unwrap_or_else(|| panic!("no credentials for {account}"));
            let config = moto_sdk_config(
                &self.endpoint,
                Credentials::new(
                    credentials.access_key_id(),
                    credentials.secret_access_key(),
                    Some(credentials.session_token().to_string()),
                    None,
                    "setup",
                ),
            )
            .await;
            let iam = aws_sdk_iam::Client::new(&config);
            iam.create_role()
                .role_name("OrgtrailReader")
                .assume_role_policy_document(trust)
                .send()
                .await
                .unwrap_or_else(|error| {
                    panic!("cannot create the reader role in {account}: {error:?}")
                });
            iam.put_role_policy()
                .role_name("OrgtrailReader")
                .policy_name("read-cloudtrail")
                .policy_document(read)
                .send()
                .await
                .unwrap_or_else(|error| {
                    panic!("cannot give the reader role its policy in {account}: {error:?}")
                });
        }
    }

    /// An IAM user of the security account allowed to assume exactly `roles`: the
    /// collector's base credentials.
    pub async fn create_collector_user(
        &self,
        roles: &[String],
    ) -> crate::collector_process::BaseCredentials {
        let base = moto_sdk_config(&self.endpoint, test_credentials()).await;
        let iam = aws_sdk_iam::Client::new(&base);
        iam.create_user()
            .user_name("orgtrail-collector")
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot create the collector user: {error:?}"));
        let resources: Vec<String> = roles.iter().map(|role| format!("\"{role}\"")).collect();
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":[{}]}}]}}"#,
            resources.join(",")
        );
        iam.put_user_policy()
            .user_name("orgtrail-collector")
            .policy_name("assume-readers")
            .policy_document(policy)
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot give the collector user its policy: {error:?}"));
        let key = iam
            .create_access_key()
            .user_name("orgtrail-collector")
            .send()
            .await
            .unwrap_or_else(|error| panic!("cannot create the collector's access key: {error:?}"));
        let key = key.access_key().unwrap_or_else(|| panic!("no access key"));
        crate::collector_process::BaseCredentials {
            access_key_id: key.access_key_id().to_string(),
            secret_access_key: key.secret_access_key().to_string(),
        }
    }
}

/// Real sample records, each given a fresh eventID (and, if given, an eventTime): new events
/// of the sample's shapes.
pub fn fresh_records(count: usize, event_time: Option<DateTime<Utc>>) -> Vec<String> {
    let pool: Vec<String> = sample_files()
        .into_iter()
        .flat_map(|file| file.records)
        .filter(|record| expected_event(record, None).is_some())
        .collect();
    (0..count)
        .map(|number| {
            let mut record: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&pool[number % pool.len()]).unwrap_or_default();
            record.insert("eventID".into(), uuid::Uuid::new_v4().to_string().into());
            if let Some(time) = event_time {
                record.insert(
                    "eventTime".into(),
                    time.format("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
                );
            }
            serde_json::to_string(&record).unwrap_or_default()
        })
        .collect()
}

/// A new log file of `records` for `account` and `region`, delivered at `delivered`.
pub fn new_log_file(
    account: &str,
    region: &str,
    delivered: DateTime<Utc>,
    records: Vec<String>,
) -> PlacedFile {
    let key = format!(
        "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{}.json.gz",
        delivered.format("%Y/%m/%d"),
        delivered.format("%Y%m%dT%H%MZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    PlacedFile {
        account_id: account.to_string(),
        region: region.to_string(),
        organization_key: key.replacen("AWSLogs/", &format!("AWSLogs/{ORGANIZATION_ID}/"), 1),
        key,
        bytes: gzip(&crate::memory_file::log_file_json(&refs)),
        records,
    }
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap_or_else(|error| panic!("cannot put s3://{bucket}/{key}: {error:?}"));
}

/// Where a sample file goes in the organization.
fn place(sample: SampleFile, position: usize) -> PlacedFile {
    let insight = sample.key.contains("Insight");
    let (account, region, key) = match sample.key_account_and_region() {
        // GRyCAP's account keeps its native keys and regions.
        Some((account, _)) if account == "974349055189" => {
            let key = sample.key[sample.key.find("AWSLogs/").unwrap_or(0)..].to_string();
            let region = key.split('/').nth(3).unwrap_or_default().to_string();
            (account, region, key)
        }
        // Invictus's account: its native file names, spread over two regions.
        Some((account, _)) => {
            let region = REGIONS[position % 2];
            let native = &sample.key[sample.key.find("AWSLogs/").unwrap_or(0)..];
            let key = native.replace("us-east-1", region);
            (account, region.to_string(), key)
        }
        // Stratus Red Team and the AWS documentation: a third account, CloudTrail's names.
        // (Not 123456789012, moto's own account, in which moto refuses AssumeRole.)
        None => {
            let account = "345678901234".to_string();
            let region = if insight {
                "us-east-1"
            } else {
                REGIONS[position % 2]
            };
            let delivered = newest_event_time(&sample.records) + chrono::Duration::minutes(5);
            let kind = if insight {
                "CloudTrail-Insight"
            } else {
                "CloudTrail"
            };
            let key = format!(
                "AWSLogs/{account}/{kind}/{region}/{}/{account}_{kind}_{region}_{}_{:016}.json.gz",
                delivered.format("%Y/%m/%d"),
                delivered.format("%Y%m%dT%H%MZ"),
                position
            );
            (account, region.to_string(), key)
        }
    };
    let organization_key = key.replacen("AWSLogs/", &format!("AWSLogs/{ORGANIZATION_ID}/"), 1);
    PlacedFile {
        account_id: account,
        region,
        key,
        organization_key,
        bytes: sample.bytes,
        records: sample.records,
    }
}

fn newest_event_time(records: &[String]) -> DateTime<Utc> {
    records
        .iter()
        .filter_map(|record| expected_event(record, None))
        .map(|event| event.event_time)
        .max()
        .unwrap_or_else(|| DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default())
}
