//! The calls of `findings …` and `suppressions …` against an in-process `FindingService` that
//! records what it is sent: each triage command asks for its state with the reason; every
//! call names the actor; the list follows its pages up to `--max`; the server's message
//! reaches the operator as it is.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::Parser;
use orgtrail_api::v1::finding_service_server::{FindingService, FindingServiceServer};
use orgtrail_client::Transport;
use tonic::{Request, Response, Status};

use super::*;
use crate::{Arguments, Command};

/// A call as the server received it: the method, the actor it named, and its request (Debug).
#[derive(Clone, Debug)]
struct ReceivedCall {
    method: &'static str,
    actor: Option<String>,
    request: String,
}

/// Findings 1..=total, newest (highest id) first, answered in pages as asked.
struct RecordingFindings {
    calls: Arc<Mutex<Vec<ReceivedCall>>>,
    total: i64,
}

impl RecordingFindings {
    fn record<T: std::fmt::Debug>(&self, method: &'static str, request: &Request<T>) {
        let actor = request
            .metadata()
            .get("x-orgtrail-actor")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(ReceivedCall {
                method,
                actor,
                request: format!("{:?}", request.get_ref()),
            });
        }
    }
}

#[tonic::async_trait]
impl FindingService for RecordingFindings {
    async fn list_findings(
        &self,
        request: Request<pb::ListFindingsRequest>,
    ) -> Result<Response<pb::ListFindingsResponse>, Status> {
        self.record("ListFindings", &request);
        let asked = request.into_inner();
        // Tokens are the id the next page starts below, as the server's are.
        let below: i64 = if asked.next_token.is_empty() {
            self.total + 1
        } else {
            asked
                .next_token
                .parse()
                .map_err(|_| Status::invalid_argument("bad token"))?
        };
        let findings: Vec<pb::Finding> = (1..below)
            .rev()
            .take(asked.max_results as usize)
            .map(|finding_id| pb::Finding {
                finding_id,
                ..Default::default()
            })
            .collect();
        let next_token = match findings.last() {
            Some(last) if findings.len() == asked.max_results as usize => {
                last.finding_id.to_string()
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListFindingsResponse {
            findings,
            next_token,
        }))
    }

    async fn get_finding(
        &self,
        request: Request<pb::GetFindingRequest>,
    ) -> Result<Response<pb::FindingDetail>, Status> {
        self.record("GetFinding", &request);
        Err(Status::not_found("finding 99 does not exist"))
    }

    async fn update_finding_state(
        &self,
        request: Request<pb::UpdateFindingStateRequest>,
    ) -> Result<Response<pb::Finding>, Status> {
        self.record("UpdateFindingState", &request);
        let asked = request.into_inner();
        Ok(Response::new(pb::Finding {
            finding_id: asked.finding_id,
            state: asked.state,
            state_reason: asked.reason,
            ..Default::default()
        }))
    }

    async fn create_suppression(
        &self,
        request: Request<pb::CreateSuppressionRequest>,
    ) -> Result<Response<pb::Suppression>, Status> {
        self.record("CreateSuppression", &request);
        Err(Status::invalid_argument(
            "a suppression needs at least one account, principal or source IP",
        ))
    }

    async fn list_suppressions(
        &self,
        request: Request<pb::ListSuppressionsRequest>,
    ) -> Result<Response<pb::ListSuppressionsResponse>, Status> {
        self.record("ListSuppressions", &request);
        Ok(Response::new(pb::ListSuppressionsResponse::default()))
    }

    async fn delete_suppression(
        &self,
        request: Request<pb::DeleteSuppressionRequest>,
    ) -> Result<Response<pb::DeleteSuppressionResponse>, Status> {
        self.record("DeleteSuppression", &request);
        Ok(Response::new(pb::DeleteSuppressionResponse {}))
    }
}

/// Serves a `RecordingFindings` on a loopback port: the settings that reach it, and the calls
/// it receives.
async fn serve(total: i64) -> (ClientSettings, Arc<Mutex<Vec<ReceivedCall>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let service = RecordingFindings {
        calls: calls.clone(),
        total,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("the port bound");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(FindingServiceServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (
        ClientSettings::new(address.to_string(), Transport::Insecure),
        calls,
    )
}

fn parse(words: &[&str]) -> Command {
    let all = std::iter::once("orgtrail").chain(words.iter().copied());
    match Arguments::try_parse_from(all) {
        Ok(arguments) => arguments.command,
        Err(error) => panic!("{words:?}: {error}"),
    }
}

fn findings_command(words: &[&str]) -> FindingsCommand {
    let mut all = vec!["findings"];
    all.extend_from_slice(words);
    match parse(&all) {
        Command::Findings(command) => command,
        _ => panic!("{words:?} is not a findings command"),
    }
}

fn received(calls: &Arc<Mutex<Vec<ReceivedCall>>>) -> Vec<ReceivedCall> {
    calls.lock().map(|calls| calls.clone()).unwrap_or_default()
}

#[test]
fn each_triage_command_asks_for_its_state_with_the_reason() {
    for (command, state) in [
        ("ack", "acknowledged"),
        ("resolve", "resolved"),
        ("false-positive", "false_positive"),
        ("reopen", "open"),
    ] {
        let request = findings_command(&[command, "12", "--reason", "looking into it"])
            .triage_request()
            .expect("a triage change");
        assert_eq!(
            request,
            pb::UpdateFindingStateRequest {
                finding_id: 12,
                state: state.into(),
                reason: "looking into it".into(),
            },
            "findings {command}"
        );
    }
    assert!(findings_command(&["list"]).triage_request().is_none());
    assert!(findings_command(&["show", "12"]).triage_request().is_none());
    for words in [
        &["findings", "ack", "12"][..],
        &["findings", "resolve", "--reason", "x"][..],
        &["findings", "ack", "twelve", "--reason", "x"][..],
    ] {
        assert!(
            Arguments::try_parse_from(std::iter::once("orgtrail").chain(words.iter().copied()))
                .is_err(),
            "{words:?} is taken"
        );
    }
}

#[tokio::test]
async fn every_call_names_the_actor() {
    let (settings, calls) = serve(3).await;
    run_findings(
        &settings,
        findings_command(&["ack", "2", "--reason", "mine"]),
    )
    .await
    .expect("the change succeeds");
    run_findings(&settings, findings_command(&["list"]))
        .await
        .expect("the list is read");
    let Command::Suppressions(command) =
        parse(&["suppressions", "delete", "7", "--reason", "the job ended"])
    else {
        panic!("not suppressions delete");
    };
    run_suppressions(&settings, command)
        .await
        .expect("the suppression is deleted");

    let calls = received(&calls);
    let methods: Vec<&str> = calls.iter().map(|call| call.method).collect();
    assert_eq!(
        methods,
        ["UpdateFindingState", "ListFindings", "DeleteSuppression"]
    );
    for call in &calls {
        let actor = call.actor.clone().unwrap_or_default();
        assert!(
            actor.contains('@'),
            "{} names no actor: {actor:?}",
            call.method
        );
    }
    assert!(calls[0].request.contains("state: \"acknowledged\""));
    assert!(calls[2].request.contains("reason: \"the job ended\""));
}

#[tokio::test]
async fn the_list_follows_the_pages_up_to_max_and_says_when_more_may_match() {
    let (settings, calls) = serve(2500).await;
    let mut client = finding_client(&settings).await.expect("connected");
    let filter = pb::ListFindingsRequest {
        min_level: "high".into(),
        ..Default::default()
    };

    let (findings, more) = read_findings(&mut client, filter.clone(), 1200)
        .await
        .expect("the findings are read");
    assert_eq!(findings.len(), 1200);
    assert_eq!(findings[0].finding_id, 2500);
    assert_eq!(findings[1199].finding_id, 1301);
    assert!(more);
    let asked: Vec<String> = received(&calls)
        .iter()
        .map(|call| call.request.clone())
        .collect();
    assert_eq!(asked.len(), 2);
    assert!(asked[0].contains("max_results: 1000") && asked[0].contains("next_token: \"\""));
    assert!(asked[1].contains("max_results: 200") && asked[1].contains("next_token: \"1501\""));
    assert!(
        asked
            .iter()
            .all(|request| request.contains("min_level: \"high\"")),
        "the filter goes with every page"
    );

    let (everything, more) = read_findings(&mut client, filter, 5000)
        .await
        .expect("the findings are read");
    assert_eq!(everything.len(), 2500);
    assert!(!more);
}

#[tokio::test]
async fn the_servers_message_reaches_the_operator_as_it_is() {
    let (settings, _calls) = serve(0).await;
    let error = run_findings(&settings, findings_command(&["show", "99"]))
        .await
        .expect_err("the server refuses");
    assert_eq!(
        error.to_string(),
        "cannot read the finding: finding 99 does not exist"
    );
    let Command::Suppressions(command) = parse(&[
        "suppressions",
        "create",
        "--rule",
        "r",
        "--reason",
        "x",
        "--expires",
        "+1d",
    ]) else {
        panic!("not suppressions create");
    };
    let error = run_suppressions(&settings, command)
        .await
        .expect_err("the server refuses");
    assert_eq!(
        error.to_string(),
        "cannot create the suppression: a suppression needs at least one account, principal or source IP"
    );
}
