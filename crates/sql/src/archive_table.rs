//! The archive as a table that prunes: each object is one account, region and hour
//! ([`HourPartition`]), with the principals of its events when the archiver recorded them, so
//! a query's predicates on `eventtime`, `recipientaccountid`, `awsregion` and
//! `useridentity.arn` (the caller's scope among them), pushed down through the `events` view,
//! decide which objects are fetched and opened at all — before a byte of them is read. The
//! predicates stay above the scan as well (the pruning is inexact: it never drops an object
//! that may hold a matching event, and keeps some that hold none). Each scan's filters are
//! also recorded, for [`crate::SqlEngine::reach`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::TableType;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use orgtrail_archive::object_key::{DEFAULT_PARTITION_VALUE, EVENTS_FOLDER};
use orgtrail_archive::schema::column;
use orgtrail_archive::{HourPartition, ObjectKey};

/// Microseconds in an hour: an object's events lie in `[hour, hour + HOUR_MICROS)`.
const HOUR_MICROS: i64 = 3_600_000_000;

/// One archived object: the local copy to read, the partition it holds, and — when the
/// archiver recorded them — the principals (`userIdentity.arn`) of its events, sorted, so a
/// query for one principal opens only the objects that hold it.
#[derive(Clone, Debug)]
pub struct ArchiveFile {
    pub path: PathBuf,
    pub partition: HourPartition,
    /// `None`: not known (the object may hold any principal).
    pub principals: Option<Arc<[String]>>,
}

impl ArchiveFile {
    /// The object whose key ends `key` (`…events/account=…/region=…/day=…/HH-NNNN.parquet`,
    /// whatever precedes it), kept at `path`; `None` when `key` is no archive object's key.
    pub fn from_key(path: PathBuf, key: &str) -> Option<ArchiveFile> {
        let start = key.rfind(&format!("{EVENTS_FOLDER}/account="))?;
        let key = ObjectKey::parse(&key[start..])?;
        Some(ArchiveFile {
            path,
            partition: key.partition,
            principals: None,
        })
    }

    /// The object with the principals its events have (any order, repeats allowed).
    pub fn with_principals(mut self, principals: impl IntoIterator<Item = String>) -> ArchiveFile {
        let mut principals: Vec<String> = principals.into_iter().collect();
        principals.sort_unstable();
        principals.dedup();
        self.principals = Some(principals.into());
        self
    }
}

/// What makes the local copies of archived objects present before a scan reads them: the
/// aggregator fetches from the archive's bucket only the objects a query's predicates reach.
#[async_trait]
pub trait ObjectFetcher: std::fmt::Debug + Send + Sync {
    /// Makes every one of `files` readable at its `path`; the error says which one is not.
    async fn fetch(&self, files: Vec<ArchiveFile>) -> std::result::Result<(), String>;
}

/// Every archive object kept under `directory` (a local copy of the archive's keys, at any
/// depth), sorted by path; files that are not archive objects are left out.
pub fn archive_files_under(directory: &Path) -> std::io::Result<Vec<ArchiveFile>> {
    let mut found = Vec::new();
    let mut folders = vec![directory.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if let Some(file) = path
                .to_str()
                .map(str::to_string)
                .and_then(|key| ArchiveFile::from_key(path, &key))
            {
                found.push(file);
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// The archived objects of one query, in the archive's schema.
#[derive(Debug)]
pub struct ArchiveTable {
    schema: SchemaRef,
    files: Vec<ArchiveFile>,
    /// None: the files are on local disk already.
    fetcher: Option<Arc<dyn ObjectFetcher>>,
    /// Objects the scans planned so far read (each scan counts its own).
    scanned: Arc<AtomicUsize>,
    /// The filters each scan planned so far was given, one list per scan.
    scan_filters: Arc<Mutex<Vec<Vec<Expr>>>>,
}

impl ArchiveTable {
    pub fn new(
        schema: SchemaRef,
        files: Vec<ArchiveFile>,
        fetcher: Option<Arc<dyn ObjectFetcher>>,
    ) -> ArchiveTable {
        ArchiveTable {
            schema,
            files,
            fetcher,
            scanned: Arc::default(),
            scan_filters: Arc::default(),
        }
    }

    /// The filters of every scan planned so far, shared.
    pub fn scan_filters(&self) -> Arc<Mutex<Vec<Vec<Expr>>>> {
        self.scan_filters.clone()
    }

    /// The count of objects this table's scans read, shared.
    pub fn scanned_objects(&self) -> Arc<AtomicUsize> {
        self.scanned.clone()
    }

    /// The objects that may hold an event every one of `filters` keeps.
    pub fn candidates(&self, filters: &[Expr]) -> Vec<&ArchiveFile> {
        self.files
            .iter()
            .filter(|file| filters.iter().all(|filter| may_match(filter, file)))
            .collect()
    }
}

#[async_trait]
impl TableProvider for ArchiveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Ok(mut scans) = self.scan_filters.lock() {
            scans.push(filters.to_vec());
        }
        let candidates = self.candidates(filters);
        self.scanned.fetch_add(candidates.len(), Ordering::Relaxed);
        if candidates.is_empty() {
            let schema = match projection {
                Some(indices) => Arc::new(self.schema.project(indices)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        if let Some(fetcher) = &self.fetcher {
            fetcher
                .fetch(candidates.iter().map(|file| (*file).clone()).collect())
                .await
                .map_err(|error| DataFusionError::External(error.into()))?;
        }
        // One group of objects per target partition, in order; each object read whole from
        // its local copy, its size known (no listing, no statistics gathered while planning).
        let mut files = Vec::with_capacity(candidates.len());
        for file in &candidates {
            let size = std::fs::metadata(&file.path)
                .map_err(|error| {
                    DataFusionError::Execution(format!(
                        "archive object {} cannot be read: {error}",
                        file.path.display()
                    ))
                })?
                .len();
            let location = file.path.to_string_lossy();
            files.push(PartitionedFile::new(
                location.trim_start_matches('/').to_string(),
                size,
            ));
        }
        let groups = state.config().target_partitions().max(1);
        let per_group = files.len().div_ceil(groups);
        let file_groups: Vec<FileGroup> = files
            .chunks(per_group)
            .map(|chunk| FileGroup::new(chunk.to_vec()))
            .collect();
        let format = ParquetFormat::default();
        let source = format.file_source(self.schema.clone().into());
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
            .with_file_groups(file_groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}

/// Whether events of `partition` (principals unknown) may be kept by every one of `filters`.
pub fn partition_may_match(filters: &[Expr], partition: &HourPartition) -> bool {
    let file = ArchiveFile {
        path: PathBuf::new(),
        partition: partition.clone(),
        principals: None,
    };
    filters.iter().all(|filter| may_match(filter, &file))
}

/// Whether `file` may hold an event `filter` keeps: false only when its account, region, hour
/// or principals rule every such event out; anything not understood may match.
fn may_match(filter: &Expr, file: &ArchiveFile) -> bool {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => may_match(left, file) && may_match(right, file),
            Operator::Or => may_match(left, file) || may_match(right, file),
            _ => match (
                column_name(left),
                literal(right),
                column_name(right),
                literal(left),
            ) {
                (Some(name), Some(value), _, _) => compare(name, *op, value, file),
                (_, _, Some(name), Some(value)) => match op.swap() {
                    Some(op) => compare(name, op, value, file),
                    None => true,
                },
                _ => true,
            },
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => match column_name(expr) {
            Some(name) => list.iter().any(|item| match literal(item) {
                Some(value) => compare(name, Operator::Eq, value, file),
                None => true,
            }),
            None => true,
        },
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => match (column_name(expr), literal(low), literal(high)) {
            (Some(name), Some(low), Some(high)) => {
                compare(name, Operator::GtEq, low, file)
                    && compare(name, Operator::LtEq, high, file)
            }
            _ => true,
        },
        // `false` itself (the scope of a caller with no account) keeps nothing.
        Expr::Literal(ScalarValue::Boolean(Some(false)), _) => false,
        _ => true,
    }
}

/// The column a predicate side names: itself, or under a cast between timestamp types (which
/// keeps order).
fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(column) => Some(column.name.as_str()),
        Expr::Cast(cast) if matches!(cast.field.data_type(), DataType::Timestamp(..)) => match cast
            .expr
            .as_ref()
        {
            Expr::Column(column) if column.name == column::EVENT_TIME => Some(column.name.as_str()),
            _ => None,
        },
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value),
        _ => None,
    }
}

/// Whether `name op value` may hold for an event of `file`.
fn compare(name: &str, op: Operator, value: &ScalarValue, file: &ArchiveFile) -> bool {
    let partition = &file.partition;
    match name {
        column::USER_ARN => match (&file.principals, op, text(value)) {
            (Some(principals), Operator::Eq, Some(arn)) => principals
                .binary_search_by(|principal| principal.as_str().cmp(arn))
                .is_ok(),
            _ => true,
        },
        column::ACCOUNT_ID => same_value(op, value, &partition.account),
        column::AWS_REGION => same_value(op, value, &partition.region),
        column::EVENT_TIME => {
            let Some(at) = nanos(value) else {
                return true;
            };
            // The object's events are whole microseconds in [first, last].
            let first = i128::from(partition.hour.timestamp_micros()) * 1_000;
            let last = first + i128::from(HOUR_MICROS - 1) * 1_000;
            match op {
                Operator::Eq => first <= at && at <= last,
                Operator::Lt => first < at,
                Operator::LtEq => first <= at,
                Operator::Gt => last > at,
                Operator::GtEq => last >= at,
                _ => true,
            }
        }
        _ => true,
    }
}

/// `column = value` for a column every event of the object holds as `folder` — unless the
/// folder is the default one, which holds whatever was not a valid account or region.
fn same_value(op: Operator, value: &ScalarValue, folder: &str) -> bool {
    if op != Operator::Eq || folder == DEFAULT_PARTITION_VALUE {
        return true;
    }
    match text(value) {
        Some(text) => text == folder,
        // `= NULL` holds for no event.
        None if value.is_null() => false,
        None => true,
    }
}

/// A text literal's value.
fn text(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::Utf8(Some(text))
        | ScalarValue::Utf8View(Some(text))
        | ScalarValue::LargeUtf8(Some(text)) => Some(text),
        _ => None,
    }
}

/// A timestamp literal as nanoseconds since the epoch (a literal without a time zone is UTC,
/// the session's zone).
fn nanos(value: &ScalarValue) -> Option<i128> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => Some(i128::from(*v) * 1_000_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => Some(i128::from(*v) * 1_000_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(i128::from(*v) * 1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(i128::from(*v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use datafusion::logical_expr::{col, lit};

    fn object() -> ArchiveFile {
        ArchiveFile {
            path: PathBuf::from("/archive/object.parquet"),
            partition: HourPartition::new(
                Some("111122223333"),
                Some("us-east-1"),
                Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).unwrap(),
            ),
            principals: None,
        }
    }

    fn at(hour: u32, minute: u32) -> Expr {
        let time = Utc.with_ymd_and_hms(2026, 7, 1, hour, minute, 0).unwrap();
        lit(ScalarValue::TimestampMicrosecond(
            Some(time.timestamp_micros()),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn time_bounds_keep_exactly_the_hours_they_reach() {
        let time = || col(column::EVENT_TIME);
        let cases = [
            (time().gt_eq(at(10, 59)), true),
            (time().gt_eq(at(11, 0)), false),
            (time().gt(at(10, 59)), true),
            (time().lt(at(10, 0)), false),
            (time().lt(at(10, 1)), true),
            (time().lt_eq(at(10, 0)), true),
            (time().eq(at(10, 30)), true),
            (time().eq(at(9, 30)), false),
            (at(11, 0).lt_eq(time()), false),
            (time().between(at(8, 0), at(9, 59)), false),
            (time().between(at(8, 0), at(10, 0)), true),
        ];
        for (filter, expected) in cases {
            assert_eq!(may_match(&filter, &object()), expected, "{filter}");
        }
    }

    #[test]
    fn accounts_and_regions_prune_by_equality_and_lists() {
        let account = || col(column::ACCOUNT_ID);
        let cases = [
            (account().eq(lit("111122223333")), true),
            (account().eq(lit("444455556666")), false),
            (account().not_eq(lit("111122223333")), true),
            (
                account().in_list(vec![lit("444455556666"), lit("111122223333")], false),
                true,
            ),
            (account().in_list(vec![lit("444455556666")], false), false),
            (account().in_list(vec![lit("444455556666")], true), true),
            (col(column::AWS_REGION).eq(lit("eu-west-1")), false),
            (
                col(column::AWS_REGION)
                    .eq(lit("eu-west-1"))
                    .or(account().eq(lit("111122223333"))),
                true,
            ),
            (
                col(column::AWS_REGION)
                    .eq(lit("us-east-1"))
                    .and(account().eq(lit("444455556666"))),
                false,
            ),
            (col(column::EVENT_NAME).eq(lit("ConsoleLogin")), true),
            (lit(false), false),
        ];
        for (filter, expected) in cases {
            assert_eq!(may_match(&filter, &object()), expected, "{filter}");
        }
    }

    #[test]
    fn recorded_principals_prune_by_equality_and_lists_and_unknown_ones_do_not() {
        let arn = |name: &str| lit(format!("arn:aws:iam::111122223333:user/{name}"));
        let principal = || col(column::USER_ARN);
        let known = object().with_principals([
            "arn:aws:iam::111122223333:user/bob".to_string(),
            "arn:aws:iam::111122223333:user/alice".to_string(),
        ]);
        let cases = [
            (principal().eq(arn("alice")), true),
            (principal().eq(arn("mallory")), false),
            (arn("bob").eq(principal()), true),
            (
                principal().in_list(vec![arn("mallory"), arn("bob")], false),
                true,
            ),
            (principal().in_list(vec![arn("mallory")], false), false),
            (principal().not_eq(arn("alice")), true),
            (
                principal()
                    .eq(arn("mallory"))
                    .or(principal().eq(arn("alice"))),
                true,
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(may_match(&filter, &known), expected, "{filter}");
            assert!(
                may_match(&filter, &object()),
                "unknown principals: {filter}"
            );
        }
    }

    #[test]
    fn the_default_folder_holds_any_value() {
        let mut odd = object();
        odd.partition = HourPartition::new(
            Some("not-an-account"),
            None,
            Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).unwrap(),
        );
        assert!(may_match(
            &col(column::ACCOUNT_ID).eq(lit("444455556666")),
            &odd
        ));
        assert!(may_match(
            &col(column::AWS_REGION).eq(lit("eu-west-1")),
            &odd
        ));
    }
}
