//! The outbox dispatcher: every replica runs one; each worker claims one due notification at a
//! time (`FOR UPDATE SKIP LOCKED`: no two replicas deliver the same one), delivers it while
//! holding it, and records the outcome in the same transaction — delivered; due again after
//! an exponential backoff with jitter; or failed, and listed, once its attempts are spent.
//! A crash mid-delivery rolls the claim back and the notification is delivered again (the
//! receiver dedupes on its id: delivery is at least once).

use std::time::Duration;

use orgtrail_service_runtime::error_chain;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;

use super::delivery::{Deliverer, DeliveryTarget, OutgoingNotification};
use crate::config::NotificationSettings;
use crate::drain::Drain;
use crate::store::{ClaimedNotification, DeliveryOutcome, PgStore, StoreError};

#[derive(Clone)]
pub struct Dispatcher {
    store: PgStore,
    deliverer: Deliverer,
    settings: NotificationSettings,
}

impl Dispatcher {
    pub fn new(store: PgStore, deliverer: Deliverer, settings: NotificationSettings) -> Dispatcher {
        Dispatcher {
            store,
            deliverer,
            settings,
        }
    }

    /// Delivers what is due every poll interval, with `concurrency` workers, until draining
    /// starts (a delivery in progress finishes first).
    pub async fn run(self, drain: Drain) {
        let mut interval = tokio::time::interval(Duration::from_millis(
            self.settings.poll_interval_milliseconds,
        ));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = drain.started() => return,
                _ = interval.tick() => {}
            }
            let workers: Vec<_> = (0..self.settings.concurrency)
                .map(|_| {
                    let dispatcher = self.clone();
                    let drain = drain.clone();
                    tokio::spawn(async move { dispatcher.deliver_due(&drain).await })
                })
                .collect();
            for worker in workers {
                match worker.await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(error = %error_chain(&error), "cannot read the notification outbox")
                    }
                    Err(error) => tracing::error!(%error, "a delivery worker failed"),
                }
            }
            if let Ok((pending, failed)) = self.store.outbox_depth().await {
                crate::metrics::outbox_depth(pending.unsigned_abs(), failed.unsigned_abs());
            }
        }
    }

    /// Delivers due notifications one after the other until none is due (or draining starts).
    pub async fn deliver_due(&self, drain: &Drain) -> Result<(), StoreError> {
        while !drain.is_started() {
            let Some(claimed) = self.store.claim_due_notification().await? else {
                return Ok(());
            };
            self.deliver(claimed).await?;
        }
        Ok(())
    }

    async fn deliver(&self, claimed: ClaimedNotification) -> Result<(), StoreError> {
        let notification = &claimed.notification;
        let kind = claimed.destination.destination.kind.clone();
        let outcome = match delivery_target(&claimed) {
            Ok(target) => {
                let outgoing = OutgoingNotification {
                    notification_id: notification.notification_id,
                    kind: notification.kind.clone(),
                    subject: notification.subject.clone(),
                    body: notification.body.clone(),
                    created_at: notification.created_at,
                };
                match self.deliverer.deliver(&target, &outgoing).await {
                    Ok(()) => DeliveryOutcome::Delivered,
                    Err(error) => DeliveryOutcome::Failed {
                        error: error_chain(&error),
                        retry_in: self.backoff(notification.attempts),
                    },
                }
            }
            Err(error) => DeliveryOutcome::Failed {
                error,
                retry_in: self.backoff(notification.attempts),
            },
        };
        if let DeliveryOutcome::Failed { error, .. } = &outcome {
            tracing::warn!(
                notification = notification.notification_id,
                destination = %notification.destination,
                attempt = notification.attempts + 1,
                %error,
                "notification not delivered"
            );
        }
        let notification_id = notification.notification_id;
        let state = claimed.record(outcome, self.settings.max_attempts).await?;
        crate::metrics::notification_delivery(
            &kind,
            match state {
                "delivered" => "delivered",
                "failed" => "failed",
                _ => "retried",
            },
        );
        if state == "failed" {
            tracing::error!(
                notification = notification_id,
                attempts = self.settings.max_attempts,
                "notification given up: see orgtrail notifications list --failed"
            );
        }
        Ok(())
    }

    /// The wait before the next attempt after `attempts` failed ones: the base doubled each
    /// time, capped, with "equal jitter" (half fixed, half random) so replicas and notifications
    /// do not retry in step.
    fn backoff(&self, attempts: i32) -> Duration {
        let exponent = u32::try_from(attempts.max(0)).unwrap_or(0).min(30);
        let full = (self.settings.backoff_base_seconds * f64::from(1u32 << exponent))
            .min(self.settings.backoff_max_seconds);
        let mut byte = [0u8; 1];
        let random = match SystemRandom::new().fill(&mut byte) {
            Ok(()) => f64::from(byte[0]) / 255.0,
            Err(_) => 0.5,
        };
        Duration::try_from_secs_f64(full / 2.0 + full / 2.0 * random).unwrap_or_default()
    }
}

fn delivery_target(claimed: &ClaimedNotification) -> Result<DeliveryTarget, String> {
    let destination = &claimed.destination;
    let target = destination.secrets.target.clone();
    match destination.destination.kind.as_str() {
        "webhook" => Ok(DeliveryTarget::Webhook {
            url: target,
            signing_secret: SecretString::from(
                destination
                    .secrets
                    .signing_secret
                    .clone()
                    .ok_or("the webhook destination has no signing secret")?,
            ),
        }),
        "slack" => Ok(DeliveryTarget::Slack { url: target }),
        "sns" => Ok(DeliveryTarget::Sns { topic_arn: target }),
        other => Err(format!("destination kind {other:?} is unknown")),
    }
}
