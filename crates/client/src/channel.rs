//! Connecting to the aggregator: every client setting in one struct, TLS unless plaintext is
//! chosen on purpose, and the bearer token (if any) on every call.

use std::path::PathBuf;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How a client reaches the aggregator.
#[derive(Clone)]
pub struct ClientSettings {
    /// `https://host:port` (`http://` with [`Transport::Insecure`]); a bare `host:port` gets the
    /// scheme of the transport.
    pub endpoint: String,
    pub transport: Transport,
    /// A bearer token (`otk_…`), sent on every call.
    pub token: Option<String>,
    pub connect_timeout: Duration,
    /// Applies to unary calls (lookups); ingest streams are bounded per file instead.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientSettings")
            .field("endpoint", &self.endpoint)
            .field("transport", &self.transport)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// TLS, or plaintext on purpose.
#[derive(Clone, Debug)]
pub enum Transport {
    Tls(TlsFiles),
    Insecure,
}

/// The client's TLS material.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// The CA that signed the aggregator's certificate (PEM); without it, the public web PKI.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM): mutual TLS, e.g. a collector's identity.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the aggregator's certificate must have, when not the endpoint's host.
    pub domain: Option<String>,
}

impl ClientSettings {
    pub fn new(endpoint: impl Into<String>, transport: Transport) -> ClientSettings {
        ClientSettings {
            endpoint: endpoint.into(),
            transport,
            token: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }

    pub fn with_token(mut self, token: Option<String>) -> ClientSettings {
        self.token = token;
        self
    }

    /// The endpoint URL, with the scheme the transport implies.
    pub fn url(&self) -> Result<String, ConnectError> {
        let tls = matches!(self.transport, Transport::Tls(_));
        let endpoint = self.endpoint.trim();
        match (endpoint.split_once("://"), tls) {
            (None, true) => Ok(format!("https://{endpoint}")),
            (None, false) => Ok(format!("http://{endpoint}")),
            (Some(("https", _)), true) | (Some(("http", _)), false) => Ok(endpoint.to_string()),
            (Some(("http", _)), true) => Err(ConnectError::SchemeMismatch(format!(
                "{endpoint} is plaintext (http://) but TLS is on: use https://, or choose plaintext on purpose with --insecure"
            ))),
            (Some(("https", _)), false) => Err(ConnectError::SchemeMismatch(format!(
                "{endpoint} is https:// but the client is set to plaintext (--insecure)"
            ))),
            (Some((scheme, _)), _) => Err(ConnectError::SchemeMismatch(format!(
                "{endpoint}: the scheme {scheme:?} is neither https nor http"
            ))),
        }
    }
}

/// Puts the bearer token on every call.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    authorization: Option<MetadataValue<Ascii>>,
}

impl Credentials {
    pub fn new(settings: &ClientSettings) -> Result<Credentials, ConnectError> {
        let authorization = match &settings.token {
            None => None,
            Some(token) => Some(
                format!("Bearer {}", token.trim())
                    .parse()
                    .map_err(|_| ConnectError::InvalidToken)?,
            ),
        };
        Ok(Credentials { authorization })
    }
}

impl Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry the client's credentials.
pub type AuthChannel = InterceptedService<Channel, Credentials>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    SchemeMismatch(String),
    #[error("the token holds characters a header cannot carry")]
    InvalidToken,
    #[error("cannot read {what} {path}")]
    TlsMaterial {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--cert and --key go together: give both or neither")]
    HalfIdentity,
    #[error("the TLS settings are not usable")]
    Tls(#[source] tonic::transport::Error),
    #[error("{endpoint:?} is not a valid endpoint URL")]
    InvalidEndpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot connect to the aggregator at {endpoint}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
}

fn endpoint(settings: &ClientSettings) -> Result<Endpoint, ConnectError> {
    let url = settings.url()?;
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|source| ConnectError::InvalidEndpoint {
            endpoint: url,
            source,
        })?
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    match &settings.transport {
        Transport::Insecure => Ok(endpoint),
        Transport::Tls(files) => endpoint
            .tls_config(client_tls(files)?)
            .map_err(ConnectError::Tls),
    }
}

fn client_tls(files: &TlsFiles) -> Result<ClientTlsConfig, ConnectError> {
    let read = |what: &'static str, path: &PathBuf| {
        std::fs::read(path).map_err(|source| ConnectError::TlsMaterial {
            what,
            path: path.clone(),
            source,
        })
    };
    let mut config = ClientTlsConfig::new();
    config = match &files.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read("the CA certificate", ca)?)),
        None => config.with_webpki_roots(),
    };
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(
                read("the client certificate", cert)?,
                read("the client key", key)?,
            ));
        }
        (None, None) => {}
        _ => return Err(ConnectError::HalfIdentity),
    }
    if let Some(domain) = &files.domain {
        config = config.domain_name(domain.clone());
    }
    Ok(config)
}

/// A channel for unary calls: each call bounded by the request timeout, each carrying the
/// credentials.
pub async fn connect(settings: &ClientSettings) -> Result<AuthChannel, ConnectError> {
    let credentials = Credentials::new(settings)?;
    let channel = endpoint(settings)?
        .timeout(settings.request_timeout)
        .connect()
        .await
        .map_err(|source| ConnectError::Unreachable {
            endpoint: settings.endpoint.clone(),
            source,
        })?;
    Ok(InterceptedService::new(channel, credentials))
}

/// Like [`connect`], connecting at the first call (and again after failures).
pub fn connect_lazy(settings: &ClientSettings) -> Result<AuthChannel, ConnectError> {
    let credentials = Credentials::new(settings)?;
    let channel = endpoint(settings)?
        .timeout(settings.request_timeout)
        .connect_lazy();
    Ok(InterceptedService::new(channel, credentials))
}

/// The endpoint of ingest streams (no overall timeout: a stream lasts as long as its files
/// take). Each stream gets a connection of its own from it: HTTP/2 streams sharing one
/// connection share its flow-control window, and a stream whose file waits in the aggregator
/// (for another file's uncommitted events) must not starve the stream it waits for.
pub fn stream_endpoint(settings: &ClientSettings) -> Result<Endpoint, ConnectError> {
    endpoint(settings)
}

/// `error: source: source…`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        source = cause.source();
    }
    chain
}
