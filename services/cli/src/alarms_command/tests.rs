//! The calls of `alarms …` against an in-process `AlarmService` that records what it is sent:
//! an update reads, then writes back with the version read; every call names the actor; the
//! server's message reaches the operator as it is; history follows its pages up to `--max`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::Parser;
use orgtrail_api::v1::alarm_service_server::{AlarmService, AlarmServiceServer};
use orgtrail_client::Transport;
use tonic::{Request, Response, Status};

use super::*;
use crate::{Arguments, Command};

/// A call as the server received it: the method, its request, and the actor it named.
#[derive(Clone, Debug)]
struct ReceivedCall {
    method: &'static str,
    actor: Option<String>,
    update: Option<pb::UpdateAlarmRequest>,
    history: Option<pb::GetAlarmHistoryRequest>,
}

/// Transitions per history page, and the alarm every GetAlarm answers.
struct RecordingAlarms {
    calls: Arc<Mutex<Vec<ReceivedCall>>>,
    alarm: pb::Alarm,
    history_pages: Vec<Vec<pb::AlarmTransition>>,
}

impl RecordingAlarms {
    fn record<T>(
        &self,
        method: &'static str,
        request: &Request<T>,
        fill: impl FnOnce(&mut ReceivedCall),
    ) {
        let actor = request
            .metadata()
            .get("x-orgtrail-actor")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let mut call = ReceivedCall {
            method,
            actor,
            update: None,
            history: None,
        };
        fill(&mut call);
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

#[tonic::async_trait]
impl AlarmService for RecordingAlarms {
    async fn create_alarm(
        &self,
        request: Request<pb::CreateAlarmRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        self.record("CreateAlarm", &request, |_| {});
        Err(Status::invalid_argument(
            "filter pattern: column 14: expected a value after '='",
        ))
    }

    async fn get_alarm(
        &self,
        request: Request<pb::GetAlarmRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        self.record("GetAlarm", &request, |_| {});
        Ok(Response::new(self.alarm.clone()))
    }

    async fn list_alarms(
        &self,
        request: Request<pb::ListAlarmsRequest>,
    ) -> Result<Response<pb::ListAlarmsResponse>, Status> {
        self.record("ListAlarms", &request, |_| {});
        Ok(Response::new(pb::ListAlarmsResponse {
            alarms: vec![self.alarm.clone()],
        }))
    }

    async fn update_alarm(
        &self,
        request: Request<pb::UpdateAlarmRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        let update = request.get_ref().clone();
        self.record("UpdateAlarm", &request, |call| {
            call.update = Some(update.clone())
        });
        Ok(Response::new(pb::Alarm {
            version: self.alarm.version + 1,
            definition: update.definition,
            ..self.alarm.clone()
        }))
    }

    async fn delete_alarm(
        &self,
        request: Request<pb::DeleteAlarmRequest>,
    ) -> Result<Response<pb::DeleteAlarmResponse>, Status> {
        self.record("DeleteAlarm", &request, |_| {});
        Ok(Response::new(pb::DeleteAlarmResponse {}))
    }

    async fn get_alarm_history(
        &self,
        request: Request<pb::GetAlarmHistoryRequest>,
    ) -> Result<Response<pb::GetAlarmHistoryResponse>, Status> {
        let asked = request.get_ref().clone();
        self.record("GetAlarmHistory", &request, |call| {
            call.history = Some(asked.clone())
        });
        // Page tokens are the page's index; a page never holds more than asked for.
        let page: usize = if asked.next_token.is_empty() {
            0
        } else {
            asked
                .next_token
                .parse()
                .map_err(|_| Status::invalid_argument("bad token"))?
        };
        let mut transitions = self.history_pages.get(page).cloned().unwrap_or_default();
        transitions.truncate(asked.max_results as usize);
        let next_token = if page + 1 < self.history_pages.len() {
            (page + 1).to_string()
        } else {
            String::new()
        };
        Ok(Response::new(pb::GetAlarmHistoryResponse {
            transitions,
            next_token,
        }))
    }

    async fn test_filter(
        &self,
        request: Request<pb::TestFilterRequest>,
    ) -> Result<Response<pb::TestFilterResponse>, Status> {
        self.record("TestFilter", &request, |_| {});
        Err(Status::unimplemented("not in this test"))
    }
}

fn alarm() -> pb::Alarm {
    pb::Alarm {
        name: "root-login".into(),
        version: 3,
        definition: Some(pb::AlarmDefinition {
            description: "root signs in".into(),
            filter_pattern: r#"{ $.userIdentity.type = "Root" }"#.into(),
            scope: Some(pb::AlarmScope {
                accounts: vec!["111111111111".into()],
                ..Default::default()
            }),
            period_seconds: 300,
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            threshold: 1.0,
            comparison_operator: "GreaterThanOrEqualToThreshold".into(),
            treat_missing_data: "missing".into(),
            enabled: true,
            ..Default::default()
        }),
        state: "OK".into(),
        ..Default::default()
    }
}

fn transition(transition_id: i64) -> pb::AlarmTransition {
    pb::AlarmTransition {
        transition_id,
        old_state: "OK".into(),
        new_state: "ALARM".into(),
        ..Default::default()
    }
}

/// Serves a `RecordingAlarms` on a loopback port: the settings that reach it, and the calls
/// it receives.
async fn serve(
    history_pages: Vec<Vec<pb::AlarmTransition>>,
) -> (ClientSettings, Arc<Mutex<Vec<ReceivedCall>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let service = RecordingAlarms {
        calls: calls.clone(),
        alarm: alarm(),
        history_pages,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("the port bound");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AlarmServiceServer::new(service))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (
        ClientSettings::new(address.to_string(), Transport::Insecure),
        calls,
    )
}

fn alarms_command(words: &[&str]) -> AlarmsCommand {
    let all = ["orgtrail", "alarms"]
        .into_iter()
        .chain(words.iter().copied());
    match Arguments::try_parse_from(all).map(|arguments| arguments.command) {
        Ok(Command::Alarms(command)) => command,
        Ok(_) => panic!("{words:?} is not an alarms command"),
        Err(error) => panic!("{words:?}: {error}"),
    }
}

fn received(calls: &Arc<Mutex<Vec<ReceivedCall>>>) -> Vec<ReceivedCall> {
    calls.lock().map(|calls| calls.clone()).unwrap_or_default()
}

#[tokio::test]
async fn an_update_reads_the_alarm_and_writes_it_back_whole_at_the_version_read() {
    let (settings, calls) = serve(Vec::new()).await;
    let command = alarms_command(&[
        "update",
        "root-login",
        "--threshold",
        "5",
        "--region",
        "eu-west-1",
    ]);
    run_alarms(&settings, command)
        .await
        .expect("the update succeeds");

    let calls = received(&calls);
    let methods: Vec<&str> = calls.iter().map(|call| call.method).collect();
    assert_eq!(methods, ["GetAlarm", "UpdateAlarm"]);
    for call in &calls {
        let actor = call.actor.clone().unwrap_or_default();
        assert!(
            actor.contains('@'),
            "{} names no actor: {actor:?}",
            call.method
        );
    }
    let update = calls[1].update.clone().expect("the update was recorded");
    let mut expected = alarm().definition.expect("a definition");
    expected.threshold = 5.0;
    if let Some(scope) = expected.scope.as_mut() {
        scope.regions = vec!["eu-west-1".into()];
    }
    assert_eq!(update.name, "root-login");
    assert_eq!(update.definition, Some(expected));
    assert_eq!(update.expected_version, Some(alarm().version));
}

#[tokio::test]
async fn an_update_that_changes_nothing_calls_nothing() {
    let (settings, calls) = serve(Vec::new()).await;
    let error = run_alarms(&settings, alarms_command(&["update", "root-login"]))
        .await
        .expect_err("an empty update is refused");
    assert!(
        error.to_string().starts_with("nothing to change"),
        "{error}"
    );
    assert!(received(&calls).is_empty());
}

#[tokio::test]
async fn the_servers_pattern_error_reaches_the_operator_as_it_is() {
    let (settings, _calls) = serve(Vec::new()).await;
    let command = alarms_command(&["create", "bad", "--pattern", "{ $.eventName = }"]);
    let error = run_alarms(&settings, command)
        .await
        .expect_err("the server refuses the pattern");
    assert_eq!(
        error.to_string(),
        "cannot create the alarm: filter pattern: column 14: expected a value after '='"
    );
}

#[tokio::test]
async fn history_follows_the_pages_up_to_max() {
    let pages = vec![
        vec![transition(9), transition(8)],
        vec![transition(7), transition(6)],
        vec![transition(5)],
    ];
    let (settings, calls) = serve(pages).await;
    let mut client = alarm_client(&settings).await.expect("connected");

    let transitions = read_history(&mut client, "root-login".into(), 3)
        .await
        .expect("the history is read");
    let ids: Vec<i64> = transitions.iter().map(|t| t.transition_id).collect();
    assert_eq!(ids, [9, 8, 7]);
    let asked: Vec<(u32, String)> = received(&calls)
        .iter()
        .filter_map(|call| call.history.clone())
        .map(|request| (request.max_results, request.next_token))
        .collect();
    assert_eq!(asked, [(3, String::new()), (1, "1".to_string())]);

    let everything = read_history(&mut client, "root-login".into(), 50)
        .await
        .expect("the history is read");
    assert_eq!(everything.len(), 5, "every page is followed to the last");
}
