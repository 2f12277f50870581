//! `quando`: the CLI. Parses arguments and calls the library; nothing else lives here.

use std::process::ExitCode;

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use quando_api::auth::{parse_origin, parse_scopes};
use quando_api::config::{
    Config, DEFAULT_BIND, DEFAULT_DATABASE_URL, parse_metrics_token, parse_public_url,
};
use quando_api::{admin, db, telemetry};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "quando",
    version,
    about = "Quando: a multi-tenant appointment-booking API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DbArgs {
    /// Database URL: sqlite://quando.db?mode=rwc or postgres://user@host/db
    #[arg(long, env = "QUANDO_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve the API.
    Serve {
        #[arg(long, env = "QUANDO_BIND", default_value = DEFAULT_BIND)]
        bind: String,
        #[command(flatten)]
        db: DbArgs,
        /// Default requests per minute for each API key (at least 1).
        #[arg(long, env = "QUANDO_RATE_LIMIT_PER_MINUTE", default_value_t = 600,
              value_parser = clap::value_parser!(u32).range(1..))]
        rate_limit_per_minute: u32,
        /// Failed authentications allowed per client IP per minute (at least 1).
        #[arg(long, env = "QUANDO_AUTH_FAILURES_PER_MINUTE", default_value_t = 30,
              value_parser = clap::value_parser!(u32).range(1..))]
        auth_failures_per_minute: u32,
        /// A request still running after this many seconds is answered 503 and abandoned
        /// (at least 1).
        #[arg(long, env = "QUANDO_REQUEST_TIMEOUT_SECONDS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(1..))]
        request_timeout_seconds: u64,
        /// A connection that has not sent a whole request head this many seconds after the
        /// server began waiting for one is closed (1 to 3600).
        #[arg(long, env = "QUANDO_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        header_read_timeout_seconds: u64,
        /// Connections served at once; further clients wait in the listen backlog (at least 1).
        #[arg(long, env = "QUANDO_MAX_CONNECTIONS", default_value_t = 1024,
              value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// Serve /metrics on this address of its own (e.g. 127.0.0.1:9090) and not on the API
        /// port. Without it and without --metrics-token, /metrics is served nowhere.
        #[arg(long, env = "QUANDO_METRICS_BIND",
              value_parser = clap::builder::NonEmptyStringValueParser::new())]
        metrics_bind: Option<String>,
        /// /metrics answers only `Authorization: Bearer <token>` (at least 16 visible
        /// characters); on the API port when there is no --metrics-bind. Prefer the environment
        /// variable: a flag is visible to other users in the process list.
        #[arg(long, env = "QUANDO_METRICS_TOKEN", hide_env_values = true,
              value_parser = parse_metrics_token)]
        metrics_token: Option<String>,
        /// How long a Google Calendar `nextSyncToken` stays usable, in seconds (default 30
        /// days); an older one is answered 410 `fullSyncRequired`.
        #[arg(long, env = "QUANDO_SYNC_TOKEN_TTL_SECONDS", default_value_t = 30 * 24 * 3600,
              value_parser = clap::value_parser!(u64).range(1..))]
        sync_token_ttl_seconds: u64,
        /// Webhook endpoints may use plain http and loopback, private or link-local addresses
        /// (test rigs, receivers on the same network). Off by default.
        #[arg(long, env = "QUANDO_WEBHOOK_ALLOW_PRIVATE")]
        webhook_allow_private: bool,
        /// The address clients reach this server at (e.g. https://quando.example), used in the
        /// calendar feed URLs Quando hands out; without it, the request's Host header.
        #[arg(long, env = "QUANDO_PUBLIC_URL", value_parser = parse_public_url)]
        public_url: Option<String>,
        /// Browser origins from which secret keys are accepted (comma-separated, e.g.
        /// https://admin.example), for dashboards; any other Origin with a secret key is 403.
        #[arg(long, env = "QUANDO_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
        cors_origins: Vec<String>,
        /// Requests per minute of each client address with one publishable key (at least 1).
        #[arg(long, env = "QUANDO_WIDGET_RATE_LIMIT_PER_MINUTE", default_value_t = 60,
              value_parser = clap::value_parser!(u32).range(1..))]
        widget_rate_limit_per_minute: u32,
        /// Create (once) a demo organization with a calendar and an event type, and print a key.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Print the OpenAPI document the server serves.
    Openapi {
        #[arg(long, value_enum, default_value_t = SpecFormat::Yaml)]
        format: SpecFormat,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and its first API key; prints JSON.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key for an organization; prints JSON with the secret (shown once).
    Create {
        #[arg(long)]
        org: Uuid,
        #[arg(long, default_value = "calendar:read,calendar:write")]
        scopes: String,
        #[arg(long)]
        name: Option<String>,
        /// Requests per minute for this key, at least 1 (default: the server's).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        rate_limit: Option<u32>,
        /// The key stops working after this many days, at least 1 (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        expires_in_days: Option<u32>,
        /// A publishable key (`qnd_pub_...`) for booking widgets: bound to `--event-types` and
        /// `--origins`, without scopes; `--rate-limit` is then the budget of each client address.
        #[arg(long, requires_all = ["event_types", "origins"], conflicts_with_all = ["scopes", "expires_in_days"])]
        publishable: bool,
        /// The event types a publishable key may read, hold and book (comma-separated ids).
        #[arg(long, value_delimiter = ',', requires = "publishable")]
        event_types: Vec<Uuid>,
        /// The browser origins that may use a publishable key (comma-separated, e.g.
        /// https://shop.example,https://www.shop.example).
        #[arg(long, value_delimiter = ',', requires = "publishable")]
        origins: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List an organization's keys (never their secrets); prints JSON.
    List {
        #[arg(long)]
        org: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revoke an API key: requests with it get 403 from then on.
    Revoke {
        #[arg(long)]
        id: Uuid,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SpecFormat {
    Yaml,
    Json,
}

fn main() -> ExitCode {
    quando_api::memory::limit_malloc_arenas();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

async fn open(url: &str) -> Result<sea_orm::DatabaseConnection, AnyError> {
    let conn = db::connect(url).await?;
    db::migrate(&conn).await?;
    Ok(conn)
}

fn print_json(value: &impl serde::Serialize) -> Result<(), AnyError> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

async fn run(cli: Cli) -> Result<(), AnyError> {
    match cli.command {
        Command::Serve {
            bind,
            db,
            rate_limit_per_minute,
            auth_failures_per_minute,
            request_timeout_seconds,
            header_read_timeout_seconds,
            max_connections,
            metrics_bind,
            metrics_token,
            sync_token_ttl_seconds,
            webhook_allow_private,
            public_url,
            cors_origins,
            widget_rate_limit_per_minute,
            demo,
        } => {
            // Kept to the end of serving: dropping it writes the log lines still queued.
            let _log = telemetry::init();
            let conn = open(&db.database_url).await?;
            if demo {
                let key_file = quando_api::demo::key_file_for(&db.database_url);
                let demo = quando_api::demo::ensure(&conn, key_file.as_deref()).await?;
                println!("{}", demo.banner(&bind));
            }
            let config = Config {
                database_url: db.database_url,
                bind: bind.clone(),
                rate_limit_per_minute,
                auth_failures_per_minute,
                request_timeout: Duration::from_secs(request_timeout_seconds),
                header_read_timeout: Duration::from_secs(header_read_timeout_seconds),
                max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
                metrics_bind,
                metrics_token,
                sync_token_ttl: Duration::from_secs(sync_token_ttl_seconds),
                webhook_allow_private,
                public_url,
                cors_origins,
                widget_rate_limit_per_minute,
                ..Config::default()
            };
            quando_api::app::Application::build_with(conn, config)
                .await?
                .run_until(shutdown_signal())
                .await?;
            Ok(())
        }
        Command::Migrate { db } => {
            open(&db.database_url).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Org {
            command: OrgCommand::Create { name, db },
        } => {
            let conn = open(&db.database_url).await?;
            print_json(&admin::create_organization(&conn, &name).await?)
        }
        Command::Key {
            command:
                KeyCommand::Create {
                    org,
                    scopes,
                    name,
                    rate_limit,
                    expires_in_days,
                    publishable,
                    event_types,
                    origins,
                    db,
                },
        } => {
            if publishable {
                let conn = open(&db.database_url).await?;
                let key = admin::create_publishable_key(
                    &conn,
                    org,
                    &event_types,
                    &origins,
                    name.as_deref(),
                    rate_limit,
                )
                .await?;
                return print_json(&key);
            }
            let scopes = parse_scopes(&scopes)?;
            let conn = open(&db.database_url).await?;
            let key = admin::create_key_expiring(
                &conn,
                org,
                &scopes,
                name.as_deref(),
                rate_limit,
                expires_in_days,
            )
            .await?;
            print_json(&key)
        }
        Command::Key {
            command: KeyCommand::List { org, db },
        } => {
            let conn = open(&db.database_url).await?;
            print_json(&admin::list_keys(&conn, org).await?)
        }
        Command::Key {
            command: KeyCommand::Revoke { id, db },
        } => {
            let conn = open(&db.database_url).await?;
            admin::revoke_key(&conn, id).await?;
            print_json(&serde_json::json!({ "id": id, "revoked": true }))
        }
        Command::Openapi { format } => {
            match format {
                SpecFormat::Yaml => print!("{}", quando_api::spec::spec_yaml()),
                SpecFormat::Json => println!("{}", quando_api::spec::spec_json()),
            }
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM: stop accepting, let in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
