//! For the api crate's own tests that need the whole app: a fresh SQLite file, migrated, with
//! one organization, served through poem's in-process test client.

use crate::config::Config;
use crate::state::AppState;

pub struct TestServer {
    pub client: poem::test::TestClient<poem::endpoint::BoxEndpoint<'static>>,
    _dir: tempfile::TempDir,
}

/// App state on a fresh, migrated SQLite file, with one organization and its key.
pub async fn state(config: Config) -> (AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
    let db = crate::db::connect(&url).await.expect("connect");
    crate::db::migrate(&db).await.expect("migrate");
    let created = crate::admin::create_organization(&db, "unit")
        .await
        .expect("org");
    let config = Config {
        database_url: url,
        ..config
    };
    (AppState::new(db, config), created.api_key.key, dir)
}

pub async fn server(config: Config) -> TestServer {
    use poem::EndpointExt;
    let (state, _key, dir) = state(config).await;
    TestServer {
        client: poem::test::TestClient::new(crate::app(state).boxed()),
        _dir: dir,
    }
}
