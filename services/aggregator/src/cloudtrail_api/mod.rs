//! The CloudTrail-compatible endpoint (`cloudtrail_api.listen`): CloudTrail's own wire protocol
//! (AWS JSON 1.1 over HTTPS, SigV4), so the AWS CLI, boto3, the AWS SDKs and every tool built on
//! `LookupEvents` point at orgtrail with `--endpoint-url` and nothing else changes.
//!
//! This module is the listener: TLS with the gRPC server's certificate and key (HTTP/1.1, as
//! AWS's clients speak to CloudTrail), a bound on connections, and draining with the rest of
//! the server. [`handler`] answers each request; the protocol itself (parsing, errors, SigV4)
//! is the pure crate `orgtrail_cloudtrail_api`.

mod handler;
mod lake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use handler::CloudTrailApi;
pub use lake::LakeQueries;

use crate::config::ServerTransport;
use crate::drain::Drain;

/// Connections open at once; one more is closed at once (clients retry).
const MAX_CONNECTIONS: usize = 1024;
/// A TLS handshake, or a request's headers, taking longer than this ends the connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed (gracefully, between requests) after this, busy or not: a client
/// cannot hold a slot for ever, and reconnects.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum CloudTrailApiError {
    #[error("cannot read {what} {path}")]
    TlsMaterial {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the TLS material is not usable for the CloudTrail-compatible endpoint")]
    Tls(#[source] rustls::Error),
    #[error("cannot listen on {address} (cloudtrail_api.listen)")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The endpoint's TLS: the gRPC server's certificate and key; `None` when plaintext was chosen
/// on purpose (`--insecure`). No client certificates: callers sign with SigV4.
pub fn load_tls(
    transport: &ServerTransport,
) -> Result<Option<Arc<rustls::ServerConfig>>, CloudTrailApiError> {
    let ServerTransport::Tls { cert, key, .. } = transport else {
        tracing::warn!("serving the CloudTrail-compatible endpoint over plaintext HTTP (--insecure): the events cross the network in the clear");
        return Ok(None);
    };
    let certificates = CertificateDer::pem_file_iter(cert)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|source| CloudTrailApiError::TlsMaterial {
            what: "the server certificate",
            path: cert.clone(),
            source,
        })?;
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(|source| CloudTrailApiError::TlsMaterial {
            what: "the server key",
            path: key.clone(),
            source,
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(CloudTrailApiError::Tls)?
    .with_no_client_auth()
    .with_single_cert(certificates, private_key)
    .map_err(CloudTrailApiError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Binds the endpoint's listener (before serving, so a taken port fails the start).
pub async fn bind(address: SocketAddr) -> Result<TcpListener, CloudTrailApiError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| CloudTrailApiError::Bind { address, source })
}

/// Serves the endpoint until draining starts; requests in flight then finish (each is bounded
/// by the request timeout) while their connections close.
pub async fn serve_cloudtrail_api(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    api: Arc<CloudTrailApi>,
    drain: Drain,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = drain.started() => return,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, mostly: wait a little rather than spin.
                tracing::warn!(%error, "cannot accept a CloudTrail-API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%remote, limit = MAX_CONNECTIONS, "CloudTrail-API connection refused: too many open");
            continue;
        };
        // Answers are small and written at once: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        let drain = drain.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                None => serve_connection(stream, remote, api, drain).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, remote, api, drain).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%remote, %error, "CloudTrail-API TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "CloudTrail-API TLS handshake timed out")
                        }
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(stream: S, remote: SocketAddr, api: Arc<CloudTrailApi>, drain: Drain)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let api = api.clone();
        async move { Ok::<_, std::convert::Infallible>(api.answer(request, remote).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = drain.started() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(%remote, %error, "CloudTrail-API connection ended with an error");
    }
}
