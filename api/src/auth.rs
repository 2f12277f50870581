//! API keys and the bearer security schemes. The scope is in the signature: a handler that takes
//! `ReadAuth` cannot run without a key holding `calendar:read`, one that takes `WriteAuth`
//! without `calendar:write` (warpgate's two schemes with different checkers); the spec names
//! the scheme, and so the scope, of every operation.
//!
//! Secret keys look like `qnd_live_<40 base62 characters>`; publishable keys (`qnd_pub_...`, for
//! booking widgets in browsers) are bound to event types and origins and reach only the
//! operations whose spec names the `publishableKey` scheme (see `Binding`). The first 12 random characters are a public
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

use crate::domain::ids::{ApiKeyId, EventTypeId, OrgId};
use crate::domain::time;
use crate::error::{ApiError, ErrorCode};

pub const LIVE_PREFIX: &str = "qnd_live_";
pub const TEST_PREFIX: &str = "qnd_test_";
pub const PUBLISHABLE_PREFIX: &str = "qnd_pub_";
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

/// What a publishable key is bound to. Its holder (any visitor of a website) may read these
/// event types and their availability, hold and release their slots and book them; nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub event_types: Vec<EventTypeId>,
    /// Browser origins (`https://shop.example`) that may use the key.
    pub origins: Vec<String>,
}

impl Binding {
    /// Whether the key may touch this event type (else it is not found, as another
    /// organization's would be).
    pub fn allows(&self, event_type: EventTypeId) -> bool {
        self.event_types.contains(&event_type)
    }
}

/// The authenticated caller: an organization, through one of its keys.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    pub scopes: Vec<Scope>,
    /// The key's own requests-per-minute budget; `None` = the server default. For a
    /// publishable key, the budget of each client address.
    pub rate_limit_per_minute: Option<u32>,
    /// Set for a publishable key.
    pub publishable: Option<std::sync::Arc<Binding>>,
}

/// The answer to a publishable key on an operation it cannot use.
pub const PUBLISHABLE_REFUSAL: &str = "a publishable key can only read its event types and their availability, hold and release their slots, and book them; use a secret key";

impl Tenant {
    /// The one-line scope check at the top of every handler.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else if self.publishable.is_some() {
            Err(ApiError::new(
                ErrorCode::InsufficientScope,
                PUBLISHABLE_REFUSAL,
            ))
        } else {
            Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("this API key lacks the scope {}", scope.as_str()),
            ))
        }
    }

    /// The binding of a publishable key; `None` for a secret key.
    pub fn binding(&self) -> Option<&Binding> {
        self.publishable.as_deref()
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

/// A publishable key (`Authorization: Bearer qnd_pub_...`), bound to event types and browser
/// origins: the operations that name this scheme beside a secret key's are the only ones it
/// reaches (reading its event types and their availability, holds, booking).
#[derive(SecurityScheme)]
#[oai(
    rename = "publishableKey",
    ty = "bearer",
    bearer_format = "qnd_pub_...",
    checker = "check_publishable"
)]
pub struct PublishableAuth(pub Tenant);

/// A secret key with `calendar:read`, or a publishable key (which the handler then holds to
/// its binding).
#[derive(SecurityScheme)]
pub enum ReadOrPublishable {
    Publishable(PublishableAuth),
    Secret(ReadAuth),
}

/// A secret key with `calendar:write`, or a publishable key (which the handler then holds to
/// its binding).
#[derive(SecurityScheme)]
pub enum WriteOrPublishable {
    Publishable(PublishableAuth),
    Secret(WriteAuth),
}

impl ReadOrPublishable {
    pub fn tenant(&self) -> &Tenant {
        match self {
            ReadOrPublishable::Publishable(a) => &a.0,
            ReadOrPublishable::Secret(a) => &a.0,
        }
    }
}

impl WriteOrPublishable {
    pub fn tenant(&self) -> &Tenant {
        match self {
            WriteOrPublishable::Publishable(a) => &a.0,
            WriteOrPublishable::Secret(a) => &a.0,
        }
    }
}

/// The scope of each security scheme, by its name in the spec: what the spec-driven auth tests
/// and clients read to know which key an operation needs. (`publishableKey` holds no scope: the
/// operations naming it are what a publishable key reaches.)
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

async fn check_publishable(req: &Request, bearer: Bearer) -> poem::Result<Tenant> {
    let tenant = check_bearer(req, bearer).await?;
    if tenant.publishable.is_none() {
        return Err(ApiError::new(ErrorCode::InsufficientScope, "not a publishable key").into());
    }
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
    generate_key_with(id, LIVE_PREFIX)
}

/// A new publishable key (`qnd_pub_...`).
pub fn generate_publishable_key(id: ApiKeyId) -> NewKey {
    generate_key_with(id, PUBLISHABLE_PREFIX)
}

fn generate_key_with(id: ApiKeyId, prefix: &str) -> NewKey {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let random: String = (0..SECRET_LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let secret = format!("{prefix}{random}");
    NewKey {
        lookup: lookup_of(&secret).unwrap_or_default().to_string(),
        hash: hash_key(id, &secret),
        secret,
    }
}

/// The indexed public part of a well-formed key, or None for anything malformed.
fn lookup_of(key: &str) -> Option<&str> {
    let prefix = [LIVE_PREFIX, TEST_PREFIX, PUBLISHABLE_PREFIX]
        .into_iter()
        .find(|p| key.starts_with(p))?;
    let random = &key[prefix.len()..];
    if random.len() < 32 || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    key.get(..prefix.len() + LOOKUP_LEN)
}

/// Whether a token looks like a publishable key (the booking page takes one in its URL).
pub fn is_publishable_key(key: &str) -> bool {
    key.starts_with(PUBLISHABLE_PREFIX) && lookup_of(key).is_some()
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

static ORIGINS_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Makes the origin registry of this process stale: a publishable key was made or a key revoked.
pub fn note_origins_changed() {
    ORIGINS_EPOCH.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// The origins of every live publishable key, read at most every `KEY_CACHE_TTL` (at once after
/// a change in this process). A CORS preflight carries no key, so it is answered for an origin
/// that some key allows; the request that follows is then held to its own key's origins.
#[derive(Default)]
pub struct OriginRegistry(
    tokio::sync::Mutex<Option<(std::collections::HashSet<String>, std::time::Instant, u64)>>,
);

impl OriginRegistry {
    pub async fn knows(
        &self,
        db: &sea_orm::DatabaseConnection,
        origin: &str,
    ) -> Result<bool, sea_orm::DbErr> {
        use entity::api_keys;
        use sea_orm::QuerySelect;
        let epoch = ORIGINS_EPOCH.load(std::sync::atomic::Ordering::SeqCst);
        let mut held = self.0.lock().await;
        if let Some((origins, at, e)) = held.as_ref()
            && *e == epoch
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(origins.contains(origin));
        }
        let now = time::now();
        let rows: Vec<(String, Option<DateTime<Utc>>)> = api_keys::Entity::find()
            .select_only()
            .column(api_keys::Column::Origins)
            .column(api_keys::Column::ExpiresAt)
            .filter(api_keys::Column::Origins.is_not_null())
            .filter(api_keys::Column::RevokedAt.is_null())
            .into_tuple()
            .all(db)
            .await?;
        let origins: std::collections::HashSet<String> = rows
            .into_iter()
            .filter(|(_, expires)| expires.is_none_or(|t| t > now))
            .flat_map(|(list, _)| {
                list.split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let known = origins.contains(origin);
        *held = Some((origins, std::time::Instant::now(), epoch));
        Ok(known)
    }
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
    let lookup = lookup_of(key).ok_or_else(|| {
        ApiError::unauthorized(
            "malformed API key; keys look like qnd_live_... (qnd_pub_... for booking widgets)",
        )
    })?;
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
        publishable: binding_of(&row).map(std::sync::Arc::new),
    })
}

/// A publishable key's binding, from its row; `None` for a secret key.
pub fn binding_of(row: &entity::api_keys::Model) -> Option<Binding> {
    let event_types = row.event_type_ids.as_deref()?;
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    Some(Binding {
        event_types: list(event_types)
            .iter()
            .filter_map(|id| uuid::Uuid::parse_str(id).ok().map(EventTypeId))
            .collect(),
        origins: row.origins.as_deref().map(list).unwrap_or_default(),
    })
}

/// Parses an origin as browsers send it (`https://shop.example`, `http://127.0.0.1:8080`):
/// scheme `http` or `https`, a host, an optional port, nothing else. Lower-cased, without a
/// default port, so it compares equal to the `Origin` header.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "'{text}' is not an origin; write it as https://shop.example (scheme, host and port only)"
        )
    };
    let url = url::Url::parse(text).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || !(url.path().is_empty() || url.path() == "/")
        || text.ends_with('/')
    {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
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
    fn publishable_keys_have_their_own_prefix_and_a_lookup_id() {
        let id = ApiKeyId::generate();
        let key = generate_publishable_key(id);
        assert!(key.secret.starts_with("qnd_pub_"));
        assert!(is_publishable_key(&key.secret));
        assert!(!is_publishable_key(&generate_key(id).secret));
        assert_eq!(lookup_of(&key.secret), Some(key.lookup.as_str()));
        assert_eq!(key.lookup.len(), "qnd_pub_".len() + LOOKUP_LEN);
    }

    #[test]
    fn origins_are_scheme_host_and_port_only_and_compare_as_browsers_send_them() {
        assert_eq!(
            parse_origin("https://Shop.Example").unwrap(),
            "https://shop.example"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            parse_origin("https://shop.example:443").unwrap(),
            "https://shop.example"
        );
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/",
            "https://shop.example/path",
            "https://shop.example?x=1",
            "https://user@shop.example",
            "*",
            "",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} was taken");
        }
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
