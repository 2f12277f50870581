//! For the api crate's own tests that need the whole app: a fresh SQLite file, migrated, with
//! one organization, served through poem's in-process test client.

use crate::config::Config;
use crate::state::AppState;

pub struct TestServer {
    pub client: poem::test::TestClient<poem::endpoint::BoxEndpoint<'static>>,
    pub key: String,
    _dir: tempfile::TempDir,
}

pub async fn server(config: Config) -> TestServer {
    use poem::EndpointExt;
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
    TestServer {
        client: poem::test::TestClient::new(crate::app(AppState::new(db, config)).boxed()),
        key: created.api_key.key,
        _dir: dir,
    }
}
