//! A local certificate authority for the demo and the tests: the CA, the aggregator's server
//! certificate (localhost, 127.0.0.1, ::1) and client certificates whose common names the
//! aggregator's `auth.certificate_roles` map to roles. `cargo xtask pki [--out DIR]` makes one
//! for a user's own trials. Never for production: the CA's key lies beside the certificates.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The client identities made, by common name, with the role the demo and tests give them.
pub const CLIENTS: [(&str, &str); 3] = [
    ("orgtrail-collector", "ingest"),
    ("orgtrail-reader", "reader"),
    ("orgtrail-admin", "admin"),
];

/// The files of a PKI directory.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("aggregator.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("aggregator-key.pem")
    }
    pub fn client_cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }
    pub fn client_key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }

    /// `ORGTRAIL_TLS__*` and `ORGTRAIL_AUTH__*` for an aggregator serving with this PKI.
    pub fn aggregator_environment(&self) -> Vec<(String, String)> {
        let mut environment = vec![
            ("ORGTRAIL_TLS__CERT".into(), display(&self.server_cert())),
            ("ORGTRAIL_TLS__KEY".into(), display(&self.server_key())),
            ("ORGTRAIL_TLS__CLIENT_CA".into(), display(&self.ca())),
        ];
        for (name, role) in CLIENTS {
            environment.push((
                format!("ORGTRAIL_AUTH__CERTIFICATE_ROLES__{name}"),
                role.to_string(),
            ));
        }
        environment
    }

    /// The CLI's flags for one client identity.
    pub fn client_arguments(&self, name: &str) -> Vec<String> {
        vec![
            "--ca".into(),
            display(&self.ca()),
            "--cert".into(),
            display(&self.client_cert(name)),
            "--key".into(),
            display(&self.client_key(name)),
        ]
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The PKI in `dir`, made if any of its files is missing.
pub fn ensure_pki(dir: &Path) -> anyhow::Result<Pki> {
    let pki = Pki {
        dir: dir.to_path_buf(),
    };
    let mut files = vec![pki.ca(), pki.server_cert(), pki.server_key()];
    for (name, _) in CLIENTS {
        files.push(pki.client_cert(name));
        files.push(pki.client_key(name));
    }
    if files.iter().all(|file| file.is_file()) {
        return Ok(pki);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("orgtrail local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("cannot sign the CA")?;
    write(&pki.ca(), &ca_cert.pem(), false)?;
    write(&dir.join("ca-key.pem"), &ca_key.serialize_pem(), true)?;

    let server_key = KeyPair::generate().context("cannot generate a key")?;
    let mut server_params = CertificateParams::new(vec![
        "localhost".to_string(),
        "orgtrail-aggregator".to_string(),
    ])
    .context("invalid server names")?;
    server_params.subject_alt_names.extend([
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ]);
    server_params.distinguished_name = name("orgtrail-aggregator");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params
        .signed_by(&server_key, &ca_cert, &ca_key)
        .context("cannot sign the server certificate")?;
    write(&pki.server_cert(), &server_cert.pem(), false)?;
    write(&pki.server_key(), &server_key.serialize_pem(), true)?;

    for (client, _) in CLIENTS {
        let key = KeyPair::generate().context("cannot generate a key")?;
        let mut params =
            CertificateParams::new(vec![client.to_string()]).context("invalid client name")?;
        params.distinguished_name = name(client);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .context("cannot sign a client certificate")?;
        write(&pki.client_cert(client), &cert.pem(), false)?;
        write(&pki.client_key(client), &key.serialize_pem(), true)?;
    }
    Ok(pki)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes a file; keys are readable by their owner only.
fn write(path: &Path, content: &str, secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 });
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(content.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `cargo xtask pki [--out DIR]`.
pub fn run_pki(arguments: &[String], default_dir: &Path) -> anyhow::Result<()> {
    let dir = match arguments {
        [] => default_dir.to_path_buf(),
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => anyhow::bail!("usage: cargo xtask pki [--out DIR]"),
    };
    let pki = ensure_pki(&dir)?;
    println!("local CA and certificates in {}:", pki.dir.display());
    println!("  CA               {}", pki.ca().display());
    println!(
        "  aggregator       {} {}",
        pki.server_cert().display(),
        pki.server_key().display()
    );
    for (client, role) in CLIENTS {
        println!(
            "  {client:<16} {} {} (role {role} in the demo)",
            pki.client_cert(client).display(),
            pki.client_key(client).display()
        );
    }
    Ok(())
}
