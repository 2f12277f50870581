//! Quando's black-box integration suite: one test binary, every case run against the real server on
//! 127.0.0.1:0 over HTTP, once on SQLite and once on PostgreSQL.
//!
//! Trials are named `<backend>::<module>::<case>`. The PostgreSQL half runs when
//! `QUANDO_TEST_POSTGRES_URL` is set; otherwise its trials are listed as ignored and one line on stdout
//! says so. Logs stay quiet unless `TEST_LOG=1`.

/// `cases![a, b]`: the module's cases, each an `async fn(TestApp)`, named after the function.
macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        vec![$(
            $crate::support::Case {
                name: stringify!($name),
                run: |app| Box::pin($name(app)),
            }
        ),*]
    };
}

mod auth;
mod availability;
mod calendars;
mod counts;
mod cursor;
mod edges;
mod errors;
mod event_types;
mod events;
mod faults;
mod feeds;
mod google;
mod google_recurrence;
mod google_sync;
mod hardening;
mod integrity;
mod isolation;
mod mcp;
mod migration;
mod protection;
mod rich_events;
mod service;
mod spec_walk;
mod support;
mod talkover;
mod talkover_calendars;
mod talkover_rules;
mod teams;
mod webhooks;
mod widgets;

use libtest_mimic::{Arguments, Trial};
use support::{Backend, Case};

const POSTGRES_ENV: &str = "QUANDO_TEST_POSTGRES_URL";

fn main() {
    let args = Arguments::from_args();

    if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .init();
    }

    support::install_panic_hook();

    let postgres_url = std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty());

    let modules: Vec<(&str, Vec<Case>)> = vec![
        ("events", events::cases()),
        ("integrity", integrity::cases()),
        ("calendars", calendars::cases()),
        ("cursor", cursor::cases()),
        ("edges", edges::cases()),
        ("event_types", event_types::cases()),
        ("auth", auth::cases()),
        ("errors", errors::cases()),
        ("isolation", isolation::cases()),
        ("service", service::cases()),
        ("availability", availability::cases()),
        ("protection", protection::cases()),
        ("rich_events", rich_events::cases()),
        ("talkover", talkover::cases()),
        ("talkover_calendars", talkover_calendars::cases()),
        ("talkover_rules", talkover_rules::cases()),
        ("google", google::cases()),
        ("google_sync", google_sync::cases()),
        ("google_recurrence", google_recurrence::cases()),
        ("feeds", feeds::cases()),
        ("hardening", hardening::cases()),
        ("spec_walk", spec_walk::cases()),
        ("webhooks", webhooks::cases()),
        ("widgets", widgets::cases()),
        ("teams", teams::cases()),
        ("mcp", mcp::cases()),
        ("counts", counts::cases()),
    ];

    let mut trials = vec![Trial::test(
        "spec::openapi_yaml_matches_what_the_code_generates",
        service::openapi_yaml_matches_what_the_code_generates,
    )];
    trials.extend(hardening::process_trials());
    trials.extend(faults::trials(postgres_url.clone()));
    trials.extend(migration::trials(postgres_url.clone()));
    for backend in [Backend::Sqlite, Backend::Postgres] {
        for (module, cases) in &modules {
            for case in cases {
                let name = format!("{}::{}::{}", backend.name(), module, case.name);
                let run = case.run;
                let url = postgres_url.clone();
                let trial = Trial::test(name, move || support::run_case(backend, url, run));
                let skip = backend == Backend::Postgres && postgres_url.is_none();
                trials.push(trial.with_ignored_flag(skip));
            }
        }
    }

    if postgres_url.is_none() && !args.list {
        println!(
            "PostgreSQL half not run: set {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test to run it"
        );
    }

    libtest_mimic::run(&args, trials).exit();
}
