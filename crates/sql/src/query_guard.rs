//! What a query may be: one `SELECT` (with `WITH`, joins, subqueries, set operations, window
//! functions and `EXPLAIN` of those) over `events` and nothing else. Checked twice:
//!
//! 1. DataFusion's own `SQLOptions` refuse DDL (`CREATE`, `DROP`, …), DML (`INSERT`, `UPDATE`,
//!    `DELETE`, `COPY … TO`) and statements (`SET`, transactions, `PREPARE`) while planning;
//! 2. [`check_plan`] walks the planned query node by node and admits only the nodes a read of
//!    `events` is made of, and scans of the view's own sources: a node this code does not know
//!    (a future DataFusion's, an extension) is refused, not let through.
//!
//! The session registers no table but `events`, no `information_schema`, no URL tables and no
//! file-reading table functions, so no other data can even be named.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

/// Why a query may not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks a planned query: only reads of `sources` (the view's own tables).
pub fn check_plan(plan: &LogicalPlan, sources: &[&str]) -> Result<(), Refused> {
    let mut refused: Option<Refused> = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let Err(reason) = check_node(node, sources) {
            refused = Some(reason);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match refused {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

fn check_node(node: &LogicalPlan, sources: &[&str]) -> Result<(), Refused> {
    match node {
        LogicalPlan::TableScan(scan) => {
            let name = scan.table_name.table();
            if sources.contains(&name) {
                Ok(())
            } else {
                Err(Refused(format!(
                    "only the events table can be read, not {}",
                    scan.table_name
                )))
            }
        }
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::Window(_)
        | LogicalPlan::Aggregate(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Join(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Union(_)
        | LogicalPlan::EmptyRelation(_)
        | LogicalPlan::Subquery(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Values(_)
        | LogicalPlan::Distinct(_)
        | LogicalPlan::Unnest(_)
        | LogicalPlan::RecursiveQuery(_)
        | LogicalPlan::Explain(_)
        | LogicalPlan::Analyze(_) => Ok(()),
        LogicalPlan::Dml(_) | LogicalPlan::Copy(_) => Err(Refused(
            "queries read: INSERT, UPDATE, DELETE and COPY are refused".into(),
        )),
        LogicalPlan::Ddl(_) => Err(Refused(
            "queries read: CREATE, DROP and other DDL are refused".into(),
        )),
        LogicalPlan::Statement(_) => Err(Refused(
            "queries read: SET, transactions and prepared statements are refused".into(),
        )),
        LogicalPlan::DescribeTable(_) => Ok(()),
        other => Err(Refused(format!(
            "a query may only read the events table; {} is not allowed",
            other.display()
        ))),
    }
}
