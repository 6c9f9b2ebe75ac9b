//! Secure by default: the aggregator will not serve plaintext unless told to on purpose, only
//! certificates of the configured CA get in, every call needs a role (checked in one layer,
//! refusals audited), and a revoked token stops working at once.

use std::time::Duration;

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::event_service_client::EventServiceClient;
use orgtrail_api::v1::ingest_service_client::IngestServiceClient;
use orgtrail_api::v1::retention_service_client::RetentionServiceClient;
use orgtrail_client::{connect, error_chain, Transport};
use orgtrail_tests::cli_process::{run_orgtrail, run_orgtrail_with};
use orgtrail_tests::pki::{self, ClientIdentity};
use orgtrail_tests::stack::binary;
use orgtrail_tests::{StackOptions, TestStack, WAIT};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const BOUND: Duration = Duration::from_secs(60);

fn policy(name: &str) -> pb::CreatePolicyRequest {
    pb::CreatePolicyRequest {
        name: name.into(),
        description: String::new(),
        scope: Some(pb::RetentionScope::default()),
        retain_days: 400,
    }
}

fn lookup() -> pb::LookupEventsRequest {
    pb::LookupEventsRequest {
        max_results: 1,
        ..Default::default()
    }
}

#[test]
fn without_tls_material_and_without_insecure_the_aggregator_refuses_to_start() {
    let output = std::process::Command::new(binary("orgtrail-aggregator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .env_remove("ORGTRAIL_TLS__CERT")
        .env_remove("ORGTRAIL_TLS__KEY")
        .env_remove("ORGTRAIL_TLS__INSECURE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TLS is required: give tls.cert and tls.key")
            && stderr.contains("--insecure"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_connection_is_refused_and_insecure_mode_warns() {
    let stack = TestStack::start().await;
    let plaintext = stack
        .client_settings_with(Transport::Insecure, None)
        .url()
        .map(|_| ());
    // The client itself will not send plaintext to an https endpoint…
    assert!(plaintext.is_err());
    // …and the server answers a plaintext HTTP/2 connection with nothing it can use.
    let mut settings = stack.client_settings_with(Transport::Insecure, None);
    settings.endpoint = format!("http://{}", stack.address);
    settings.connect_timeout = Duration::from_secs(5);
    settings.request_timeout = Duration::from_secs(5);
    let outcome = match connect(&settings).await {
        Err(_) => None,
        Ok(channel) => Some(
            HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await,
        ),
    };
    assert!(
        !matches!(outcome, Some(Ok(_))),
        "a plaintext call was answered: {outcome:?}"
    );

    // Plaintext on purpose: it works, and the aggregator says so at start.
    let insecure = TestStack::start_with(StackOptions {
        insecure: true,
        ..StackOptions::default()
    })
    .await;
    let mut health = HealthClient::new(insecure.channel().await);
    health
        .check(HealthCheckRequest::default())
        .await
        .expect("plaintext chosen on purpose serves");
    assert!(
        insecure.aggregator_log().contains("serving plaintext gRPC"),
        "{}",
        insecure.aggregator_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_of_another_ca_is_refused() {
    let stack = TestStack::start().await;
    let dir = std::env::temp_dir().join(format!("orgtrail-rogue-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let rogue = pki::write_rogue_client(&dir);
    let settings = stack.client_settings_with(Transport::Tls(rogue.clone()), None);
    let outcome = match connect(&settings).await {
        Err(error) => Err(error_chain(&error)),
        Ok(channel) => IngestServiceClient::new(channel)
            .get_ingest_limits(pb::GetIngestLimitsRequest {})
            .await
            .map(|_| ())
            .map_err(|status| error_chain(&status)),
    };
    assert!(outcome.is_err(), "a certificate of another CA was let in");
    // Refused for its certificate: on a bare TLS connection (an HTTP/2 client may see only
    // the connection closing) the server's alert says so, and no other failure passes.
    let refusal = tls_refusal(stack.address, &rogue).await;
    assert!(
        refusal.contains("UnknownCA") || refusal.contains("BadCertificate"),
        "not refused for the certificate: {refusal}"
    );
    // The same name from the configured CA gets in.
    IngestServiceClient::new(stack.channel().await)
        .get_ingest_limits(pb::GetIngestLimitsRequest {})
        .await
        .expect("the admin certificate of the test CA is accepted");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_needs_its_role_and_refusals_are_audited() {
    let stack = TestStack::start().await;
    let reader = connect(&stack.client_settings_as(ClientIdentity::Reader))
        .await
        .unwrap();
    let collector = connect(&stack.client_settings_as(ClientIdentity::Collector))
        .await
        .unwrap();
    let admin = stack.channel().await;
    let anonymous = connect(&stack.client_settings_with(pki::anonymous_transport(), None))
        .await
        .unwrap();

    // A reader cannot change retention policies; an admin can.
    let refused = RetentionServiceClient::new(reader.clone())
        .create_policy(policy("readers-may-not"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("cert:orgtrail-reader has the role reader")
            && refused.message().contains("needs admin"),
        "{}",
        refused.message()
    );
    RetentionServiceClient::new(admin.clone())
        .create_policy(policy("admins-may"))
        .await
        .expect("an admin creates a policy");
    // The reader reads.
    let policies = RetentionServiceClient::new(reader.clone())
        .list_policies(pb::ListPoliciesRequest {})
        .await
        .expect("a reader lists policies")
        .into_inner()
        .policies;
    assert_eq!(policies.len(), 1);
    EventServiceClient::new(reader.clone())
        .lookup_events(lookup())
        .await
        .expect("a reader looks up events");

    // A collector ingests but does not read events.
    IngestServiceClient::new(collector.clone())
        .get_ingest_limits(pb::GetIngestLimitsRequest {})
        .await
        .expect("a collector asks for its limits");
    let refused = EventServiceClient::new(collector)
        .lookup_events(lookup())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // No credentials at all: only health checking answers.
    let refused = EventServiceClient::new(anonymous.clone())
        .lookup_events(lookup())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    HealthClient::new(anonymous)
        .check(HealthCheckRequest::default())
        .await
        .expect("health checking is open (readiness probes)");

    // Every refusal is in the audit log, with who and what.
    let pool = stack.pool().await;
    let refusals: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT actor, subject, details FROM audit_log WHERE action = 'call.refused' ORDER BY audit_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let subjects: Vec<&str> = refusals
        .iter()
        .map(|(_, subject, _)| subject.as_str())
        .collect();
    assert_eq!(
        subjects,
        [
            "/orgtrail.v1.RetentionService/CreatePolicy",
            "/orgtrail.v1.EventService/LookupEvents",
            "/orgtrail.v1.EventService/LookupEvents",
        ]
    );
    assert!(refusals[0]
        .0
        .starts_with("cert:orgtrail-reader (127.0.0.1:"));
    assert!(refusals[1].0.starts_with("cert:orgtrail-collector"));
    assert!(refusals[2].0.starts_with("unauthenticated"));
    assert_eq!(refusals[2].2["code"], "Unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_at_once() {
    let stack = TestStack::start().await;
    let endpoint = stack.endpoint();
    let created = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "tokens",
            "create",
            "--name",
            "auditor",
            "--role",
            "reader",
        ],
        BOUND,
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert!(token.starts_with("otk_"), "{token}");

    // The token alone (TLS, no client certificate) reads.
    let channel =
        connect(&stack.client_settings_with(pki::anonymous_transport(), Some(token.clone())))
            .await
            .unwrap();
    let mut events = EventServiceClient::new(channel.clone());
    events
        .lookup_events(lookup())
        .await
        .expect("a reader token looks up events");
    // …through the CLI too, and it cannot change policies.
    let ca = pki::ca_file().display().to_string();
    let environment = vec![
        ("ORGTRAIL_CA".to_string(), ca),
        ("ORGTRAIL_TOKEN".to_string(), token.clone()),
    ];
    let listed = run_orgtrail_with(
        &environment,
        &["--endpoint", &endpoint, "retention", "list"],
        BOUND,
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let refused = run_orgtrail_with(
        &environment,
        &[
            "--endpoint",
            &endpoint,
            "retention",
            "create",
            "x",
            "--retain-days",
            "400",
        ],
        BOUND,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("token:auditor has the role reader"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Listed without its secret; revoked; the very next call on the same connection fails.
    let listed = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "tokens",
            "list",
            "--output",
            "json",
        ],
        BOUND,
    );
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("\"auditor\"") && !listed.contains(&token[40..]),
        "{listed}"
    );
    let revoked = run_orgtrail(
        &["--endpoint", &endpoint, "tokens", "revoke", "auditor"],
        BOUND,
    );
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let refused = tokio::time::timeout(WAIT, events.lookup_events(lookup()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(
        refused.message().contains("token \"auditor\" was revoked"),
        "{}",
        refused.message()
    );

    // A forged secret for a live token's id is refused too.
    let created = run_orgtrail(
        &[
            "--endpoint",
            &endpoint,
            "tokens",
            "create",
            "--name",
            "ops",
            "--role",
            "admin",
        ],
        BOUND,
    );
    let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let last = if token.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    let channel = connect(&stack.client_settings_with(pki::anonymous_transport(), Some(forged)))
        .await
        .unwrap();
    let refused = EventServiceClient::new(channel)
        .lookup_events(lookup())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Token changes are audited.
    let pool = stack.pool().await;
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'token.%' ORDER BY audit_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(actions, ["token.create", "token.revoke", "token.create"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_is_refused_and_the_others_are_not() {
    let stack = TestStack::start_with(StackOptions {
        environment: vec![
            ("ORGTRAIL_SERVER__PER_CALLER_BURST".into(), "3".into()),
            (
                "ORGTRAIL_SERVER__PER_CALLER_REQUESTS_PER_SECOND".into(),
                "0.01".into(),
            ),
        ],
        ..StackOptions::default()
    })
    .await;
    let reader = connect(&stack.client_settings_as(ClientIdentity::Reader))
        .await
        .unwrap();
    let mut retention = RetentionServiceClient::new(reader);
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(
            match retention.list_policies(pb::ListPoliciesRequest {}).await {
                Ok(_) => Code::Ok,
                Err(status) => {
                    assert!(
                        status
                            .message()
                            .contains("cert:orgtrail-reader is over its rate"),
                        "{status:?}"
                    );
                    status.code()
                }
            },
        );
    }
    assert_eq!(
        codes,
        [
            Code::Ok,
            Code::Ok,
            Code::Ok,
            Code::ResourceExhausted,
            Code::ResourceExhausted,
            Code::ResourceExhausted
        ]
    );
    // The admin has a bucket of its own.
    RetentionServiceClient::new(stack.channel().await)
        .list_policies(pb::ListPoliciesRequest {})
        .await
        .expect("another caller is not limited by the reader's calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_calls_does_not_flood_the_audit_log() {
    let stack = TestStack::start().await;
    let anonymous = connect(&stack.client_settings_with(pki::anonymous_transport(), None))
        .await
        .unwrap();
    let mut events = EventServiceClient::new(anonymous);
    const FLOOD: usize = 400;
    for _ in 0..FLOOD {
        let refused = events.lookup_events(lookup()).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
    // Every call was refused, but the audit log holds the burst and what the rate refilled
    // meanwhile (5 per second), not the flood; the count of the rest rides on the next entry.
    let pool = stack.pool().await;
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'call.refused'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        (50..FLOOD as i64 / 2).contains(&audited),
        "{audited} entries"
    );
    // After a pause the address is heard again, and the entry says how many were left out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = events.lookup_events(lookup()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let (suppressed_total,): (Option<i64>,) = sqlx::query_as(
        "SELECT sum((details::jsonb ->> 'suppressedBefore')::bigint)::bigint FROM audit_log WHERE action = 'call.refused'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let audited_now: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'call.refused'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        audited_now + suppressed_total.unwrap_or(0),
        FLOOD as i64 + 1,
        "every refusal is either written or counted"
    );
}

/// What a TLS client presenting `client`'s certificate hears from the server at `address`: the
/// handshake's error, or the alert the server sends after it (TLS 1.3 checks the client's
/// certificate after the client has finished), as text.
async fn tls_refusal(address: std::net::SocketAddr, client: &orgtrail_client::TlsFiles) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::AsyncReadExt;

    let path = |file: &Option<std::path::PathBuf>| file.clone().expect("a TLS file");
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path(&client.ca)).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path(&client.cert))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(path(&client.key)).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = ServerName::IpAddress(address.ip().into());
    match connector.connect(name, tcp).await {
        Err(error) => error.to_string(),
        Ok(mut stream) => {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(WAIT, stream.read(&mut byte)).await {
                Ok(Err(error)) => error.to_string(),
                other => format!("no alert: {other:?}"),
            }
        }
    }
}
