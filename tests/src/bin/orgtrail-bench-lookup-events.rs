//! `orgtrail-bench-lookup-events`: the load `cargo xtask bench lookup-events` puts on the
//! CloudTrail-compatible endpoint, with the AWS SDK for Rust's own CloudTrail client (SigV4, AWS
//! JSON 1.1, TLS with the given CA) as the caller. xtask knows no AWS SDK, so it runs this
//! (built with the release binaries).
//!
//! ```text
//! orgtrail-bench-lookup-events --endpoint URL --ca FILE --access-key-id ID --secret-access-key S
//!     --callers N --seconds S --query LABEL ATTRIBUTES PAGES [--query …]
//! ```
//!
//! Each query runs on its own for S seconds with N callers on one client, each caller asking
//! again as soon as it has its answer. ATTRIBUTES are `Key=Value` pairs joined by `,` (`-` for
//! none); PAGES is how many pages of 50 each caller reads in a row, following NextToken (1: the
//! newest page only). Every page is one timed request. Prints one line per query:
//! `<label>\t<requests>\t<requests/s>\t<p50 ms>\t<p99 ms>\t<max ms>\t<errors>\t<first error>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use orgtrail_tests::aws_clients::cloudtrail_sdk_client;
use tokio::sync::Mutex;

struct Query {
    label: String,
    attributes: Vec<(String, String)>,
    pages: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| orgtrail_tests::flag_value(&arguments, flag);
    let callers: usize = value("--callers")?.parse().context("--callers")?;
    let seconds: f64 = value("--seconds")?.parse().context("--seconds")?;
    let mut queries = Vec::new();
    for (position, argument) in arguments.iter().enumerate() {
        if argument != "--query" {
            continue;
        }
        let [label, attributes, pages] = arguments
            .get(position + 1..position + 4)
            .and_then(|slice| <[String; 3]>::try_from(slice.to_vec()).ok())
            .context("--query needs LABEL ATTRIBUTES PAGES")?;
        let attributes = if attributes == "-" {
            Vec::new()
        } else {
            attributes
                .split(',')
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(key, value)| (key.to_string(), value.to_string()))
                        .with_context(|| format!("{pair:?} is not Key=Value"))
                })
                .collect::<anyhow::Result<_>>()?
        };
        queries.push(Query {
            label,
            attributes,
            pages: pages.parse().context("PAGES is a number")?,
        });
    }
    if queries.is_empty() {
        bail!("give at least one --query");
    }

    let ca = std::fs::read(value("--ca")?).context("cannot read --ca")?;
    let client = cloudtrail_sdk_client(
        &value("--endpoint")?,
        ca,
        &value("--access-key-id")?,
        &value("--secret-access-key")?,
    )
    .context("the CA is not usable")?;

    for query in &queries {
        let query = Arc::new(query_attributes(query)?);
        let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
        let errors = Arc::new(Mutex::new((0usize, String::new())));
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let (client, query) = (client.clone(), query.clone());
            let (latencies, errors) = (latencies.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let mut next_token: Option<String> = None;
                    for _ in 0..query.1 {
                        let asked = Instant::now();
                        let answer = client
                            .lookup_events()
                            .set_lookup_attributes(Some(query.0.clone()))
                            .max_results(50)
                            .set_next_token(next_token.clone())
                            .send()
                            .await;
                        let milliseconds = asked.elapsed().as_secs_f64() * 1000.0;
                        match answer {
                            Ok(page) => {
                                latencies.lock().await.push(milliseconds);
                                next_token = page.next_token;
                            }
                            Err(error) => {
                                let mut errors = errors.lock().await;
                                errors.0 += 1;
                                if errors.1.is_empty() {
                                    errors.1 = format!(
                                        "{}",
                                        aws_sdk_cloudtrail::error::DisplayErrorContext(&error)
                                    );
                                }
                                next_token = None;
                            }
                        }
                        if next_token.is_none() {
                            break;
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.context("a caller failed")?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies = latencies.lock().await.clone();
        latencies.sort_by(f64::total_cmp);
        let percentile = |fraction: f64| {
            latencies
                .get(((latencies.len() as f64 * fraction).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        let errors = errors.lock().await;
        println!(
            "{}\t{}\t{:.1}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}",
            query.2,
            latencies.len(),
            latencies.len() as f64 / elapsed,
            percentile(0.50),
            percentile(0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
            errors.0,
            errors.1.replace(['\t', '\n'], " ")
        );
    }
    Ok(())
}

/// The SDK's attributes of a query (an extension key such as `AccountId` is an unknown variant,
/// sent as written), its pages and its label.
fn query_attributes(query: &Query) -> anyhow::Result<(Vec<LookupAttribute>, usize, String)> {
    let attributes = query
        .attributes
        .iter()
        .map(|(key, value)| {
            LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::from(key.as_str()))
                .attribute_value(value)
                .build()
                .with_context(|| format!("attribute {key}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((attributes, query.pages.max(1), query.label.clone()))
}
