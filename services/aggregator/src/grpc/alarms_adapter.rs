//! `AlarmService` and `NotificationService` over gRPC. Changes are attributed to the caller
//! and the person the client says it acts for (`convert::stated_actor`).

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::alarms::{
    alarm_to_proto, backtest_from_proto, backtest_report_to_proto, definition_from_proto,
    destination_to_proto, notification_to_proto, transition_to_proto,
};
use super::convert::{decode_id_token, encode_id_token, page_size, stated_actor};
use super::status::{alarm_error_status, notification_error_status};
use crate::alarms::AlarmService;
use crate::notify::{DestinationRequest, NotificationService};

pub struct AlarmsAdapter {
    service: AlarmService,
}

impl AlarmsAdapter {
    pub fn new(service: AlarmService) -> AlarmsAdapter {
        AlarmsAdapter { service }
    }
}

#[tonic::async_trait]
impl pb::alarm_service_server::AlarmService for AlarmsAdapter {
    async fn create_alarm(
        &self,
        request: Request<pb::CreateAlarmRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let definition = definition_from_proto(request.definition)?;
        let alarm = self
            .service
            .create(&actor, &request.name, definition)
            .await
            .map_err(|error| alarm_error_status(&error))?;
        Ok(Response::new(alarm_to_proto(alarm)))
    }

    async fn get_alarm(
        &self,
        request: Request<pb::GetAlarmRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        let request = request.into_inner();
        let version = (request.version > 0).then_some(request.version);
        let alarm = self
            .service
            .get(&request.name, version)
            .await
            .map_err(|error| alarm_error_status(&error))?;
        Ok(Response::new(alarm_to_proto(alarm)))
    }

    async fn list_alarms(
        &self,
        _request: Request<pb::ListAlarmsRequest>,
    ) -> Result<Response<pb::ListAlarmsResponse>, Status> {
        let alarms = self
            .service
            .list()
            .await
            .map_err(|error| alarm_error_status(&error))?;
        Ok(Response::new(pb::ListAlarmsResponse {
            alarms: alarms.into_iter().map(alarm_to_proto).collect(),
        }))
    }

    async fn update_alarm(
        &self,
        request: Request<pb::UpdateAlarmRequest>,
    ) -> Result<Response<pb::Alarm>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let definition = definition_from_proto(request.definition)?;
        let alarm = self
            .service
            .update(&actor, &request.name, request.expected_version, definition)
            .await
            .map_err(|error| alarm_error_status(&error))?;
        Ok(Response::new(alarm_to_proto(alarm)))
    }

    async fn delete_alarm(
        &self,
        request: Request<pb::DeleteAlarmRequest>,
    ) -> Result<Response<pb::DeleteAlarmResponse>, Status> {
        let actor = stated_actor(&request);
        self.service
            .delete(&actor, &request.into_inner().name)
            .await
            .map_err(|error| alarm_error_status(&error))?;
        Ok(Response::new(pb::DeleteAlarmResponse {}))
    }

    async fn get_alarm_history(
        &self,
        request: Request<pb::GetAlarmHistoryRequest>,
    ) -> Result<Response<pb::GetAlarmHistoryResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.max_results, 100)?;
        let before = decode_id_token(&request.next_token)?;
        let transitions = self
            .service
            .history(&request.name, before, limit)
            .await
            .map_err(|error| alarm_error_status(&error))?;
        let next_token = match transitions.last() {
            Some(last) if transitions.len() == limit as usize => {
                encode_id_token(last.transition_id)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::GetAlarmHistoryResponse {
            transitions: transitions.into_iter().map(transition_to_proto).collect(),
            next_token,
        }))
    }

    async fn test_filter(
        &self,
        request: Request<pb::TestFilterRequest>,
    ) -> Result<Response<pb::TestFilterResponse>, Status> {
        let question = backtest_from_proto(request.into_inner())?;
        let report = self
            .service
            .backtest(question)
            .await
            .map_err(|error| alarm_error_status(&error))?;
        Ok(Response::new(backtest_report_to_proto(report)))
    }
}

pub struct NotificationsAdapter {
    service: NotificationService,
}

impl NotificationsAdapter {
    pub fn new(service: NotificationService) -> NotificationsAdapter {
        NotificationsAdapter { service }
    }
}

#[tonic::async_trait]
impl pb::notification_service_server::NotificationService for NotificationsAdapter {
    async fn create_destination(
        &self,
        request: Request<pb::CreateDestinationRequest>,
    ) -> Result<Response<pb::CreateDestinationResponse>, Status> {
        let actor = stated_actor(&request);
        let request = request.into_inner();
        let (destination, signing_secret) = self
            .service
            .create_destination(
                &actor,
                DestinationRequest {
                    name: request.name,
                    kind: request.kind,
                    target: request.target,
                    every_alarm: request.every_alarm,
                    finding_level: (!request.finding_level.is_empty())
                        .then_some(request.finding_level),
                },
            )
            .await
            .map_err(|error| notification_error_status(&error))?;
        Ok(Response::new(pb::CreateDestinationResponse {
            destination: Some(destination_to_proto(destination)),
            signing_secret: signing_secret.unwrap_or_default(),
        }))
    }

    async fn list_destinations(
        &self,
        _request: Request<pb::ListDestinationsRequest>,
    ) -> Result<Response<pb::ListDestinationsResponse>, Status> {
        let destinations = self
            .service
            .list_destinations()
            .await
            .map_err(|error| notification_error_status(&error))?;
        Ok(Response::new(pb::ListDestinationsResponse {
            destinations: destinations.into_iter().map(destination_to_proto).collect(),
        }))
    }

    async fn delete_destination(
        &self,
        request: Request<pb::DeleteDestinationRequest>,
    ) -> Result<Response<pb::DeleteDestinationResponse>, Status> {
        let actor = stated_actor(&request);
        self.service
            .delete_destination(&actor, &request.into_inner().name)
            .await
            .map_err(|error| notification_error_status(&error))?;
        Ok(Response::new(pb::DeleteDestinationResponse {}))
    }

    async fn test_destination(
        &self,
        request: Request<pb::TestDestinationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let actor = stated_actor(&request);
        let notification = self
            .service
            .test_destination(&actor, &request.into_inner().name)
            .await
            .map_err(|error| notification_error_status(&error))?;
        Ok(Response::new(notification_to_proto(notification)))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let request = request.into_inner();
        let limit = page_size(request.max_results, 100)?;
        let before = decode_id_token(&request.next_token)?;
        let notifications = self
            .service
            .list_notifications(request.failed_only, before, limit)
            .await
            .map_err(|error| notification_error_status(&error))?;
        let next_token = match notifications.last() {
            Some(last) if notifications.len() == limit as usize => {
                encode_id_token(last.notification_id)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: notifications
                .into_iter()
                .map(notification_to_proto)
                .collect(),
            next_token,
        }))
    }
}
