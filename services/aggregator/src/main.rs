//! `orgtrail-aggregator`: serve (the default), apply the schema migrations, or check a
//! configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orgtrail_aggregator::config::{load_config, AggregatorConfig, ConfigOverrides};
use orgtrail_aggregator::server;
use orgtrail_aggregator::store::PgStore;
use orgtrail_service_runtime::{init_logging, shutdown_signal};

/// The orgtrail aggregator: stores and serves the consolidated CloudTrail view of an AWS
/// Organization over gRPC.
#[derive(Parser)]
#[command(name = "orgtrail-aggregator", version)]
struct Arguments {
    /// TOML configuration file; every setting can also come from ORGTRAIL_* variables.
    #[arg(long, global = true, env = "ORGTRAIL_CONFIG")]
    config: Option<PathBuf>,
    /// Address of the gRPC server, e.g. 0.0.0.0:50051.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// PostgreSQL URL (better given as ORGTRAIL_DATABASE_URL, which keeps it out of `ps`).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply the database migrations and exit (for install and upgrade jobs).
    Migrate,
    /// Load and validate the configuration, print it without secrets, and exit.
    CheckConfig,
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let overrides = ConfigOverrides {
        listen: arguments.listen.clone(),
        database_url: arguments.database_url.clone(),
    };
    let config =
        load_config(arguments.config.as_deref(), &overrides).context("invalid configuration")?;
    init_logging(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(arguments.command.unwrap_or(Command::Serve), config))
}

async fn run(command: Command, config: AggregatorConfig) -> anyhow::Result<()> {
    match command {
        Command::Serve => server::serve(config, shutdown_signal())
            .await
            .map_err(anyhow::Error::from),
        Command::Migrate => {
            let store = PgStore::connect(&config).await?;
            store.migrate().await?;
            store.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::CheckConfig => {
            println!("{config:#?}");
            Ok(())
        }
    }
}
