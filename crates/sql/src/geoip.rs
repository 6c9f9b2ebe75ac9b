//! `ip_country(ip)`: the ISO 3166-1 alpha-2 country of an IP address, from a GeoIP country
//! database in MaxMind's format that the operator configures (`query.geoip_file`): MaxMind's
//! GeoLite2 or GeoIP2 Country (`country.iso_code`) or DB-IP's IP-to-Country Lite
//! (`country_code`), IPv4 and IPv6. Null for text that is not an address (CloudTrail writes a
//! service's name, such as `s3.amazonaws.com`, when a service calls) and for addresses the
//! database does not place (private ranges). Without a database the function is still known,
//! and a query calling it fails saying what to configure.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde::Deserialize;

/// Why a GeoIP database cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path} is not a readable GeoIP database in MaxMind's format: {detail}")]
pub struct GeoIpError {
    pub path: PathBuf,
    pub detail: String,
}

/// A country database, read into memory once.
pub struct GeoIpDatabase {
    path: PathBuf,
    reader: maxminddb::Reader<Vec<u8>>,
}

impl fmt::Debug for GeoIpDatabase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("GeoIpDatabase")
            .field("path", &self.path)
            .field("type", &self.reader.metadata.database_type)
            .finish()
    }
}

/// The two record shapes: MaxMind's and DB-IP's (as ip-location-db publishes it).
#[derive(Deserialize)]
struct CountryRecord {
    country: Option<IsoCode>,
    country_code: Option<String>,
}

#[derive(Deserialize)]
struct IsoCode {
    iso_code: Option<String>,
}

impl GeoIpDatabase {
    /// Opens `path` and checks that it answers with countries.
    pub fn open(path: &Path) -> std::result::Result<GeoIpDatabase, GeoIpError> {
        let failed = |detail: String| GeoIpError {
            path: path.to_path_buf(),
            detail,
        };
        let reader =
            maxminddb::Reader::open_readfile(path).map_err(|error| failed(error.to_string()))?;
        let database_type = reader.metadata.database_type.to_ascii_lowercase();
        if !database_type.contains("country") {
            return Err(failed(format!(
                "its type is {:?}, not a country database (GeoLite2-Country, GeoIP2-Country or DB-IP's country lite)",
                reader.metadata.database_type
            )));
        }
        Ok(GeoIpDatabase {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// The country of `address`, if it is an IP address the database places.
    pub fn country(&self, address: &str) -> Option<String> {
        let address: IpAddr = address.trim().parse().ok()?;
        let record: CountryRecord = self.reader.lookup(address).ok()??;
        record
            .country
            .and_then(|country| country.iso_code)
            .or(record.country_code)
    }
}

#[derive(Debug)]
struct IpCountry {
    database: Option<Arc<GeoIpDatabase>>,
    signature: Signature,
}

impl PartialEq for IpCountry {
    fn eq(&self, other: &IpCountry) -> bool {
        self.database.as_ref().map(|database| &database.path)
            == other.database.as_ref().map(|database| &database.path)
    }
}

impl Eq for IpCountry {}

impl std::hash::Hash for IpCountry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.database
            .as_ref()
            .map(|database| &database.path)
            .hash(state);
    }
}

impl ScalarUDFImpl for IpCountry {
    fn name(&self) -> &str {
        "ip_country"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [address] = args.args.as_slice() else {
            return plan_err!("ip_country takes one IP address");
        };
        let Some(database) = &self.database else {
            return exec_err!(
                "ip_country needs a GeoIP country database: set query.geoip_file (a GeoLite2-Country or DB-IP country lite .mmdb)"
            );
        };
        let rows = args.number_rows;
        let addresses = address.to_array(rows)?;
        let addresses = addresses.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(rows, rows * 2);
        for row in 0..rows {
            if addresses.is_null(row) {
                out.append_null();
            } else {
                out.append_option(database.country(addresses.value(row)));
            }
        }
        let array: ArrayRef = Arc::new(out.finish());
        Ok(ColumnarValue::Array(array))
    }
}

/// `ip_country(ip)` over `database` (none: every call fails, saying what to configure).
pub fn ip_country(database: Option<Arc<GeoIpDatabase>>) -> ScalarUDF {
    ScalarUDF::from(IpCountry {
        database,
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
    })
}
