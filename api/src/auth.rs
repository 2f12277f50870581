//! API keys and the bearer security schemes. The scope is in the signature: a handler that takes
//! `ReadAuth` cannot run without a key holding `calendar:read`, one that takes `WriteAuth`
//! without `calendar:write` (warpgate's two schemes with different checkers); the spec names
//! the scheme, and so the scope, of every operation.
//!
//! Keys look like `qnd_live_<40 base62 characters>`. The first 12 random characters are a public
//! lookup id (indexed); the whole key is stored only as a SHA-256 salted with the key's own id and
//! compared in constant time. The secret is shown once, at creation, and never logged.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use rand::Rng;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::ids::{ApiKeyId, OrgId};
use crate::domain::time;
use crate::error::{ApiError, ErrorCode};

pub const LIVE_PREFIX: &str = "qnd_live_";
pub const TEST_PREFIX: &str = "qnd_test_";
const SECRET_LEN: usize = 40;
const LOOKUP_LEN: usize = 12;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `calendar:read`: every GET.
    CalendarRead,
    /// `calendar:write`: every POST, PATCH and DELETE.
    CalendarWrite,
    /// `webhooks:manage`: webhook endpoints, their secrets and their delivery log.
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 3] = [
        Scope::CalendarRead,
        Scope::CalendarWrite,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CalendarRead => "calendar:read",
            Scope::CalendarWrite => "calendar:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
    }
}

/// Parses `calendar:read,calendar:write`; an unknown scope is an error naming it.
pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, String> {
    let mut scopes = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let scope = Scope::parse(part).ok_or_else(|| {
            format!(
                "unknown scope '{}'; use calendar:read, calendar:write and/or webhooks:manage",
                part.trim()
            )
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err("a key needs at least one scope".into());
    }
    Ok(scopes)
}

pub fn format_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The authenticated caller: an organization, through one of its keys.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    pub scopes: Vec<Scope>,
    /// The key's own requests-per-minute budget; `None` = the server default.
    pub rate_limit_per_minute: Option<u32>,
}

impl Tenant {
    /// The one-line scope check at the top of every handler.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("this API key lacks the scope {}", scope.as_str()),
            ))
        }
    }
}

/// Bearer API key of an organization with the scope `calendar:read`: `Authorization: Bearer
/// qnd_live_...`. Every GET takes it.
#[derive(SecurityScheme)]
#[oai(
    rename = "calendarRead",
    ty = "bearer",
    bearer_format = "qnd_live_...",
    checker = "check_read"
)]
pub struct ReadAuth(pub Tenant);

/// Bearer API key of an organization with the scope `calendar:write`: `Authorization: Bearer
/// qnd_live_...`. Every POST, PATCH and DELETE takes it.
#[derive(SecurityScheme)]
#[oai(
    rename = "calendarWrite",
    ty = "bearer",
    bearer_format = "qnd_live_...",
    checker = "check_write"
)]
pub struct WriteAuth(pub Tenant);

/// Bearer API key of an organization with the scope `webhooks:manage`: `Authorization: Bearer
/// qnd_live_...`. Every `/v1/webhooks` operation takes it.
#[derive(SecurityScheme)]
#[oai(
    rename = "webhooksManage",
    ty = "bearer",
    bearer_format = "qnd_live_...",
    checker = "check_webhooks"
)]
pub struct WebhooksAuth(pub Tenant);

/// The scope of each security scheme, by its name in the spec: what the spec-driven auth tests
/// and clients read to know which key an operation needs.
pub const SCHEME_SCOPES: [(&str, Scope); 3] = [
    ("calendarRead", Scope::CalendarRead),
    ("calendarWrite", Scope::CalendarWrite),
    ("webhooksManage", Scope::WebhooksManage),
];

async fn check_read(req: &Request, bearer: Bearer) -> poem::Result<Tenant> {
    let tenant = check_bearer(req, bearer).await?;
    tenant.require(Scope::CalendarRead)?;
    Ok(tenant)
}

async fn check_write(req: &Request, bearer: Bearer) -> poem::Result<Tenant> {
    let tenant = check_bearer(req, bearer).await?;
    tenant.require(Scope::CalendarWrite)?;
    Ok(tenant)
}

async fn check_webhooks(req: &Request, bearer: Bearer) -> poem::Result<Tenant> {
    let tenant = check_bearer(req, bearer).await?;
    tenant.require(Scope::WebhooksManage)?;
    Ok(tenant)
}

/// The tenant layer (`middleware::tenant`) authenticated the key already; this reads its verdict.
async fn check_bearer(req: &Request, _bearer: Bearer) -> poem::Result<Tenant> {
    if let Some(tenant) = req.data::<Tenant>() {
        return Ok(tenant.clone());
    }
    if let Some(AuthFailure(err)) = req.data::<AuthFailure>() {
        return Err(err.clone().into());
    }
    Err(ApiError::unauthorized(
        "missing or malformed API key; send Authorization: Bearer qnd_live_...",
    )
    .into())
}

/// When each key's `last_used_at` was last written (held by `AppState`).
pub type KeyUsage = std::sync::Mutex<std::collections::HashMap<ApiKeyId, std::time::Instant>>;

/// A bearer key that did not authenticate: the tenant layer leaves it in the request and the
/// security schemes answer with it.
#[derive(Clone, Debug)]
pub struct AuthFailure(pub ApiError);

/// Records that a key was used, at most once a minute per key and off the request path, so
/// `last_used_at` costs no write per request.
pub fn touch(db: &sea_orm::DatabaseConnection, usage: &KeyUsage, key: ApiKeyId) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
    let now = std::time::Instant::now();
    {
        let mut seen = usage.lock().unwrap_or_else(|p| p.into_inner());
        if seen
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < EVERY)
        {
            return;
        }
        seen.insert(key, now);
    }
    let db = db.clone();
    tokio::spawn(async move {
        use entity::api_keys;
        use sea_orm::sea_query::Expr;
        let result = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::LastUsedAt, Expr::value(time::now()))
            .filter(api_keys::Column::Id.eq(key.0))
            .exec(&db)
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not record key use");
        }
    });
}

/// A freshly generated key: the secret (shown once) and what is stored.
pub struct NewKey {
    pub secret: String,
    pub lookup: String,
    pub hash: String,
}

pub fn generate_key(id: ApiKeyId) -> NewKey {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let random: String = (0..SECRET_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let secret = format!("{LIVE_PREFIX}{random}");
    NewKey {
        lookup: lookup_of(&secret).unwrap_or_default().to_string(),
        hash: hash_key(id, &secret),
        secret,
    }
}

/// The indexed public part of a well-formed key, or None for anything malformed.
fn lookup_of(key: &str) -> Option<&str> {
    let random = key
        .strip_prefix(LIVE_PREFIX)
        .or_else(|| key.strip_prefix(TEST_PREFIX))?;
    if random.len() < 32 || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    key.get(..LIVE_PREFIX.len() + LOOKUP_LEN)
}

fn hash_key(id: ApiKeyId, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(id.0.as_bytes());
    hasher.update(key.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How long an authenticated key's row is trusted without reading it again. A revocation in
/// this process is seen at once (`note_revocation`); one made by another process (the CLI, another
/// server) within this time.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

static REVOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Makes every cached key row in this process stale: called when a key is revoked.
pub fn note_revocation() {
    REVOCATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Key rows recently read, by lookup id: most requests authenticate without a query.
#[derive(Default)]
pub struct KeyCache(
    std::sync::Mutex<
        std::collections::HashMap<String, (entity::api_keys::Model, std::time::Instant, u64)>,
    >,
);

impl KeyCache {
    fn get(&self, lookup: &str) -> Option<entity::api_keys::Model> {
        let epoch = REVOCATIONS.load(std::sync::atomic::Ordering::SeqCst);
        let entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(lookup)
            .filter(|(_, at, e)| *e == epoch && at.elapsed() < KEY_CACHE_TTL)
            .map(|(row, _, _)| row.clone())
    }

    fn put(&self, row: entity::api_keys::Model, epoch: u64) {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at, _)| at.elapsed() < KEY_CACHE_TTL);
        }
        entries.insert(row.lookup.clone(), (row, std::time::Instant::now(), epoch));
    }
}

/// Finds the key by its lookup id (from the cache, else one indexed query), compares the hash
/// in constant time, then checks its state.
pub async fn authenticate(
    db: &sea_orm::DatabaseConnection,
    cache: &KeyCache,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Tenant, ApiError> {
    use entity::api_keys;
    let unknown = || ApiError::unauthorized("unknown API key");
    let lookup = lookup_of(key)
        .ok_or_else(|| ApiError::unauthorized("malformed API key; keys look like qnd_live_..."))?;
    let row = match cache.get(lookup) {
        Some(row) => row,
        None => {
            let epoch = REVOCATIONS.load(std::sync::atomic::Ordering::SeqCst);
            let row = api_keys::Entity::find()
                .filter(api_keys::Column::Lookup.eq(lookup))
                .one(db)
                .await?
                .ok_or_else(unknown)?;
            cache.put(row.clone(), epoch);
            row
        }
    };
    let id = row.id;
    let matches: bool = hash_key(id, key)
        .as_bytes()
        .ct_eq(row.secret_hash.as_bytes())
        .into();
    if !matches {
        return Err(unknown());
    }
    if row.revoked_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this API key has been revoked",
        ));
    }
    if row.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this API key has expired",
        ));
    }
    let scopes = row.scopes.split(',').filter_map(Scope::parse).collect();
    Ok(Tenant {
        org_id: row.org_id,
        key_id: id,
        scopes,
        rate_limit_per_minute: row
            .rate_limit_per_minute
            .and_then(|n| u32::try_from(n).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_long_random_and_findable_by_their_lookup_id() {
        let id = ApiKeyId::generate();
        let a = generate_key(id);
        let b = generate_key(id);
        assert!(a.secret.starts_with("qnd_live_"));
        assert_eq!(a.secret.len(), LIVE_PREFIX.len() + SECRET_LEN);
        assert_ne!(a.secret, b.secret);
        assert_eq!(lookup_of(&a.secret), Some(a.lookup.as_str()));
        assert_eq!(hash_key(id, &a.secret), a.hash);
        assert!(!a.hash.contains(&a.secret));
    }

    #[test]
    fn the_hash_is_salted_with_the_key_id() {
        let key = "qnd_live_0123456789abcdefghij0123456789abcdefghij";
        assert_ne!(
            hash_key(ApiKeyId::generate(), key),
            hash_key(ApiKeyId::generate(), key)
        );
    }

    #[test]
    fn malformed_keys_have_no_lookup_id() {
        assert_eq!(lookup_of("nonsense"), None);
        assert_eq!(lookup_of("qnd_live_short"), None);
        assert_eq!(
            lookup_of("qnd_live_0123456789abcdefghij0123456789-bad!"),
            None
        );
        assert!(lookup_of("qnd_test_0123456789abcdefghij0123456789abcd").is_some());
    }

    #[test]
    fn scopes_parse_from_a_comma_list_and_unknown_ones_are_named() {
        assert_eq!(
            parse_scopes("calendar:read, calendar:write").unwrap(),
            vec![Scope::CalendarRead, Scope::CalendarWrite]
        );
        assert!(
            parse_scopes("calendar:admin")
                .unwrap_err()
                .contains("calendar:admin")
        );
        assert!(parse_scopes("").is_err());
    }
}
