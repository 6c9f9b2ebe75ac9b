//! `orgtrail-aggregator`: serve (the default), apply the schema migrations, or check a
//! configuration.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orgtrail_aggregator::auth::{Authenticator, IssuedSecret, TokenRequest};
use orgtrail_aggregator::config::{load_config, AggregatorConfig, ConfigOverrides};
use orgtrail_aggregator::crypto::Keyring;
use orgtrail_aggregator::role::Role;
use orgtrail_aggregator::store::PgStore;
use orgtrail_aggregator::{server, sigma_rules};
use orgtrail_service_runtime::clock::clock_from_settings;
use orgtrail_service_runtime::{init_logging, shutdown_signal, SharedClock};

/// mimalloc rather than glibc's allocator: SQL scans of thousands of small archive objects spend
/// a quarter of their time in glibc's consolidation of freed chunks (`cargo xtask bench sql`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Serve plaintext gRPC, without TLS (trials on one machine only; logged as a warning).
    #[arg(long, global = true)]
    insecure: bool,
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
    /// Master keys of record encryption (a keyring file), without the configuration.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create an API token straight in the database and print it once: the first admin's
    /// token, before anyone can call the API (afterwards: `orgtrail tokens create`).
    CreateToken {
        /// The token's name, unique among live tokens.
        #[arg(long)]
        name: String,
        /// ingest, reader or admin.
        #[arg(long)]
        role: Role,
        /// Days until it expires (0: never).
        #[arg(long, default_value_t = 0)]
        expires_in_days: u32,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a keyring file with one master key, readable by its owner only (never
    /// overwrites).
    Init {
        #[arg(long)]
        keyring: PathBuf,
    },
    /// Add a master key to a keyring and make it primary: data keys made from now on are
    /// wrapped by it; older data keys stay wrapped by the keys that wrapped them.
    AddMaster {
        #[arg(long)]
        keyring: PathBuf,
    },
    /// Copy a keyring from a place where it may not be private (a Kubernetes Secret volume) to
    /// one readable by this user only (mode 0600), checking it first: the init step of a pod
    /// whose keyring comes from a Secret.
    Install {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        to: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    if let Some(Command::Keys(command)) = &arguments.command {
        // Keyring work needs no configuration (and no database).
        return match command {
            KeysCommand::Init { keyring } => {
                let id = Keyring::init(keyring)?;
                eprintln!(
                    "keyring {} created (mode 0600) with master key {id}; back it up apart from the database: without it the stored records cannot be read",
                    keyring.display()
                );
                Ok(())
            }
            KeysCommand::Install { from, to } => {
                let primary = Keyring::install(from, to)?;
                eprintln!(
                    "keyring {} installed at {} (mode 0600), primary master key {primary}",
                    from.display(),
                    to.display()
                );
                Ok(())
            }
            KeysCommand::AddMaster { keyring } => {
                let id = Keyring::add_master_key(keyring)?;
                eprintln!("master key {id} added to {} and made primary; restart the aggregators, then `orgtrail keys rotate` to wrap a new data key with it", keyring.display());
                Ok(())
            }
        };
    }
    let overrides = ConfigOverrides {
        listen: arguments.listen.clone(),
        database_url: arguments.database_url.clone(),
        insecure: arguments.insecure,
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
    let clock: SharedClock = clock_from_settings(config.clock_frozen_at);
    if let Some(frozen_at) = config.clock_frozen_at {
        tracing::warn!(%frozen_at, "the clock is frozen (clock.frozen_at): retention, expiries and partitions go by that instant, not by today");
    }
    match command {
        Command::Serve => server::serve(config, clock, shutdown_signal())
            .await
            .map_err(anyhow::Error::from),
        Command::Migrate => {
            let store = PgStore::connect(&config.database_url, &config.database).await?;
            store.migrate().await?;
            store.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Keys(_) => Ok(()),
        Command::CheckConfig => {
            println!("{config:#?}");
            if let Some(directory) = &config.detections.rules_directory {
                let loaded = sigma_rules::load_rules_directory(directory);
                if !loaded.problems.is_empty() {
                    anyhow::bail!(
                        "detections.rules_directory: {} of its files would not be used:\n{}",
                        loaded.problems.len(),
                        loaded.problems.join("\n")
                    );
                }
                println!(
                    "detections.rules_directory {}: {} Sigma rules",
                    directory.display(),
                    loaded.rules.len()
                );
                for (file, rule) in &loaded.rules {
                    println!(
                        "  {file}: {} ({}, {})",
                        rule.title, rule.rule_id, rule.level
                    );
                }
            }
            Ok(())
        }
        Command::CreateToken {
            name,
            role,
            expires_in_days,
        } => {
            let store = PgStore::connect(&config.database_url, &config.database).await?;
            store.migrate().await?;
            let authenticator = Authenticator::new(store.clone(), Default::default(), clock);
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let (token, secret) = authenticator
                .create_token(
                    &format!("orgtrail-aggregator create-token ({user})"),
                    &TokenRequest {
                        name: &name,
                        role,
                        expires_in_days,
                        aws_credentials: false,
                        accounts: &[],
                    },
                )
                .await
                .with_context(|| format!("cannot create token {name:?}"))?;
            // A bearer token: AWS credentials are made over the API, where their secret is
            // sealed with the record keys.
            let IssuedSecret::Bearer(secret) = secret else {
                anyhow::bail!("a bearer token was asked for");
            };
            store.close().await;
            eprintln!(
                "token {} ({}, role {}) created; it is shown once:",
                token.name, token.token_id, token.role
            );
            println!("{secret}");
            Ok(())
        }
    }
}
