//! [`SqlEngine`]: one query over `events`, within limits. A session is made per query: its
//! catalog holds `events` alone (the caller's scope inside its plan), its memory pool is the
//! query's memory limit, and its results are collected up to the row limit within the time
//! limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::MemTable;
use datafusion::datasource::provider_as_source;
use datafusion::datasource::ViewTable;
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::{
    CacheManager, CacheManagerConfig, FileMetadataCache,
};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, TableSource};
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::StreamExt;
use orgtrail_archive::{archive_schema, HourPartition};

use crate::archive_table::{partition_may_match, ArchiveFile, ArchiveTable, ObjectFetcher};
use crate::geoip::{ip_country, GeoIpDatabase};
use crate::json_functions::{json_extract, json_extract_scalar};
use crate::lake_view::{events_plan, EVENTS_TABLE, EVENT_DATA_STORE_TABLE};
use crate::query_guard::check_plan;

/// The names of the view's sources, which no query can name (they are not in the catalog).
const ARCHIVE_SOURCE: &str = "archived_events";
const HOT_SOURCE: &str = "recent_events";

/// CloudTrail Lake's limit on a query's text.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// The limits of one query.
#[derive(Clone, Debug)]
pub struct SqlLimits {
    /// Result rows; one more is an error, not a silent cut.
    pub max_rows: usize,
    /// Memory for sorts, joins and aggregates; beyond it the query fails.
    pub max_memory_bytes: usize,
    /// Wall time from planning to the last row.
    pub timeout: Duration,
    /// Characters of the query text (Lake's limit is 10,000).
    pub max_query_chars: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_rows: 100_000,
            max_memory_bytes: 512 << 20,
            timeout: Duration::from_secs(60),
            max_query_chars: MAX_QUERY_CHARS,
        }
    }
}

/// Where the events are: archived objects (local Parquet files of the archive's schema, each
/// read once: the caller lists exactly the objects of its snapshot, with the account, region
/// and hour each holds, which prune them), and the events not archived yet as batches of the
/// archive's schema.
#[derive(Clone, Debug, Default)]
pub struct EventSources {
    pub archive_files: Vec<ArchiveFile>,
    /// Fetches the objects a query reaches before they are read; none: they are on disk.
    pub fetcher: Option<Arc<dyn ObjectFetcher>>,
    pub recent: Vec<RecordBatch>,
}

/// Whose events a query may read.
#[derive(Clone, Debug, Default)]
pub struct QueryScope {
    /// `None`: every account. `Some`: only these (none when empty).
    pub accounts: Option<Vec<String>>,
}

/// Which partitions (account, region, hour) a query can read: the filters each of its scans
/// of `events` was given, planned without reading anything.
#[derive(Clone, Debug)]
pub struct Reach {
    scans: Vec<Vec<Expr>>,
}

impl Reach {
    /// Whether the query may read events of `partition`: some scan's filters all may hold.
    pub fn may_read(&self, partition: &HourPartition) -> bool {
        self.scans
            .iter()
            .any(|filters| partition_may_match(filters, partition))
    }
}

/// A query's answer.
#[derive(Clone, Debug)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// Bytes read from the archive's objects (what partition and row-group pruning spared is
    /// not counted).
    pub bytes_scanned: usize,
    /// Archive objects opened: those the query's time, account, region and principal
    /// predicates left.
    pub objects_scanned: usize,
}

impl QueryResult {
    /// Each row as the text of a JSON object, column name → value (nulls left out, nested
    /// values as JSON, times as text), in order.
    pub fn json_lines(&self) -> Result<Vec<String>, SqlError> {
        let mut lines = Vec::with_capacity(self.rows);
        for batch in &self.batches {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
            writer
                .write(batch)
                .and_then(|()| writer.finish())
                .map_err(|error| {
                    SqlError::Failed(format!("cannot write a row as JSON: {error}"))
                })?;
            let text = String::from_utf8(writer.into_inner())
                .map_err(|error| SqlError::Failed(format!("a row is not UTF-8: {error}")))?;
            lines.extend(text.lines().map(str::to_string));
        }
        Ok(lines)
    }
}

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("the query is {chars} characters, over the limit of {limit}")]
    TooLong { chars: usize, limit: usize },
    #[error("refused: {0}")]
    Refused(String),
    #[error("the query is not valid: {0}")]
    Invalid(String),
    #[error("the query returns more than {limit} rows: narrow it or add LIMIT")]
    TooManyRows { limit: usize },
    #[error("the query needs more than {limit_bytes} bytes of memory: narrow it (a time range, fewer groups)")]
    OutOfMemory { limit_bytes: usize },
    #[error("the query took longer than {0:?}")]
    Timeout(Duration),
    #[error("the query failed: {0}")]
    Failed(String),
}

fn classify(error: DataFusionError, limits: &SqlLimits) -> SqlError {
    match error.find_root() {
        DataFusionError::ResourcesExhausted(_) => SqlError::OutOfMemory {
            limit_bytes: limits.max_memory_bytes,
        },
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            SqlError::Invalid(error.strip_backtrace())
        }
        DataFusionError::NotImplemented(_) => SqlError::Invalid(error.strip_backtrace()),
        _ => SqlError::Failed(error.strip_backtrace()),
    }
}

/// The sum of a metric over a plan and its children.
fn metric_sum(plan: &dyn ExecutionPlan, name: &str) -> usize {
    let own = plan
        .metrics()
        .and_then(|metrics| metrics.sum_by_name(name))
        .map_or(0, |value| value.as_usize());
    own + plan
        .children()
        .into_iter()
        .map(|child| metric_sum(child.as_ref(), name))
        .sum::<usize>()
}

/// The archive objects' parsed footers kept in memory between queries, by default: none.
/// Measured over 21,600 objects (`cargo xtask bench sql --metadata-cache-mb`): a cache that
/// cannot hold every footer costs more than it saves (each insert weighs the footer), and one
/// that holds them all (512 MiB for those) saves 30 % of a repeated full scan.
pub const DEFAULT_METADATA_CACHE_BYTES: usize = 0;

/// What the archive's scans of one query recorded.
struct ScanCounters {
    objects: Arc<AtomicUsize>,
    scan_filters: Arc<Mutex<Vec<Vec<Expr>>>>,
}

/// Runs queries over `events`.
#[derive(Clone, Debug)]
pub struct SqlEngine {
    limits: SqlLimits,
    /// The parsed footers of the objects read, shared by every query (least recently used
    /// first out past its bound; a bound of 0 keeps none).
    metadata_cache: Arc<FileMetadataCache>,
    /// The GeoIP database behind `ip_country`, when one is configured.
    geoip: Option<Arc<GeoIpDatabase>>,
}

impl Default for SqlEngine {
    fn default() -> SqlEngine {
        SqlEngine::new(SqlLimits::default())
    }
}

impl SqlEngine {
    pub fn new(limits: SqlLimits) -> SqlEngine {
        SqlEngine::with_metadata_cache(limits, DEFAULT_METADATA_CACHE_BYTES)
    }

    /// An engine that keeps up to `metadata_cache_bytes` of objects' footers between queries.
    pub fn with_metadata_cache(limits: SqlLimits, metadata_cache_bytes: usize) -> SqlEngine {
        let config = CacheManagerConfig::default().with_metadata_cache_limit(metadata_cache_bytes);
        let metadata_cache = CacheManager::try_new(&config)
            .map(|manager| manager.get_file_metadata_cache())
            .expect("CacheManager::try_new accepts every configuration");
        SqlEngine {
            limits,
            metadata_cache,
            geoip: None,
        }
    }

    /// The engine with `ip_country` answering from `database`.
    pub fn with_geoip(mut self, database: Arc<GeoIpDatabase>) -> SqlEngine {
        self.geoip = Some(database);
        self
    }

    pub fn limits(&self) -> &SqlLimits {
        &self.limits
    }

    /// Runs `sql` over `sources` as `scope` may see them.
    pub async fn query(
        &self,
        sql: &str,
        sources: &EventSources,
        scope: &QueryScope,
    ) -> Result<QueryResult, SqlError> {
        let limits = self.limits.clone();
        let run = async {
            let (context, plan, counters) = self.plan(sql, sources, scope).await?;
            let frame = context
                .execute_logical_plan(plan)
                .await
                .map_err(|error| classify(error, &limits))?;
            let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
            let physical = frame
                .create_physical_plan()
                .await
                .map_err(|error| classify(error, &limits))?;
            let mut stream = execute_stream(physical.clone(), context.task_ctx())
                .map_err(|error| classify(error, &limits))?;
            let mut batches = Vec::new();
            let mut rows = 0;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|error| classify(error, &limits))?;
                rows += batch.num_rows();
                if rows > limits.max_rows {
                    return Err(SqlError::TooManyRows {
                        limit: limits.max_rows,
                    });
                }
                batches.push(batch);
            }
            Ok(QueryResult {
                schema,
                batches,
                rows,
                bytes_scanned: metric_sum(physical.as_ref(), "bytes_scanned"),
                objects_scanned: counters.objects.load(Ordering::Relaxed),
            })
        };
        self.within_time_limit(run).await
    }

    /// Which partitions `sql` can read as `scope` sees them, from its plan alone (nothing is
    /// read): the caller then loads only those of the events not archived yet. Refuses what
    /// [`SqlEngine::query`] refuses.
    pub async fn reach(&self, sql: &str, scope: &QueryScope) -> Result<Reach, SqlError> {
        let limits = self.limits.clone();
        let plan = async {
            let (context, plan, counters) = self.plan(sql, &EventSources::default(), scope).await?;
            context
                .execute_logical_plan(plan)
                .await
                .map_err(|error| classify(error, &limits))?
                .create_physical_plan()
                .await
                .map_err(|error| classify(error, &limits))?;
            let scans = counters
                .scan_filters
                .lock()
                .map(|scans| scans.clone())
                .map_err(|_| SqlError::Failed("a scan's filters were lost".into()))?;
            Ok(Reach { scans })
        };
        self.within_time_limit(plan).await
    }

    /// `work`, or a timeout error once the query's time is up.
    async fn within_time_limit<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, SqlError>>,
    ) -> Result<T, SqlError> {
        match tokio::time::timeout(self.limits.timeout, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SqlError::Timeout(self.limits.timeout)),
        }
    }

    /// The session and the checked logical plan of `sql`: refused unless it only reads.
    async fn plan(
        &self,
        sql: &str,
        sources: &EventSources,
        scope: &QueryScope,
    ) -> Result<(SessionContext, LogicalPlan, ScanCounters), SqlError> {
        let chars = sql.chars().count();
        if chars > self.limits.max_query_chars {
            return Err(SqlError::TooLong {
                chars,
                limit: self.limits.max_query_chars,
            });
        }
        let (context, counters) = self.session(sources, scope).await?;
        let plan = context
            .state()
            .create_logical_plan(sql)
            .await
            .map_err(|error| classify(error, &self.limits))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|error| SqlError::Refused(error.strip_backtrace()))?;
        check_plan(
            &plan,
            &[
                EVENTS_TABLE,
                EVENT_DATA_STORE_TABLE,
                ARCHIVE_SOURCE,
                HOT_SOURCE,
            ],
        )
        .map_err(|refused| SqlError::Refused(refused.0))?;
        Ok((context, plan, counters))
    }

    /// A session whose catalog holds `events` alone.
    async fn session(
        &self,
        sources: &EventSources,
        scope: &QueryScope,
    ) -> Result<(SessionContext, ScanCounters), SqlError> {
        let failed = |error: DataFusionError| SqlError::Failed(error.strip_backtrace());
        let caches = CacheManagerConfig::default()
            .with_file_metadata_cache(Some(self.metadata_cache.clone()))
            .with_metadata_cache_limit(self.metadata_cache.cache_limit());
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.max_memory_bytes, 1.0)
            .with_cache_manager(caches)
            .build_arc()
            .map_err(failed)?;
        // No statistics gathered from every object's footer while planning: they cost a third
        // of a query over thousands of small objects, and pruning by partition (account,
        // region, hour) and by row group (at scan time) needs none of them.
        let config = SessionConfig::new()
            .with_collect_statistics(false)
            .with_information_schema(false)
            .with_default_catalog_and_schema("orgtrail", "public");
        let context = SessionContext::new_with_config_rt(config, runtime);
        context.register_udf(json_extract_scalar());
        context.register_udf(json_extract());
        context.register_udf(ip_country(self.geoip.clone()));

        let schema = archive_schema();
        let mut view_sources: Vec<(&str, Arc<dyn TableSource>)> = Vec::new();
        // The archive's table is there even without objects: its scans record their filters.
        let table = ArchiveTable::new(
            schema.clone(),
            sources.archive_files.clone(),
            sources.fetcher.clone(),
        );
        let counters = ScanCounters {
            objects: table.scanned_objects(),
            scan_filters: table.scan_filters(),
        };
        view_sources.push((ARCHIVE_SOURCE, provider_as_source(Arc::new(table))));
        let recent = MemTable::try_new(schema, vec![sources.recent.clone()]).map_err(failed)?;
        view_sources.push((HOT_SOURCE, provider_as_source(Arc::new(recent))));
        let plan = events_plan(view_sources, scope.accounts.as_deref()).map_err(failed)?;
        let view = Arc::new(ViewTable::new(plan, None));
        context
            .register_table(EVENTS_TABLE, view.clone())
            .map_err(failed)?;
        // CloudTrail Lake's queries name the event data store; orgtrail's is `orgtrail`.
        context
            .register_table(EVENT_DATA_STORE_TABLE, view)
            .map_err(failed)?;
        Ok((context, counters))
    }
}
