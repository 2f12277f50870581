//! `quando-bench`: the benchmark suite of Quando. Numbers are for comparing workloads and
//! backends within one run on one machine (the load generator shares the cores with the
//! server), not absolute claims; the README records the last run.
//!
//! `cargo run --release -p quando-bench -- suite` seeds an organization with 1,000,000 events
//! over 1,000 calendars directly through the library, measures the raw-storage baseline (the
//! create transaction without HTTP), then starts the real server in a child process (this
//! binary, `serve-child`, so its memory is its own; it logs like `quando serve`, honouring
//! `QUANDO_LOG`) and drives it over HTTP with `--connections` keep-alive connections for each
//! workload. SQLite always; PostgreSQL too with `--postgres-url` (a scratch database, created
//! and dropped).
//!
//! `scale` (issue 17) seeds 100,000, 1,000,000 and 10,000,000 events in turn and runs create,
//! the seed's list example, list-filtered, get and availability at each size, then draws p50
//! and p99 against history size as a PNG (`docs/scale.png`).
//!
//! `availability` is the suite's availability workload alone on one calendar of 10,000 events.
//!
//! `team-availability` (a workload of the suite) seeds its own team into the same organization
//! before the server starts: 50 host calendars in three zones with 1,000 events each and a
//! round-robin event type over them, then asks the team's availability for 31 days with
//! `hosts=true`.

mod child;
mod driver_free;
mod hello;
mod load;
mod mcp;
mod pin;
mod receiver;
mod report;
mod scale;
mod seed;
mod workloads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use sea_orm::ConnectionTrait;

use report::BackendReport;
use seed::{FreshSlots, ScratchPostgres};
use workloads::{Plan, Row, Target, Workload};

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

const WARMUP: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(name = "quando-bench", about = "The benchmark suite of Quando")]
struct Cli {
    /// Also run on PostgreSQL: a server URL whose user may create databases
    /// (e.g. postgres://postgres@127.0.0.1:5432/test). A scratch database is created and dropped.
    #[arg(long, env = "QUANDO_BENCH_POSTGRES_URL", global = true)]
    postgres_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every workload on SQLite (and PostgreSQL with --postgres-url), next to the raw-storage
    /// baseline.
    Suite(SuiteArgs),
    /// Cost as history grows: five operations at 100k, 1M and 10M events, with a PNG chart.
    Scale(scale::ScaleArgs),
    /// The suite's availability workload alone: 31 days on one calendar with many events.
    Availability {
        /// Events on the calendar.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Concurrent connections (1: one request after another).
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Measured seconds (after a 1 s warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Print Markdown tables.
        #[arg(long)]
        markdown: bool,
    },
    /// Internal: the server under test, started by the suite in a child process.
    #[command(hide = true)]
    ServeChild {
        #[arg(long)]
        database_url: String,
    },
}

#[derive(Args, Clone)]
struct SuiteArgs {
    /// Seeded events, spread evenly over the calendars.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Seeded calendars (Europe/Rome, weekdays 09:00-17:00).
    #[arg(long, default_value_t = 1_000)]
    calendars: usize,
    /// Concurrent keep-alive connections (and raw-storage baseline tasks).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds per workload (each after a 1 s warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Workloads to run, comma-separated (default all): create, create-idempotent,
    /// create-webhook, create-taken, list, list-status, list-calendar, list-filtered, get,
    /// availability, team-availability, deep, mcp, hello.
    /// team-availability seeds its own team into the organization first: 50 host calendars
    /// with 1,000 events each (50,000 more events in the organization).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Print Markdown tables (for the README).
    #[arg(long)]
    markdown: bool,
    /// Leave the server and the load generator on every core. By default (with 2 or more
    /// cores) the server runs on the last core and the load generator on the others
    /// (`taskset`), so the server's tails are its own, not the generator's.
    #[arg(long)]
    no_pin: bool,
}

fn main() -> Result<(), AnyError> {
    let cli = Cli::parse();
    if matches!(cli.command, Command::ServeChild { .. }) {
        // As `quando serve` does, before the runtime's threads start.
        quando_api::memory::limit_malloc_arenas();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::ServeChild { database_url } => runtime.block_on(child::serve_child(database_url)),
        Command::Suite(args) => runtime.block_on(suite(args, cli.postgres_url)),
        Command::Scale(args) => runtime.block_on(scale::run(args, cli.postgres_url)),
        Command::Availability {
            events,
            connections,
            seconds,
            markdown,
        } => runtime.block_on(suite(
            SuiteArgs {
                events,
                calendars: 1,
                connections,
                seconds,
                workloads: vec!["availability".into()],
                no_pin: false,
                markdown,
            },
            cli.postgres_url,
        )),
    }
}

async fn suite(args: SuiteArgs, postgres_url: Option<String>) -> Result<(), AnyError> {
    let selected = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        let mut selected = Vec::new();
        for name in &args.workloads {
            selected.push(Workload::parse(name).ok_or_else(|| {
                let all: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                format!("unknown workload {name}; choose from {}", all.join(", "))
            })?);
        }
        selected
    };
    if args.calendars == 0 || args.events < args.calendars || args.connections == 0 {
        return Err("need --calendars >= 1, --events >= --calendars, --connections >= 1".into());
    }
    let started = Instant::now();
    let mut reports = Vec::new();

    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let label = "SQLite (WAL, synchronous=FULL, pool of 4)".to_string();
    reports.push(backend(label, &sqlite, &args, &selected).await?);
    drop(dir);

    match postgres_url {
        Some(url) => {
            let scratch = ScratchPostgres::create(&url).await?;
            let label = postgres_label(&scratch.url).await;
            let result = backend(label, &scratch.url, &args, &selected).await;
            scratch.drop_database().await?;
            reports.push(result?);
        }
        None => {
            eprintln!("PostgreSQL not run: pass --postgres-url or set QUANDO_BENCH_POSTGRES_URL")
        }
    }
    for r in &reports {
        if args.markdown {
            print!("{}", report::markdown(r));
        } else {
            print!("{}", report::text(r));
        }
    }
    let cores = match pin::server_core(args.no_pin) {
        Some(core) => format!("the server child on CPU {core}, the load generator on the others"),
        None => format!(
            "{} cores shared by the load generator and the server child",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    };
    println!(
        "\nwhole run: {:.1}s; {cores}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn postgres_label(url: &str) -> String {
    let version = async {
        let db = sea_orm::Database::connect(url).await.ok()?;
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SHOW server_version",
            ))
            .await
            .ok()??;
        let v: String = row.try_get("", "server_version").ok()?;
        let _ = db.close().await;
        Some(v)
    }
    .await;
    format!(
        "PostgreSQL {} (pool of 16)",
        version.unwrap_or_else(|| "?".into())
    )
}

/// Seeds, measures the baseline, then runs the workloads against a server child.
async fn backend(
    label: String,
    url: &str,
    args: &SuiteArgs,
    selected: &[Workload],
) -> Result<BackendReport, AnyError> {
    let plan = Plan {
        connections: args.connections,
        warmup: WARMUP,
        measure: Duration::from_secs(args.seconds),
    };
    eprintln!("== {label}");
    let db = quando_api::db::connect(url).await?;
    quando_api::db::migrate(&db).await?;
    eprintln!(
        "  seeding {} over {}",
        report::count(args.events, "event"),
        report::count(args.calendars, "calendar")
    );
    let seeding = seed::seeding_connection(url).await?;
    let mut seeded = seed::seed(&seeding, args.events, args.calendars).await?;
    eprintln!("  seeded in {:.1}s", seeded.elapsed.as_secs_f64());
    if selected.contains(&Workload::TeamAvailability) {
        eprintln!(
            "  seeding the team: {} with {} each",
            report::count(seed::TEAM_HOSTS, "host calendar"),
            report::count(seed::TEAM_EVENTS_PER_HOST, "event")
        );
        let team = seed::seed_team(&seeding, &seeded).await?;
        eprintln!("  seeded the team in {:.1}s", team.elapsed.as_secs_f64());
        seeded.team = Some(team);
    }
    let analyzing = Instant::now();
    seed::analyze(&seeding).await?;
    let analyzed_in = analyzing.elapsed();
    seeding.close().await?;
    let seeded = Arc::new(seeded);
    let slots = Arc::new(FreshSlots::new(seeded.calendars.clone())?);
    let baseline = if selected.contains(&Workload::Create) {
        eprintln!("  raw-storage baseline");
        Some(workloads::baseline(&db, &seeded, slots.clone(), &plan).await?)
    } else {
        None
    };
    let driver_free = if selected.contains(&Workload::Create)
        && db.get_database_backend() == sea_orm::DbBackend::Sqlite
    {
        eprintln!("  driver-free baseline (rusqlite, one thread, synchronous=FULL)");
        let path = db
            .get_sqlite_connection_pool()
            .connect_options()
            .get_filename()
            .to_path_buf();
        let (seeded, slots, warmup, measure) =
            (seeded.clone(), slots.clone(), plan.warmup, plan.measure);
        Some(
            tokio::task::spawn_blocking(move || {
                driver_free::run(&path, &seeded, slots, warmup, measure)
            })
            .await??,
        )
    } else {
        None
    };
    db.close().await?;

    let server = child::Server::start(url, pin::server_core(args.no_pin)).await?;
    let pid = server.pid();
    let rss_idle_kb = server.memory().map(|(rss, _)| rss);
    let target = Target::new(&server, seeded.clone(), slots, args.connections)?;
    let mut rows = Vec::new();
    for &workload in selected {
        eprintln!("  {}", workload.name());
        let result = if workload == Workload::Deep {
            workloads::run_deep(&target, &plan, pid).await
        } else if workload == Workload::Mcp {
            mcp::run(&target, &plan, pid).await
        } else {
            workloads::run_simple(&target, &plan, workload, pid)
                .await
                .map(|row| vec![row])
        };
        match result {
            Ok(r) => rows.extend(r),
            Err(err) => rows.push(Row {
                name: workload.name().into(),
                what: String::new(),
                expected: 200,
                measured: None,
                max_rss_kb: None,
                note: Some(format!("FAILED: {err}")),
            }),
        }
    }
    let rss_peak_kb = server.memory().map(|(_, hwm)| hwm);
    server.stop();
    Ok(BackendReport {
        label,
        events: args.events,
        calendars: args.calendars,
        events_per_calendar: seeded.events_per_calendar,
        seeded_in: seeded.elapsed + analyzed_in,
        team: seeded
            .team
            .as_ref()
            .map(|t| (t.calendars.len(), t.events_per_host, t.elapsed)),
        connections: args.connections,
        seconds: args.seconds,
        warmup: WARMUP,
        baseline,
        driver_free,
        pinned: pin::server_core(args.no_pin),
        rows,
        rss_idle_kb,
        rss_peak_kb,
    })
}
