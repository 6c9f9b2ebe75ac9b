//! The aggregator serves gRPC health checking for each of its services and server reflection
//! of its whole API; its probe listeners serve plaintext health checking and Prometheus
//! metrics, and nothing else.

use orgtrail_api::v1 as pb;
use orgtrail_api::v1::event_service_client::EventServiceClient;
use orgtrail_tests::samples::sample_files;
use orgtrail_tests::sealing::expected_records;
use orgtrail_tests::stack::free_port;
use orgtrail_tests::{
    ingest_sample_files, probe_channel, probe_health, scrape_metrics, StackOptions, TestStack,
};
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_reports_serving() {
    let stack = TestStack::start().await;
    let mut health = HealthClient::new(stack.channel().await);
    for service in [
        "",
        "orgtrail.v1.IngestService",
        "orgtrail.v1.EventService",
        "orgtrail.v1.SourceService",
    ] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|status| panic!("health of {service:?}: {status}"))
            .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "orgtrail.v1.Nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_api() {
    let stack = TestStack::start().await;
    let mut reflection = ServerReflectionClient::new(stack.channel().await);
    let requests = tokio_stream::iter(vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "orgtrail.v1.EventService".into(),
            )),
        },
    ]);
    let mut responses = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();

    let listed = responses.next().await.unwrap().unwrap().message_response;
    let Some(MessageResponse::ListServicesResponse(listed)) = listed else {
        panic!("not a list of services: {listed:?}");
    };
    let names: Vec<String> = listed
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "orgtrail.v1.IngestService",
        "orgtrail.v1.EventService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from {names:?}"
        );
    }

    let described = responses.next().await.unwrap().unwrap().message_response;
    let Some(MessageResponse::FileDescriptorResponse(files)) = described else {
        panic!("not a file descriptor: {described:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_listeners_serve_plaintext_health_and_metrics_and_nothing_else() {
    let (health_port, metrics_port) = (free_port(), free_port());
    let stack = TestStack::start_with(StackOptions {
        environment: vec![
            (
                "ORGTRAIL_SERVER__HEALTH_LISTEN".into(),
                format!("127.0.0.1:{health_port}"),
            ),
            (
                "ORGTRAIL_SERVER__METRICS_LISTEN".into(),
                format!("127.0.0.1:{metrics_port}"),
            ),
        ],
        ..Default::default()
    })
    .await;

    // Plaintext, without any credentials, as Kubernetes' gRPC probe asks.
    let probe = probe_channel(health_port).await;
    assert_eq!(
        probe_health(probe.clone()).await,
        ServingStatus::Serving as i32
    );
    // The probe port carries no API.
    let refused = EventServiceClient::new(probe)
        .lookup_events(pb::LookupEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");

    // Metrics count what happened: files and records ingested, refused calls.
    let files = sample_files();
    ingest_sample_files(&stack, &files).await;
    let anonymous = orgtrail_client::connect(
        &stack.client_settings_with(orgtrail_tests::pki::anonymous_transport(), None),
    )
    .await
    .unwrap();
    let refused = EventServiceClient::new(anonymous)
        .lookup_events(pb::LookupEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let metrics = scrape_metrics(metrics_port);
    for line in [
        format!(
            "orgtrail_ingest_files_total{{outcome=\"committed\"}} {}",
            files.len()
        ),
        format!(
            "orgtrail_ingest_records_total{{result=\"stored\"}} {}",
            expected_records(&files).len()
        ),
        "orgtrail_calls_refused_total{code=\"Unauthenticated\"} 1".to_string(),
        "# TYPE orgtrail_ingest_files_total counter".to_string(),
    ] {
        assert!(
            metrics.lines().any(|have| have == line),
            "{line:?} not in:\n{metrics}"
        );
    }
}
