//! `resizer`: one binary, one role per subcommand.
//!
//! # Layout
//! - [`config`] (the package's library, so tools can link it): the typed configuration and its layers.
//! - [`node`]: wiring shared by the roles (job path, listeners, drain on SIGTERM).
//! - [`serve`]: `resizer serve`, every role in one process with embedded backends.
//! - [`roles`]: `resizer identity`, `resizer api` and `resizer worker`, the distributed roles.
//! - [`admin_token`]: the admin token: from the environment, or generated once.
//! - [`batch`]: `resizer resize`, the pipeline on local files.
//! - [`sign`]: `resizer sign`, a signed variant URL.
//! - [`capacity`]: `resizer capacity`, the article's fleet arithmetic with measured numbers.

mod admin_token;
mod batch;
mod capacity;
mod inventory;
mod node;
mod roles;
mod serve;
mod sign;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use resizer::config;

#[derive(Parser)]
#[command(name = "resizer", version, about = "A multitenant image-resizing service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process with embedded backends (in-process queue, SQLite, local files).
    Serve(RoleArgs),
    /// Run the identity service: the admin API and the change feed over PostgreSQL (or SQLite).
    Identity(RoleArgs),
    /// Run an API node: the public REST tier, authenticating from a cache of the identity feed.
    Api(RoleArgs),
    /// Run a worker: pull resize jobs from NATS JetStream and process them.
    Worker(RoleArgs),
    /// Run a usage aggregator: roll up staged usage records while holding the lease.
    Aggregator(RoleArgs),
    /// Resize local files with the same pipeline the workers use, without the service.
    Resize(batch::ResizeArgs),
    /// Measure conversions per core and print the fleet size for a target load.
    Capacity(capacity::CapacityArgs),
    /// Print a signed variant URL (`/v1/img/{tenant}/{name}?…&sig=`).
    Sign(sign::SignArgs),
}

#[derive(clap::Args)]
struct RoleArgs {
    /// TOML configuration file.
    #[arg(long, env = "RESIZER_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, env = "RESIZER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Public listen address.
    #[arg(long, env = "RESIZER_LISTEN")]
    listen: Option<String>,
    /// Admin listen address.
    #[arg(long, env = "RESIZER_ADMIN_LISTEN")]
    admin_listen: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (args, role) = match cli.command {
        Command::Resize(args) => return batch::run(args),
        Command::Capacity(args) => return capacity::run(args),
        Command::Sign(args) => return sign::run(args),
        Command::Serve(args) => (args, Role::Serve),
        Command::Identity(args) => (args, Role::Identity),
        Command::Api(args) => (args, Role::Api),
        Command::Worker(args) => (args, Role::Worker),
        Command::Aggregator(args) => (args, Role::Aggregator),
    };
    let overrides = config::Overrides {
        listen: args.listen,
        admin_listen: args.admin_listen,
        data_dir: args.data_dir,
    };
    let config = match config::Config::load(args.config.as_deref(), &overrides, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("resizer: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    resizer_telemetry::init_logging(&std::env::var("RESIZER_LOG").unwrap_or(config.log.clone()));
    resizer_telemetry::Metrics::global();
    resizer_telemetry::describe(inventory::by_crate().iter().flat_map(|(_, defs)| defs.iter()));
    keep_data_private(&config.data_dir);
    resizer_api::tls::install_default_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("resizer-rt")
        .build()
        .expect("building the tokio runtime");
    let result = runtime.block_on(async move {
        match role {
            Role::Serve => serve::run(config).await,
            Role::Identity => roles::run_identity(config).await,
            Role::Api => roles::run_api(config).await,
            Role::Worker => roles::run_worker(config).await,
            Role::Aggregator => roles::run_aggregator(config).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("fatal: {e:#}");
            eprintln!("resizer: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The data directory holds key hashes, tenants, usage and the archive: the
/// service's alone. Every file a service role creates is 0600 and every
/// directory 0700, whatever the caller's umask, and a data directory left
/// readable by an earlier version is closed.
fn keep_data_private(data_dir: &std::path::Path) {
    // SAFETY: umask only sets this process's file-creation mask; no memory is involved.
    unsafe {
        libc::umask(0o077);
    }
    if data_dir.exists() {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(error = %e, dir = %data_dir.display(), "could not make the data directory private");
        }
    }
}

enum Role {
    Serve,
    Identity,
    Api,
    Worker,
    Aggregator,
}
