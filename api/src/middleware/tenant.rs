//! Authenticates the bearer key once per request, before the handlers: the caller's `Tenant`
//! goes into the request for the security scheme and the idempotency layer, the key's budget
//! is taken (429 `rate_limit_exceeded` with `Retry-After` past it; `X-RateLimit-*` headers on
//! every authenticated response), failed authentications are budgeted per client IP, and the
//! key's `last_used_at` is refreshed at most once a minute, off the request path. A key used
//! from a browser origin it does not allow is refused here (`middleware::cors`); a publishable
//! key's budget is per client address.

use std::net::IpAddr;
use std::sync::Arc;

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::auth::{self, AuthFailure, Tenant};
use crate::context::ServedOrg;
use crate::dialects::native::errors::error_response;
use crate::domain::time;
use crate::error::{ApiError, ErrorCode};
use crate::middleware::cors;
use crate::rate_limit::Budget;
use crate::state::AppState;

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(req: &Request) -> Option<String> {
    let value = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(char::is_whitespace)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn too_many(message: &str, retry_after: u64) -> ApiError {
    ApiError {
        retry_after: Some(retry_after),
        ..ApiError::new(ErrorCode::RateLimitExceeded, message)
    }
}

fn set_budget_headers(resp: &mut Response, budget: Budget) {
    let headers = resp.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(budget.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(budget.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(budget.reset));
}

pub async fn layer<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if cors::is_preflight(&req)
        && let Some(state) = req.data::<AppState>()
    {
        return cors::preflight(state, &req).await;
    }
    let (Some(token), Some(state)) = (bearer_token(&req), req.data::<AppState>().cloned()) else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    let ip: Option<IpAddr> = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let tenant: Tenant =
        match auth::authenticate(&state.db, &state.key_cache, &token, time::now()).await {
            Ok(tenant) => tenant,
            Err(err) => {
                if err.code == ErrorCode::Unauthorized
                    && let Some(ip) = ip
                    && let Err(wait) = state.limits.check_auth_failure(ip)
                {
                    state.metrics.rate_limited();
                    return Err(too_many(
                        "too many failed authentications from this address; retry later",
                        wait,
                    )
                    .into());
                }
                req.set_data(AuthFailure(err));
                // A widget with a revoked or mistyped key should be able to read why: the
                // refusal carries CORS headers for an origin the server knows (no key vouches
                // for it here, and the answer gives nothing away).
                let origin = match cors::origin_of(&req) {
                    // A lookup failure only leaves the CORS headers out.
                    Some(origin)
                        if cors::is_known(&state, req.headers(), &origin)
                            .await
                            .unwrap_or(false) =>
                    {
                        Some(origin)
                    }
                    _ => None,
                };
                let mut resp = next
                    .call(req)
                    .await
                    .map(IntoResponse::into_response)
                    .unwrap_or_else(error_response);
                if let Some(origin) = origin {
                    cors::allow(&mut resp, &origin);
                }
                return Ok(resp);
            }
        };
    tracing::Span::current().record("org_id", tracing::field::display(tenant.org_id));
    let origin = match cors::check_key_origin(&state, &req, &tenant) {
        Ok(origin) => origin,
        Err(err) => return Err(err.into()),
    };
    auth::touch(&state.db, &state.key_usage, tenant.key_id);
    // A publishable key is in every visitor's browser: each client address has its own budget.
    let budget = match (tenant.publishable.is_some(), ip) {
        (true, Some(ip)) => {
            state
                .limits
                .check_client(tenant.key_id, ip, tenant.rate_limit_per_minute)
        }
        _ => state
            .limits
            .check_key(tenant.key_id, tenant.rate_limit_per_minute),
    };
    let budget = match budget {
        Ok(budget) => budget,
        Err(budget) => {
            state.metrics.rate_limited();
            let message = if tenant.publishable.is_some() {
                format!(
                    "this address is over its limit of {} requests per minute with this publishable key",
                    budget.limit
                )
            } else {
                format!(
                    "this API key is over its limit of {} requests per minute",
                    budget.limit
                )
            };
            let mut resp = too_many(&message, budget.retry_after.unwrap_or(1)).into_response();
            set_budget_headers(&mut resp, budget);
            if let Some(origin) = &origin {
                cors::allow(&mut resp, origin);
            }
            resp.set_data(ServedOrg(tenant.org_id));
            return Ok(resp);
        }
    };
    let org = tenant.org_id;
    req.set_data(tenant);
    let mut resp = next
        .call(req)
        .await
        .map(IntoResponse::into_response)
        .unwrap_or_else(error_response);
    set_budget_headers(&mut resp, budget);
    if let Some(origin) = &origin {
        cors::allow(&mut resp, origin);
    }
    resp.set_data(ServedOrg(org));
    Ok(resp)
}
