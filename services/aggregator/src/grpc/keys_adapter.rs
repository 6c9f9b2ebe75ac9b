//! `KeyService` over gRPC: data key rotation and the re-encryption of older rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use orgtrail_api::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::admin::data_key_to_proto;
use super::convert::authenticated_actor;
use super::status::key_error_status;
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

#[tonic::async_trait]
impl pb::key_service_server::KeyService for KeysAdapter {
    async fn rotate_data_key(
        &self,
        request: Request<pb::RotateDataKeyRequest>,
    ) -> Result<Response<pb::RotateDataKeyResponse>, Status> {
        let actor = authenticated_actor(&request);
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
                                tracing::warn!(error = %orgtrail_service_runtime::error_chain(&error), "retiring unused data keys failed; the next re-encryption tries again")
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %orgtrail_service_runtime::error_chain(&error), "re-encryption stopped; rotate again with --reencrypt to finish it")
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
                .map(|key| {
                    data_key_to_proto(key, Some(key.key_id) == newest, count_of(Some(key.key_id)))
                })
                .collect(),
            plaintext_events: count_of(None),
            reencrypting: self.reencrypting.load(Ordering::SeqCst),
        }))
    }
}
