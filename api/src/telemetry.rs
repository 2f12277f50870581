//! tracing-subscriber set-up: human-readable by default, one JSON object per line with
//! `QUANDO_LOG_FORMAT=json`. `QUANDO_LOG` is the filter (default `info`). Logs go to stdout.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

fn filter(spec: Option<&str>) -> EnvFilter {
    EnvFilter::try_new(spec.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The JSON subscriber: each event one line, its fields at the top level.
pub fn json_subscriber<W>(spec: Option<&str>, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter(spec))
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .finish()
}

pub fn init(spec: Option<&str>, json: bool) {
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json {
        tracing::subscriber::set_global_default(json_subscriber(spec, std::io::stdout))
            .map_err(|_| ())
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter(spec))
            .with_writer(std::io::stdout)
            .try_init()
            .map_err(|_| ())
    };
}
