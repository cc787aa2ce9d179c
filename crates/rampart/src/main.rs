//! `rampart`: with no arguments (or `up`), serves the whole platform on loopback.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rampart_kernel::Settings;

mod bootstrap;
mod keys;
mod up;
mod users;

#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about = "Rampart: auth API, auth-proxy and core, locally or on AWS"
)]
struct Cli {
    /// TOML configuration file read beneath the RAMPART_* environment (default: $RAMPART_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve auth-proxy in front of the auth API and core, each on loopback (the default).
    Up {
        /// The proxy's routes file (TOML, see services/auth-proxy), reloaded on SIGHUP. Without
        /// it the proxy routes to this platform's auth API and core.
        #[arg(long)]
        routes: Option<PathBuf>,
    },
    /// Create the tables, keys, user pool and secrets on the configured AWS endpoint.
    Bootstrap,
    /// Access-token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Administering accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a new signing key: published at once, signing once verifiers have fetched it;
    /// the current key retires after the last token it signed has expired.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Disable an account: it can no longer sign in, and every session it holds ends at once
    /// (verifiers refuse its access tokens within their revocation-feed refresh).
    Disable {
        /// The account's email.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings.
    Check,
}

/// The proxy allocates on every request, and under load glibc's allocator took about a sixth of
/// its CPU; mimalloc's thread-local free lists cost a fraction of that (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rampart: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Up { routes: None }) {
        Command::Up { routes } => up::run(settings, routes).await,
        Command::Bootstrap => bootstrap::run(&settings).await,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => keys::rotate(&settings).await,
        Command::Users {
            command: UsersCommand::Disable { email },
        } => users::disable(&settings, &email).await,
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            println!("configuration is valid");
            println!("{}", serde_json::to_string_pretty(&settings)?);
            Ok(())
        }
    }
}
