//! tracing-subscriber set-up: human-readable by default, one JSON object per line with
//! `QUANDO_LOG_FORMAT=json`. `QUANDO_LOG` is the filter (default `info`). Logs go to stdout.

use tracing_subscriber::EnvFilter;

pub fn init(filter: Option<&str>, json: bool) {
    let filter =
        EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
