//! The collector against moto's S3/STS and a running aggregator: a sample organization of
//! three accounts × two regions (account trails and an organization trail holding the same
//! files) read exactly once, incrementally, through failures, kills, restarts and a second
//! collector.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::source_service_client::SourceServiceClient;
use orgtrail_tests::cli_process::run_orgtrail;
use orgtrail_tests::collector_process::{run_collector_once, BaseCredentials, CollectorProcess};
use orgtrail_tests::moto::MotoServer;
use orgtrail_tests::organization::{
    account_bucket, fresh_records, new_log_file, reader_role, s3_client, SampleOrganization,
    MANAGEMENT_ACCOUNT,
};
use orgtrail_tests::samples::expected_event;
use orgtrail_tests::stack::free_port;
use orgtrail_tests::{probe_channel, probe_health, scrape_metrics, test_now, TestStack, WAIT};

const BOUND: Duration = Duration::from_secs(300);

/// `orgtrail-collector --once`, run off the async runtime; a run that takes longer than
/// [`BOUND`] fails the test with the collector's and the aggregator's logs.
async fn collect_once(stack: &TestStack, config: String, credentials: BaseCredentials) -> Output {
    let run = tokio::task::spawn_blocking(move || run_collector_once(&config, &credentials, BOUND))
        .await
        .unwrap();
    match run {
        Ok(output) => output,
        Err(output) => {
            let sessions: Vec<(String, String, String, String)> = sqlx::query_as(
                "SELECT coalesce(state, ''), coalesce(wait_event_type || ':' || wait_event, ''),
                        coalesce((now() - xact_start)::text, ''), left(query, 200)
                 FROM pg_stat_activity WHERE datname = current_database()",
            )
            .fetch_all(&stack.pool().await)
            .await
            .unwrap_or_default();
            panic!(
                "orgtrail-collector --once took longer than {BOUND:?}:\n{}\nPostgreSQL sessions: {sessions:#?}\naggregator:\n{}",
                text(&output.stderr),
                stack.aggregator_log()
            )
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The --once summary: per source, its status and counts.
fn summary(output: &Output) -> BTreeMap<String, Vec<String>> {
    text(&output.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::to_string);
            Some((fields.next()?, fields.collect()))
        })
        .collect()
}

/// A counter of the summary (`listed`, `new`, `committed`, `already`, `events`), summed.
fn total(output: &Output, column: &str) -> u64 {
    let columns = [
        "status",
        "listed",
        "new",
        "committed",
        "already",
        "events",
        "duplicates",
        "rejected",
        "faults",
    ];
    let position = columns.iter().position(|name| *name == column).unwrap();
    summary(output)
        .values()
        .map(|fields| {
            fields
                .get(position)
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// SHA-256 of a log file's content, gunzipped when it is gzip'd.
fn uncompressed_sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut content = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(bytes), &mut content)
            .expect("the sample file gunzips");
    } else {
        content.extend_from_slice(bytes);
    }
    sha2::Sha256::digest(&content).to_vec()
}

/// A ledger row's bucket, key, S3 LastModified and commit time.
type LedgerTimes = (
    String,
    String,
    Option<chrono::DateTime<chrono::Utc>>,
    chrono::DateTime<chrono::Utc>,
);

async fn ledger_rows(stack: &TestStack) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM log_files")
        .fetch_one(&stack.pool().await)
        .await
        .unwrap()
}

async fn source_status(stack: &TestStack) -> Vec<pb::SourceStatus> {
    SourceServiceClient::new(stack.channel().await)
        .list_sources(pb::ListSourcesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sources
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_stores_every_distinct_event_once_and_the_next_finds_what_came_later() {
    let moto = MotoServer::start();
    let organization = SampleOrganization::seed(&moto).await;
    let metrics_port = free_port();
    let stack = TestStack::start_with(orgtrail_tests::stack::StackOptions {
        environment: vec![(
            "ORGTRAIL_SERVER__METRICS_LISTEN".into(),
            format!("127.0.0.1:{metrics_port}"),
        )],
        ..Default::default()
    })
    .await;
    let config = organization.collector_config("collector-a", &stack.endpoint(), &[]);
    let mut expected = organization.expected_store();
    assert!(organization.accounts.len() >= 3);

    let first = collect_once(&stack, config.clone(), BaseCredentials::default()).await;
    assert!(
        first.status.success(),
        "{}\n{}",
        text(&first.stdout),
        text(&first.stderr)
    );
    let want: std::collections::HashSet<String> = expected.events.keys().cloned().collect();
    assert_eq!(stack.stored_event_ids().await, want);
    // Each file once from its account's bucket and once from the organization trail.
    assert_eq!(
        ledger_rows(&stack).await as usize,
        2 * organization.files.len()
    );
    assert_eq!(
        total(&first, "committed") as usize,
        2 * organization.files.len()
    );
    let pool = stack.pool().await;
    let insights: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_category = 'Insight'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(insights, 2, "the Insight file's records are Insight events");
    let digests: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM log_files WHERE object_key LIKE '%CloudTrail-Digest%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(digests, 0, "digest files are not ingested");

    // The ledger keeps each file's SHA-256 of its uncompressed content (what a CloudTrail
    // digest lists as its hashValue), from both of its copies.
    let hashes: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT object_key, content_sha256 FROM log_files")
            .fetch_all(&pool)
            .await
            .unwrap();
    for file in &organization.files {
        let expected = uncompressed_sha256(&file.bytes);
        for key in [&file.key, &file.organization_key] {
            let stored = hashes
                .iter()
                .find(|(object_key, _)| object_key == key)
                .unwrap_or_else(|| panic!("{key} is not in the ledger"));
            assert_eq!(stored.1.as_deref(), Some(expected.as_slice()), "{key}");
        }
    }

    // Every account and region has its status, with the last file taken.
    let statuses = source_status(&stack).await;
    for file in &organization.files {
        let status = statuses
            .iter()
            .find(|status| {
                status.source == format!("member-{}", file.account_id)
                    && status.aws_region == file.region
            })
            .unwrap_or_else(|| panic!("no status for {} {}", file.account_id, file.region));
        assert!(status.last_error.is_empty(), "{status:?}");
        assert!(!status.last_object_key.is_empty());
        assert!(status.last_success_at.is_some());
    }

    // Operators see the same through the command line.
    let endpoint = stack.endpoint();
    let listed = tokio::task::spawn_blocking(move || {
        run_orgtrail(
            &[
                "--endpoint",
                &endpoint,
                "sources",
                "list",
                "--output",
                "json",
            ],
            BOUND,
        )
    })
    .await
    .unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    for file in &organization.files {
        let row = rows
            .iter()
            .find(|row| {
                row["source"] == "organization-trail"
                    && row["accountId"] == file.account_id.as_str()
                    && row["awsRegion"] == file.region.as_str()
            })
            .unwrap_or_else(|| panic!("no row for {} {}", file.account_id, file.region));
        assert_eq!(row["status"], "ok");
        assert!(row["lagSeconds"].as_i64().unwrap_or_default() > 0);
        // Freshness: from S3's LastModified to the commit, of the newest file and over a day.
        for field in ["freshnessSeconds", "freshnessP95Seconds"] {
            let seconds = row[field].as_f64();
            assert!(
                seconds.is_some_and(|seconds| seconds >= 0.0),
                "{field}: {row}"
            );
        }
    }

    // Each file's LastModified, as S3 gives it, is in the ledger; the aggregator's histogram
    // counts every committed file of each source.
    let s3 = orgtrail_tests::organization::s3_client(&moto.endpoint()).await;
    let ledger: Vec<LedgerTimes> = sqlx::query_as(
        "SELECT bucket, object_key, object_last_modified, committed_at FROM log_files",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (bucket, key, last_modified, committed_at) in &ledger {
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let listed = head.last_modified().map(|time| time.secs());
        assert_eq!(
            last_modified.map(|time| time.timestamp()),
            listed,
            "{bucket}/{key}"
        );
        assert!(
            last_modified.is_some_and(|time| time <= *committed_at),
            "{key}"
        );
    }
    let metrics = scrape_metrics(metrics_port);
    let counted = format!(
        "orgtrail_ingest_freshness_seconds_count{{source=\"organization-trail\"}} {}",
        organization.files.len()
    );
    assert!(
        metrics.lines().any(|line| line == counted),
        "{counted} in\n{metrics}"
    );

    // A second pass finds nothing new.
    let second = collect_once(&stack, config.clone(), BaseCredentials::default()).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(total(&second, "new"), 0);
    assert_eq!(
        ledger_rows(&stack).await as usize,
        2 * organization.files.len()
    );

    // Files delivered later: a new one, and a late one whose key sorts before the newest
    // already taken (same account and region, earlier in the day).
    let account = "218007301253";
    let region = "us-east-1";
    let newest_taken = statuses
        .iter()
        .find(|status| status.source == format!("member-{account}") && status.aws_region == region)
        .map(|status| status.last_object_key.clone())
        .unwrap();
    let newest_day = organization
        .files
        .iter()
        .filter(|file| file.key == newest_taken)
        .map(|file| file.key.clone())
        .next()
        .unwrap();
    assert!(newest_day.contains("/2023/07/10/"));
    let later = new_log_file(
        account,
        region,
        test_now(),
        fresh_records(30, Some(test_now())),
    );
    let late_time = chrono::DateTime::parse_from_rfc3339("2023-07-10T00:05:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let late = new_log_file(
        account,
        region,
        late_time,
        fresh_records(20, Some(late_time)),
    );
    assert!(
        late.key < newest_taken,
        "{} sorts before {newest_taken}",
        late.key
    );
    let s3 = s3_client(&organization.endpoint).await;
    for file in [&later, &late] {
        organization.upload(&s3, file).await;
        for record in &file.records {
            let event = expected_event(record, None).unwrap();
            expected.events.insert(event.event_id.clone(), event);
        }
    }
    let third = collect_once(&stack, config, BaseCredentials::default()).await;
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert_eq!(
        total(&third, "committed"),
        4,
        "both files, from the account trail and the organization trail"
    );
    let want: std::collections::HashSet<String> = expected.events.keys().cloned().collect();
    assert_eq!(stack.stored_event_ids().await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_be_assumed_and_a_missing_bucket_fail_alone() {
    let moto = MotoServer::start();
    let organization = SampleOrganization::seed(&moto).await;
    let stack = TestStack::start().await;
    let missing_bucket = "444444444444";
    let denied = "555555555555";
    let mut readable: Vec<&str> = organization.accounts.iter().map(String::as_str).collect();
    readable.extend([MANAGEMENT_ACCOUNT, missing_bucket]);
    organization.create_reader_roles(&readable).await;
    let assumable: Vec<String> = readable
        .iter()
        .map(|account| reader_role(account))
        .collect();
    let credentials = organization.create_collector_user(&assumable).await;
    moto.enforce_iam();

    let config =
        organization.collector_config("collector-a", &stack.endpoint(), &[missing_bucket, denied]);
    let output = collect_once(&stack, config, credentials).await;
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "the exit status says not every source was read"
    );
    assert!(
        stderr.contains(&format!(
            "error: member-{denied}: cannot assume role {}: access denied",
            reader_role(denied)
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: member-{missing_bucket}: bucket {} does not exist",
            account_bucket(missing_bucket)
        )),
        "{stderr}"
    );
    let sources = summary(&output);
    assert_eq!(sources[&format!("member-{denied}")][0], "failed");
    assert_eq!(sources[&format!("member-{missing_bucket}")][0], "failed");
    for account in &organization.accounts {
        assert_eq!(
            sources[&format!("member-{account}")][0],
            "read",
            "{account}: {stderr}"
        );
    }
    assert_eq!(sources["organization-trail"][0], "read");

    // The others completed.
    let want: std::collections::HashSet<String> = organization
        .expected_store()
        .events
        .keys()
        .cloned()
        .collect();
    assert_eq!(stack.stored_event_ids().await, want);
    // The errors are in the source status, per source.
    let statuses = source_status(&stack).await;
    let denied_status = statuses
        .iter()
        .find(|status| status.source == format!("member-{denied}"))
        .unwrap();
    assert!(
        denied_status.last_error.contains("access denied"),
        "{denied_status:?}"
    );
    let missing_status = statuses
        .iter()
        .find(|status| status.source == format!("member-{missing_bucket}"))
        .unwrap();
    assert!(
        missing_status.last_error.contains("does not exist"),
        "{missing_status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_killed_mid_file_loses_nothing_and_stores_nothing_twice_when_run_again() {
    let moto = MotoServer::start();
    let organization = SampleOrganization::seed(&moto).await;
    let stack = TestStack::start().await;
    // A large file, so that the kill lands while it streams.
    let big = new_log_file(
        "974349055189",
        "us-east-1",
        test_now(),
        fresh_records(40_000, None),
    );
    organization
        .upload(&s3_client(&organization.endpoint).await, &big)
        .await;
    let mut expected = organization.expected_store();
    for record in &big.records {
        let event = expected_event(record, None).unwrap();
        expected.events.insert(event.event_id.clone(), event);
    }
    let config = organization.collector_config("collector-a", &stack.endpoint(), &[]);

    let mut collector = CollectorProcess::spawn(&config, &BaseCredentials::default(), &["--once"]);
    stack.wait_for_file_in_flight().await;
    collector.signal("KILL");
    collector.wait(WAIT);
    let partial = stack.stored_event_ids().await;
    assert!(
        partial.len() < expected.events.len(),
        "the kill came before the end"
    );

    let output = collect_once(&stack, config, BaseCredentials::default()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let want: std::collections::HashSet<String> = expected.events.keys().cloned().collect();
    assert_eq!(stack.stored_event_ids().await, want);
    assert_eq!(
        ledger_rows(&stack).await as usize,
        2 * (organization.files.len() + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_aggregator_while_a_collector_runs_loses_nothing() {
    let moto = MotoServer::start();
    let organization = SampleOrganization::seed(&moto).await;
    let mut stack = TestStack::start().await;
    let config = organization.collector_config("collector-a", &stack.endpoint(), &[]);
    let mut collector = CollectorProcess::spawn(&config, &BaseCredentials::default(), &[]);
    let files = 2 * organization.files.len() as i64;

    let pool = stack.pool().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while ledger_rows(&stack).await < files / 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "files are not arriving:\n{}",
            collector.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.close().await;
    stack.restart_aggregator();

    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while ledger_rows(&stack).await < files {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every file arrived:\n{}",
            collector.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    collector.signal("TERM");
    assert_eq!(collector.wait(WAIT), Some(0), "{}", collector.log());
    let want: std::collections::HashSet<String> = organization
        .expected_store()
        .events
        .keys()
        .cloned()
        .collect();
    assert_eq!(stack.stored_event_ids().await, want);
    assert_eq!(ledger_rows(&stack).await, files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_over_the_same_sources_read_every_file_once() {
    let moto = MotoServer::start();
    let organization = SampleOrganization::seed(&moto).await;
    let stack = TestStack::start().await;
    let first = collect_once(
        &stack,
        organization.collector_config("collector-a", &stack.endpoint(), &[]),
        BaseCredentials::default(),
    );
    let second = collect_once(
        &stack,
        organization.collector_config("collector-b", &stack.endpoint(), &[]),
        BaseCredentials::default(),
    );
    let (first, second) = tokio::join!(first, second);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(second.status.success(), "{}", text(&second.stderr));

    let files = 2 * organization.files.len() as u64;
    assert_eq!(
        total(&first, "committed") + total(&second, "committed"),
        files,
        "every file committed once"
    );
    assert_eq!(
        total(&first, "already") + total(&second, "already"),
        0,
        "no file read by both"
    );
    assert_eq!(
        total(&first, "new") + total(&second, "new"),
        files,
        "no file downloaded by both"
    );
    let want: std::collections::HashSet<String> = organization
        .expected_store()
        .events
        .keys()
        .cloned()
        .collect();
    assert_eq!(stack.stored_event_ids().await, want);
    assert_eq!(ledger_rows(&stack).await as u64, files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_collector_serves_plaintext_health_and_metrics() {
    let moto = MotoServer::start();
    let organization = SampleOrganization::seed(&moto).await;
    let stack = TestStack::start().await;
    let (health_port, metrics_port) = (free_port(), free_port());
    let config = format!(
        "health_listen = \"127.0.0.1:{health_port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n{}",
        organization.collector_config("collector-a", &stack.endpoint(), &[])
    );
    let mut collector = CollectorProcess::spawn(&config, &BaseCredentials::default(), &[]);
    let files = 2 * organization.files.len();

    // Every file arrives, and the metrics say so once the passes are done (bounded as the
    // other full passes of this file are).
    let committed = format!("orgtrail_collector_files_total{{outcome=\"committed\"}} {files}");
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let ready = ledger_rows(&stack).await as usize == files
            && scrape_metrics(metrics_port)
                .lines()
                .any(|line| line == committed);
        if ready {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{committed:?} not reached:\n{}\n{}",
            scrape_metrics(metrics_port),
            collector.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = scrape_metrics(metrics_port);
    assert!(
        metrics.lines().any(
            |line| line.starts_with("orgtrail_collector_source_passes_total{result=\"read\"} ")
        ),
        "{metrics}"
    );

    // Health in plaintext, as Kubernetes' gRPC probe asks.
    assert_eq!(
        probe_health(probe_channel(health_port).await).await,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    collector.signal("TERM");
    assert_eq!(collector.wait(WAIT), Some(0), "{}", collector.log());
}
