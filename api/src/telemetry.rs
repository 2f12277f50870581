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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::Config;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Sink {
        type Writer = Sink;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn each_request_is_one_json_line_with_request_org_method_route_status_and_latency() {
        let sink = Sink::default();
        let subscriber = json_subscriber(Some("info"), sink.clone());
        let (org, key) = tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let server = crate::test_support::server(Config::default()).await;
                let (client, key) = (&server.client, server.key.clone());
                client
                    .get("/v1/calendar/calendars")
                    .header("Authorization", format!("Bearer {key}"))
                    .header("X-Request-Id", "req-log-1")
                    .send()
                    .await
                    .assert_status_is_ok();
                client
                    .get("/v1/nope")
                    .header("X-Request-Id", "req-log-2")
                    .send()
                    .await
                    .assert_status(poem::http::StatusCode::NOT_FOUND);
                (server.org, key)
            })
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains(&key), "a secret reached the log");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
            .collect();
        let request = |id: &str| {
            let found: Vec<&serde_json::Value> = lines
                .iter()
                .filter(|l| l["message"] == "request" && l["request_id"] == id)
                .collect();
            assert_eq!(found.len(), 1, "one line for {id}: {text}");
            found[0].clone()
        };
        let ok = request("req-log-1");
        assert_eq!(ok["org_id"], org.to_string());
        assert_eq!(ok["method"], "GET");
        assert_eq!(ok["route"], "/v1/calendar/calendars");
        assert_eq!(ok["status"], 200);
        assert!(ok["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
        let missing = request("req-log-2");
        assert_eq!(missing["status"], 404);
        assert_eq!(missing["route"], "unmatched");
        assert_eq!(missing["org_id"], "");
    }
}
