//! `KeyService` over gRPC: data key rotation and the re-encryption of older rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::to_timestamp;
use super::tokens_adapter::actor;
use crate::store::{EncryptionError, PgStore, StoreError};

pub struct KeysAdapter {
    store: PgStore,
    reencrypt_batch: i64,
    /// Set while this replica re-encrypts.
    reencrypting: Arc<AtomicBool>,
}

impl KeysAdapter {
    pub fn new(store: PgStore, reencrypt_batch: u32) -> KeysAdapter {
        KeysAdapter {
            store,
            reencrypt_batch: i64::from(reencrypt_batch),
            reencrypting: Arc::new(AtomicBool::new(false)),
        }
    }
}

fn key_error_status(error: &EncryptionError) -> Status {
    match error {
        EncryptionError::Store(StoreError::NotFound(what)) => {
            Status::failed_precondition(format!("{what} does not exist"))
        }
        other => {
            tracing::error!(error = %super::status::error_chain(other), "key operation failed");
            Status::internal(format!("key operation failed: {other}"))
        }
    }
}

#[tonic::async_trait]
impl pb::key_service_server::KeyService for KeysAdapter {
    async fn rotate_data_key(
        &self,
        request: Request<pb::RotateDataKeyRequest>,
    ) -> Result<Response<pb::RotateDataKeyResponse>, Status> {
        let actor = actor(&request);
        let key_id = self
            .store
            .rotate_data_key(&actor)
            .await
            .map_err(|error| key_error_status(&error))?;
        tracing::info!(key_id, %actor, "data key rotated");
        let mut reencrypting = false;
        if request.into_inner().reencrypt
            && self
                .reencrypting
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            reencrypting = true;
            let store = self.store.clone();
            let flag = self.reencrypting.clone();
            let batch = self.reencrypt_batch;
            tokio::spawn(async move {
                match store.reencrypt_all(batch).await {
                    Ok(rows) => {
                        tracing::info!(rows, key_id, "re-encryption done");
                        match store.retire_unused_data_keys(&actor).await {
                            Ok(retired) => tracing::info!(?retired, "unused data keys retired"),
                            Err(error) => {
                                tracing::warn!(error = %super::status::error_chain(&error), "retiring unused data keys failed; the next re-encryption tries again")
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %super::status::error_chain(&error), "re-encryption stopped; rotate again with --reencrypt to finish it")
                    }
                }
                flag.store(false, Ordering::SeqCst);
            });
        }
        Ok(Response::new(pb::RotateDataKeyResponse {
            key_id,
            reencrypting,
        }))
    }

    async fn list_data_keys(
        &self,
        _request: Request<pb::ListDataKeysRequest>,
    ) -> Result<Response<pb::ListDataKeysResponse>, Status> {
        let status = |error: StoreError| key_error_status(&EncryptionError::Store(error));
        let keys = self.store.data_keys().await.map_err(status)?;
        let counts = self.store.events_per_key().await.map_err(status)?;
        let newest = keys.last().map(|key| key.key_id);
        let count_of = |key_id: Option<i32>| {
            counts
                .iter()
                .find(|(id, _)| *id == key_id)
                .map(|(_, count)| *count)
                .unwrap_or(0)
        };
        Ok(Response::new(pb::ListDataKeysResponse {
            keys: keys
                .iter()
                .map(|key| pb::DataKey {
                    key_id: key.key_id,
                    wrapped_by: key.wrapped_by.clone(),
                    created_at: Some(to_timestamp(key.created_at)),
                    created_by: key.created_by.clone(),
                    active: Some(key.key_id) == newest,
                    events: count_of(Some(key.key_id)),
                    retired: key.retired_at.is_some(),
                })
                .collect(),
            plaintext_events: count_of(None),
            reencrypting: self.reencrypting.load(Ordering::SeqCst),
        }))
    }
}
