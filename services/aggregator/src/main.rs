//! `orgtrail-aggregator`: serve (the default), apply the schema migrations, or check a
//! configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orgtrail_aggregator::config::{load_config, AggregatorConfig, ConfigOverrides, LogFormat};
use orgtrail_aggregator::server;
use orgtrail_aggregator::store::PgStore;
use tracing_subscriber::EnvFilter;

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
    init_logging(&config)?;
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

fn init_logging(config: &AggregatorConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level {:?} is not a tracing filter", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

/// Resolves at SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
