//! The local CA that `cargo xtask test` makes (`ORGTRAIL_TEST_PKI`): the aggregator's TLS
//! settings, and the client identities of the tests — an admin, a reader and a collector —
//! whose certificate names the aggregator maps to those roles. A rogue CA of a test's own
//! stands for a certificate nobody trusts.

use std::path::{Path, PathBuf};

use orgtrail_client::{TlsFiles, Transport};

/// Where `cargo xtask test` put the CA and the certificates.
pub const PKI_VARIABLE: &str = "ORGTRAIL_TEST_PKI";

/// A client identity of the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIdentity {
    Admin,
    Reader,
    Collector,
}

impl ClientIdentity {
    /// The certificate's common name, as `cargo xtask` makes it.
    pub fn certificate_name(self) -> &'static str {
        match self {
            ClientIdentity::Admin => "orgtrail-admin",
            ClientIdentity::Reader => "orgtrail-reader",
            ClientIdentity::Collector => "orgtrail-collector",
        }
    }
}

pub fn pki_dir() -> PathBuf {
    let dir = std::env::var_os(PKI_VARIABLE).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{PKI_VARIABLE} is not set: run the tests with `cargo xtask test`, which makes the local CA they need")
    });
    if !dir.join("ca.pem").is_file() {
        panic!(
            "{} holds no ca.pem: run the tests with `cargo xtask test`, which makes it",
            dir.display()
        );
    }
    dir
}

pub fn ca_file() -> PathBuf {
    pki_dir().join("ca.pem")
}

pub fn certificate_file(identity: ClientIdentity) -> PathBuf {
    pki_dir().join(format!("{}.pem", identity.certificate_name()))
}

pub fn key_file(identity: ClientIdentity) -> PathBuf {
    pki_dir().join(format!("{}-key.pem", identity.certificate_name()))
}

/// TLS to the test aggregator as `identity`.
pub fn client_transport(identity: ClientIdentity) -> Transport {
    Transport::Tls(TlsFiles {
        ca: Some(ca_file()),
        cert: Some(certificate_file(identity)),
        key: Some(key_file(identity)),
        domain: None,
    })
}

/// TLS to the test aggregator with no client certificate (a token caller).
pub fn anonymous_transport() -> Transport {
    Transport::Tls(TlsFiles {
        ca: Some(ca_file()),
        ..TlsFiles::default()
    })
}

/// The aggregator's `ORGTRAIL_*` settings: its certificate, the client CA, the roles of the
/// test identities.
pub fn aggregator_environment() -> Vec<(String, String)> {
    let dir = pki_dir();
    let path = |name: &str| dir.join(name).display().to_string();
    let mut environment = vec![
        ("ORGTRAIL_TLS__CERT".to_string(), path("aggregator.pem")),
        ("ORGTRAIL_TLS__KEY".to_string(), path("aggregator-key.pem")),
        ("ORGTRAIL_TLS__CLIENT_CA".to_string(), path("ca.pem")),
    ];
    for (identity, role) in [
        (ClientIdentity::Admin, "admin"),
        (ClientIdentity::Reader, "reader"),
        (ClientIdentity::Collector, "ingest"),
    ] {
        environment.push((
            format!(
                "ORGTRAIL_AUTH__CERTIFICATE_ROLES__{}",
                identity.certificate_name()
            ),
            role.to_string(),
        ));
    }
    environment
}

/// The `orgtrail` CLI's environment for `identity`.
pub fn cli_environment(identity: ClientIdentity) -> Vec<(String, String)> {
    vec![
        ("ORGTRAIL_CA".into(), ca_file().display().to_string()),
        (
            "ORGTRAIL_CERT".into(),
            certificate_file(identity).display().to_string(),
        ),
        (
            "ORGTRAIL_KEY".into(),
            key_file(identity).display().to_string(),
        ),
    ]
}

/// The lines of a collector's `[aggregator]` table that give it TLS as `identity`.
pub fn collector_tls_toml(identity: ClientIdentity) -> String {
    format!(
        "ca = {:?}\ncert = {:?}\nkey = {:?}\n",
        ca_file().display().to_string(),
        certificate_file(identity).display().to_string(),
        key_file(identity).display().to_string()
    )
}

/// A CA nobody configured, and a client certificate it signed named like the admin: written to
/// `dir` as `rogue-ca.pem`, `rogue-client.pem`, `rogue-client-key.pem`.
pub fn write_rogue_client(dir: &Path) -> TlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap_or_else(|error| panic!("rcgen: {error}"));
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rogue CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params
        .self_signed(&ca_key)
        .unwrap_or_else(|error| panic!("rcgen: {error}"));
    let key = KeyPair::generate().unwrap_or_else(|error| panic!("rcgen: {error}"));
    let mut params =
        CertificateParams::new(vec![ClientIdentity::Admin.certificate_name().to_string()])
            .unwrap_or_else(|error| panic!("rcgen: {error}"));
    params
        .distinguished_name
        .push(DnType::CommonName, ClientIdentity::Admin.certificate_name());
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .unwrap_or_else(|error| panic!("rcgen: {error}"));
    let write = |name: &str, content: String| {
        let path = dir.join(name);
        std::fs::write(&path, content)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        path
    };
    write("rogue-ca.pem", ca.pem());
    TlsFiles {
        ca: Some(ca_file()),
        cert: Some(write("rogue-client.pem", cert.pem())),
        key: Some(write("rogue-client-key.pem", key.serialize_pem())),
        domain: None,
    }
}
