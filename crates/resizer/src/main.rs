//! `resizer`: one binary, one role per subcommand.
//!
//! # Layout
//! - [`config`]: the typed configuration and its layers.
//! - [`serve`]: the composition root of `resizer serve` (every role, embedded backends).
//! - [`admin_token`]: the admin token: from the environment, or generated once.
//! - [`batch`]: `resizer resize`, the pipeline on local files.

mod admin_token;
mod batch;
mod config;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "resizer", version, about = "A multitenant image-resizing service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process with embedded backends (in-process queue, SQLite, local files).
    Serve(ServeArgs),
    /// Resize local files with the same pipeline the workers use, without the service.
    Resize(batch::ResizeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
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
    match cli.command {
        Command::Serve(args) => {
            let overrides = config::Overrides {
                listen: args.listen,
                admin_listen: args.admin_listen,
                data_dir: args.data_dir,
            };
            let config = match config::Config::load(args.config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("resizer: {e:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            resizer_telemetry::init_logging(&std::env::var("RESIZER_LOG").unwrap_or(config.log.clone()));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("resizer-rt")
                .build()
                .expect("building the tokio runtime");
            match runtime.block_on(serve::run(config)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("fatal: {e:#}");
                    eprintln!("resizer: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        Command::Resize(args) => batch::run(args),
    }
}
