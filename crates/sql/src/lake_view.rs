//! The `events` table: CloudTrail Lake's columns (shared reference §7) computed from the archive's
//! schema (`orgtrail_archive::archive_schema`), over the union of the archived objects and the
//! events not archived yet, narrowed to the caller's accounts by a filter inside the view's own
//! plan — below every query's joins, subqueries and unions, since `events` is the only table a
//! query can name.
//!
//! Columns the archive keeps (times, names, the caller, errors) are read from their Parquet
//! columns, so a query reads only what it names; the free-form ones (`requestparameters`,
//! `responseelements`, `additionaleventdata`, `resources`, …) are JSON text taken from the
//! original record (`eventjson`) on demand, for `json_extract_scalar` and `json_extract`.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::logical_expr::{col, lit, Expr, LogicalPlan, LogicalPlanBuilder, TableSource};
use orgtrail_archive::schema::column;

use crate::json_functions::{json_extract, json_extract_scalar};

/// The one table a query reads.
pub const EVENTS_TABLE: &str = "events";
/// The same table under the name of orgtrail's event data store, for Lake's queries
/// (`SELECT … FROM orgtrail`).
pub const EVENT_DATA_STORE_TABLE: &str = "orgtrail";

/// The Lake columns, in order, with what each is (for the documentation and `DESCRIBE`).
pub fn lake_columns() -> Vec<(&'static str, &'static str)> {
    vec![
        ("eventversion", "text"),
        (
            "useridentity",
            "struct: type, principalid, arn, accountid, accesskeyid, username, invokedby, sessioncontext (JSON text)",
        ),
        ("eventtime", "timestamp (UTC)"),
        ("eventsource", "text"),
        ("eventname", "text"),
        ("awsregion", "text"),
        ("sourceipaddress", "text"),
        ("useragent", "text"),
        ("errorcode", "text"),
        ("errormessage", "text"),
        ("requestparameters", "JSON text"),
        ("responseelements", "JSON text"),
        ("additionaleventdata", "JSON text"),
        ("requestid", "text"),
        ("eventid", "text"),
        ("readonly", "boolean"),
        ("resources", "JSON text (the record's resources list)"),
        ("resourcearns", "list of text (orgtrail's: each resource's ARN)"),
        ("eventtype", "text"),
        ("apiversion", "text"),
        ("managementevent", "boolean"),
        ("recipientaccountid", "text"),
        ("sharedeventid", "text"),
        ("vpcendpointid", "text"),
        ("serviceeventdetails", "JSON text"),
        ("insightdetails", "JSON text"),
        ("eventcategory", "text"),
        ("tlsdetails", "JSON text"),
        ("sessioncredentialfromconsole", "text"),
        ("eventjson", "JSON text: the original record"),
    ]
}

fn record_scalar(path: &str) -> Expr {
    json_extract_scalar().call(vec![col(column::RECORD), lit(path)])
}

fn record_json(path: &str) -> Expr {
    json_extract().call(vec![col(column::RECORD), lit(path)])
}

/// The Lake columns as expressions over the archive's columns.
fn lake_projection() -> Vec<Expr> {
    let user_identity = datafusion::functions::core::expr_fn::named_struct(vec![
        lit("type"),
        col(column::USER_TYPE),
        lit("principalid"),
        col(column::USER_PRINCIPAL_ID),
        lit("arn"),
        col(column::USER_ARN),
        lit("accountid"),
        col(column::USER_ACCOUNT_ID),
        lit("accesskeyid"),
        col(column::ACCESS_KEY_ID),
        lit("username"),
        record_scalar("$.userIdentity.userName"),
        lit("invokedby"),
        record_scalar("$.userIdentity.invokedBy"),
        lit("sessioncontext"),
        record_json("$.userIdentity.sessionContext"),
    ]);
    vec![
        col(column::EVENT_VERSION).alias("eventversion"),
        user_identity.alias("useridentity"),
        col(column::EVENT_TIME).alias("eventtime"),
        col(column::EVENT_SOURCE).alias("eventsource"),
        col(column::EVENT_NAME).alias("eventname"),
        col(column::AWS_REGION).alias("awsregion"),
        col(column::SOURCE_IP_ADDRESS).alias("sourceipaddress"),
        col(column::USER_AGENT).alias("useragent"),
        col(column::ERROR_CODE).alias("errorcode"),
        col(column::ERROR_MESSAGE).alias("errormessage"),
        record_json("$.requestParameters").alias("requestparameters"),
        record_json("$.responseElements").alias("responseelements"),
        record_json("$.additionalEventData").alias("additionaleventdata"),
        record_scalar("$.requestID").alias("requestid"),
        col(column::EVENT_ID).alias("eventid"),
        col(column::READ_ONLY).alias("readonly"),
        record_json("$.resources").alias("resources"),
        col(column::RESOURCE_ARNS).alias("resourcearns"),
        col(column::EVENT_TYPE).alias("eventtype"),
        record_scalar("$.apiVersion").alias("apiversion"),
        col(column::MANAGEMENT_EVENT).alias("managementevent"),
        col(column::ACCOUNT_ID).alias("recipientaccountid"),
        record_scalar("$.sharedEventID").alias("sharedeventid"),
        record_scalar("$.vpcEndpointId").alias("vpcendpointid"),
        record_json("$.serviceEventDetails").alias("serviceeventdetails"),
        record_json("$.insightDetails").alias("insightdetails"),
        col(column::EVENT_CATEGORY).alias("eventcategory"),
        record_json("$.tlsDetails").alias("tlsdetails"),
        record_scalar("$.sessionCredentialFromConsole").alias("sessioncredentialfromconsole"),
        col(column::RECORD).alias("eventjson"),
    ]
}

/// The plan of `events`: the sources (each of the archive's schema) unioned, narrowed to
/// `accounts` when given (`None`: every account; an empty list: none), projected to Lake's
/// columns.
pub fn events_plan(
    sources: Vec<(&str, Arc<dyn TableSource>)>,
    accounts: Option<&[String]>,
) -> Result<LogicalPlan> {
    let mut plan: Option<LogicalPlanBuilder> = None;
    for (name, source) in sources {
        let scan = LogicalPlanBuilder::scan(name, source, None)?;
        plan = Some(match plan {
            None => scan,
            Some(plan) => plan.union(scan.build()?)?,
        });
    }
    let Some(mut plan) = plan else {
        return datafusion::common::plan_err!("the events table has no source");
    };
    if let Some(accounts) = accounts {
        let allowed = col(column::ACCOUNT_ID).in_list(
            accounts
                .iter()
                .map(|account| lit(account.as_str()))
                .collect(),
            false,
        );
        // No account at all reads nothing (an empty IN list is not valid SQL everywhere).
        let filter = if accounts.is_empty() {
            lit(false)
        } else {
            allowed
        };
        plan = plan.filter(filter)?;
    }
    plan.project(lake_projection())?.build()
}
