//! `/v1/webhooks`: where an organization hears about every booking change. Endpoints with their
//! filters and signing secrets, a `ping`, the delivery log and its retry. Scope
//! `webhooks:manage` throughout.

use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::errors::{ACTION, CREATE, Fail, LIST, READ, UPDATE};
use super::{ApiTags, maybe, optional_text};
use crate::auth::WebhooksAuth;
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::webhooks::{EventKind, check_destination};
use crate::error::Violations;
use crate::middleware::request_id;
use crate::pagination::{PageRequest, Pagination};
use crate::payload::JsonBody;
use crate::repo::webhooks::{self as repo, EndpointChanges, Logged};
use crate::schema::Timestamp;
use crate::service::webhooks::EndpointRequest;
use crate::state::AppState;
use entity::webhook_deliveries::DeliveryStatus;

/// Longest description taken.
const MAX_DESCRIPTION: usize = 500;

/// A new webhook endpoint.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookIn {
    /// Where deliveries are POSTed: `https`, on a public address (plain `http` and private,
    /// loopback or link-local addresses only when the server allows them).
    pub url: String,
    /// The events wanted: `appointment.created`, `appointment.rescheduled`,
    /// `appointment.updated`, `appointment.cancelled`. Absent or empty: all of them.
    pub events: Option<Vec<String>>,
    /// Free text for its owner.
    #[oai(nullable)]
    pub description: Option<String>,
    /// Created disabled: nothing is queued for it until it is enabled (a `ping` still goes).
    pub disabled: Option<bool>,
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookPatch {
    pub url: Option<String>,
    /// Empty: all events.
    pub events: Option<Vec<String>>,
    /// `null` clears it.
    pub description: MaybeUndefined<String>,
    /// `false` enables it again and clears `disabledReason` and `failingSince`.
    pub disabled: Option<bool>,
}

/// A webhook endpoint.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookOut {
    pub id: Uuid,
    pub url: String,
    /// The events it gets; empty: all of them.
    pub events: Vec<String>,
    #[oai(nullable)]
    pub description: Option<String>,
    /// A disabled endpoint is sent nothing (except a `ping`).
    pub disabled: bool,
    /// Why Quando disabled it (every delivery failed for 5 days).
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    /// The first failed attempt since the last delivered one; `null` while it is healthy.
    #[oai(nullable)]
    pub failing_since: Option<Timestamp>,
    /// Until when the secret before the last rotation still signs beside the current one.
    #[oai(nullable)]
    pub previous_secret_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The signing secret (`whsec_...`): shown only in the answers to create and rotate.
    /// Verify deliveries with it and any Standard Webhooks library.
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
}

impl WebhookOut {
    fn of(m: entity::webhook_endpoints::Model, secret: Option<String>) -> WebhookOut {
        let now = crate::domain::time::now();
        WebhookOut {
            events: repo::events_of(&m),
            previous_secret_expires_at: m
                .previous_secret_until
                .filter(|until| *until > now)
                .map(Timestamp),
            id: m.id.0,
            url: m.url,
            description: m.description,
            disabled: m.disabled,
            disabled_reason: m.disabled_reason,
            failing_since: m.failing_since.map(Timestamp),
            created_at: Timestamp(m.created_at),
            updated_at: Timestamp(m.updated_at),
            secret,
        }
    }
}

/// One endpoint.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookEnvelope {
    pub data: WebhookOut,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

/// A page of endpoints.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct WebhookList {
    pub data: Vec<WebhookOut>,
    pub pagination: Pagination,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryStatusDto {
    /// Not delivered yet; tried again at `nextAttemptAt`.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Every retry failed, or the endpoint was disabled; `retry` sends it again.
    Failed,
}

impl From<DeliveryStatus> for DeliveryStatusDto {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => DeliveryStatusDto::Pending,
            DeliveryStatus::Succeeded => DeliveryStatusDto::Succeeded,
            DeliveryStatus::Failed => DeliveryStatusDto::Failed,
        }
    }
}

impl From<DeliveryStatusDto> for DeliveryStatus {
    fn from(s: DeliveryStatusDto) -> Self {
        match s {
            DeliveryStatusDto::Pending => DeliveryStatus::Pending,
            DeliveryStatusDto::Succeeded => DeliveryStatus::Succeeded,
            DeliveryStatusDto::Failed => DeliveryStatus::Failed,
        }
    }
}

/// One message's delivery to one endpoint.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryOut {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The message's `webhook-id` (and its body's `id`): the same on every attempt.
    pub message_id: String,
    /// `appointment.created`, ..., or `ping`.
    pub event: String,
    /// The event the message is about; `null` for a `ping`.
    #[oai(nullable)]
    pub event_id: Option<Uuid>,
    pub status: DeliveryStatusDto,
    /// Attempts made so far.
    pub attempts: i32,
    /// The endpoint's HTTP status at the last attempt; `null` when it did not answer.
    #[oai(nullable)]
    pub response_status: Option<i32>,
    /// How long the last attempt took.
    #[oai(nullable)]
    pub latency_ms: Option<i32>,
    /// Why the last attempt failed.
    #[oai(nullable)]
    pub last_error: Option<String>,
    /// When it is tried next; `null` unless it is pending.
    #[oai(nullable)]
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[oai(nullable)]
    pub delivered_at: Option<Timestamp>,
}

impl From<Logged> for DeliveryOut {
    fn from((d, m): Logged) -> Self {
        let pending = d.status == DeliveryStatus::Pending;
        DeliveryOut {
            id: d.id.0,
            webhook_id: d.endpoint_id.0,
            message_id: crate::delivery::message_id(d.message_id),
            event: m.map(|m| m.kind).unwrap_or_default(),
            event_id: d.event_id.map(|e| e.0),
            status: d.status.into(),
            attempts: d.attempts,
            response_status: d.response_status,
            latency_ms: d.latency_ms,
            last_error: d.last_error,
            next_attempt_at: pending.then_some(Timestamp(d.next_attempt_at)),
            created_at: Timestamp(d.created_at),
            updated_at: Timestamp(d.updated_at),
            delivered_at: d.delivered_at.map(Timestamp),
        }
    }
}

/// One delivery.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryEnvelope {
    pub data: DeliveryOut,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

/// A page of deliveries, newest first.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryList {
    pub data: Vec<DeliveryOut>,
    pub pagination: Pagination,
    /// Same as the `X-Request-Id` header.
    pub request_id: String,
}

fn envelope(m: entity::webhook_endpoints::Model, secret: Option<String>) -> Json<WebhookEnvelope> {
    Json(WebhookEnvelope {
        data: WebhookOut::of(m, secret),
        request_id: request_id::current(),
    })
}

fn delivery_envelope(logged: Logged) -> Json<DeliveryEnvelope> {
    Json(DeliveryEnvelope {
        data: logged.into(),
        request_id: request_id::current(),
    })
}

/// The answer a create stores with itself for `Idempotency-Key` replays (the secret included:
/// a retried create shows the secret of the one endpoint it made).
fn render_created(made: &(entity::webhook_endpoints::Model, String)) -> (u16, String) {
    use poem_openapi::types::ToJSON;
    let (m, secret) = made.clone();
    (201, envelope(m, Some(secret)).0.to_json_string())
}

/// The URL, held to the destination rules of this server.
fn check_url(v: &mut Violations, raw: &str, allow_private: bool) -> Option<String> {
    v.check("url", check_destination(raw, allow_private))
        .map(|d| d.url.to_string())
}

/// Each name one of the subscribable events, without repeats; empty means all.
fn check_events(v: &mut Violations, events: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for (i, name) in events.iter().enumerate() {
        match EventKind::parse(name.trim()) {
            Some(kind) => {
                if !kept.iter().any(|k| k == kind.as_str()) {
                    kept.push(kind.as_str().to_string());
                }
            }
            None => v.add(
                &format!("events[{i}]"),
                format!(
                    "unknown event '{name}'; use {}",
                    EventKind::SUBSCRIBABLE.map(EventKind::as_str).join(", ")
                ),
            ),
        }
    }
    kept
}

fn check_description(v: &mut Violations, description: Option<String>) -> Option<String> {
    let description = optional_text(description);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        v.add(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        );
    }
    description
}

#[derive(ApiResponse)]
pub enum ListWebhooksResponse {
    /// A page of the organization's endpoints, oldest first.
    #[oai(status = 200)]
    Ok(Json<WebhookList>),
}

#[derive(ApiResponse)]
pub enum CreateWebhookResponse {
    /// The endpoint, with its signing secret (shown this once).
    #[oai(status = 201)]
    Created(Json<WebhookEnvelope>),
}

#[derive(ApiResponse)]
pub enum WebhookResponse {
    /// The endpoint.
    #[oai(status = 200)]
    Ok(Json<WebhookEnvelope>),
}

#[derive(ApiResponse)]
pub enum DeleteWebhookResponse {
    /// The endpoint and its delivery log are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum PingResponse {
    /// The `ping` is queued; its delivery shows how it went.
    #[oai(status = 202)]
    Accepted(Json<DeliveryEnvelope>),
}

#[derive(ApiResponse)]
pub enum ListDeliveriesResponse {
    /// A page of the endpoint's deliveries, newest first.
    #[oai(status = 200)]
    Ok(Json<DeliveryList>),
}

#[derive(ApiResponse)]
pub enum DeliveryResponse {
    /// The delivery.
    #[oai(status = 200)]
    Ok(Json<DeliveryEnvelope>),
}

pub struct WebhooksApi;

#[OpenApi(prefix_path = "/v1/webhooks", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// List webhook endpoints
    ///
    /// A page of the organization's endpoints, oldest first. Scope: `webhooks:manage`.
    #[oai(path = "/", method = "get", operation_id = "listWebhooks")]
    async fn list(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Page number, from 1.
        #[oai(
            default = "crate::pagination::default_page",
            validator(minimum(value = "1"))
        )]
        page: Query<u64>,
        /// Items per page, 1 to 100.
        #[oai(
            default = "crate::pagination::default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u64>,
    ) -> Result<ListWebhooksResponse, Fail<LIST>> {
        let req = PageRequest::new(Some(page.0), Some(limit.0));
        let (items, total) = repo::list(&state.db, auth.0.org_id, req).await?;
        Ok(ListWebhooksResponse::Ok(Json(WebhookList {
            data: items.into_iter().map(|m| WebhookOut::of(m, None)).collect(),
            pagination: Pagination::new(req, total),
            request_id: request_id::current(),
        })))
    }

    /// Create a webhook endpoint
    ///
    /// Every change to an appointment (`appointment.created`, `appointment.rescheduled` with
    /// `previous`, `appointment.updated`, `appointment.cancelled`), whichever API made it, is
    /// POSTed to `url` as `{"id", "event", "timestamp", "data"}` and signed as Standard Webhooks
    /// has it (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The answer shows the
    /// signing secret once. Scope: `webhooks:manage`.
    #[oai(path = "/", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<WebhookIn>,
    ) -> Result<CreateWebhookResponse, Fail<CREATE>> {
        let body = body.0;
        let mut v = Violations::default();
        let url = check_url(&mut v, &body.url, state.config.webhook_allow_private);
        let events = check_events(&mut v, body.events.as_deref().unwrap_or_default());
        let description = check_description(&mut v, body.description);
        v.into_result()?;
        let req = EndpointRequest {
            url: url.unwrap_or_default(),
            events,
            description,
            disabled: body.disabled.unwrap_or(false),
        };
        let (model, secret) = state
            .service
            .create_webhook(auth.0.org_id, req, &render_created)
            .await?;
        Ok(CreateWebhookResponse::Created(envelope(
            model,
            Some(secret),
        )))
    }

    /// Get a webhook endpoint
    ///
    /// Scope: `webhooks:manage`.
    #[oai(path = "/:id", method = "get", operation_id = "getWebhook")]
    async fn get(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
    ) -> Result<WebhookResponse, Fail<READ>> {
        let model = state
            .service
            .webhook(auth.0.org_id, WebhookId(id.0))
            .await?;
        Ok(WebhookResponse::Ok(envelope(model, None)))
    }

    /// Update a webhook endpoint
    ///
    /// Changes only the fields present. `disabled: false` enables an endpoint Quando disabled.
    /// Scope: `webhooks:manage`.
    #[oai(path = "/:id", method = "patch", operation_id = "updateWebhook")]
    async fn update(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
        body: JsonBody<WebhookPatch>,
    ) -> Result<WebhookResponse, Fail<UPDATE>> {
        let body = body.0;
        let mut v = Violations::default();
        let url = body
            .url
            .as_deref()
            .map(|u| check_url(&mut v, u, state.config.webhook_allow_private));
        let events = body.events.as_deref().map(|e| check_events(&mut v, e));
        let description = maybe(body.description).map(|d| check_description(&mut v, d));
        v.into_result()?;
        let changes = EndpointChanges {
            url: url.flatten(),
            events,
            description,
            disabled: body.disabled,
        };
        let model = state
            .service
            .update_webhook(auth.0.org_id, WebhookId(id.0), changes)
            .await?;
        Ok(WebhookResponse::Ok(envelope(model, None)))
    }

    /// Delete a webhook endpoint
    ///
    /// With its delivery log; what it had not received is not sent. Scope: `webhooks:manage`.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteWebhook")]
    async fn delete(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
    ) -> Result<DeleteWebhookResponse, Fail<READ>> {
        state
            .service
            .delete_webhook(auth.0.org_id, WebhookId(id.0))
            .await?;
        Ok(DeleteWebhookResponse::Deleted)
    }

    /// Rotate a webhook endpoint's signing secret
    ///
    /// Answers the new secret, shown this once. For 24 hours the old secret signs beside it
    /// (`webhook-signature` carries both), so receivers can switch without missing a delivery.
    /// Scope: `webhooks:manage`.
    #[oai(
        path = "/:id/rotate-secret",
        method = "post",
        operation_id = "rotateWebhookSecret"
    )]
    async fn rotate(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
    ) -> Result<WebhookResponse, Fail<ACTION>> {
        let (model, secret) = state
            .service
            .rotate_webhook_secret(auth.0.org_id, WebhookId(id.0))
            .await?;
        Ok(WebhookResponse::Ok(envelope(model, Some(secret))))
    }

    /// Send a test ping
    ///
    /// Queues `{"event": "ping", "data": {"webhookId"}}` to the endpoint (even a disabled one),
    /// signed like every delivery. Scope: `webhooks:manage`.
    #[oai(path = "/:id/test", method = "post", operation_id = "testWebhook")]
    async fn test(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
    ) -> Result<PingResponse, Fail<ACTION>> {
        let logged = state
            .service
            .ping_webhook(auth.0.org_id, WebhookId(id.0))
            .await?;
        Ok(PingResponse::Accepted(delivery_envelope(logged)))
    }

    /// List an endpoint's deliveries
    ///
    /// Newest first: status, attempts, the last response code, latency and error, and when the
    /// next attempt is due. Scope: `webhooks:manage`.
    #[oai(
        path = "/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
        /// Only deliveries in this state.
        status: Query<Option<DeliveryStatusDto>>,
        /// Page number, from 1.
        #[oai(
            default = "crate::pagination::default_page",
            validator(minimum(value = "1"))
        )]
        page: Query<u64>,
        /// Items per page, 1 to 100.
        #[oai(
            default = "crate::pagination::default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<u64>,
    ) -> Result<ListDeliveriesResponse, Fail<READ>> {
        let org = auth.0.org_id;
        let webhook = WebhookId(id.0);
        state.service.webhook(org, webhook).await?;
        let req = PageRequest::new(Some(page.0), Some(limit.0));
        let (items, total) =
            repo::deliveries(&state.db, org, webhook, status.0.map(Into::into), req).await?;
        Ok(ListDeliveriesResponse::Ok(Json(DeliveryList {
            data: items.into_iter().map(Into::into).collect(),
            pagination: Pagination::new(req, total),
            request_id: request_id::current(),
        })))
    }

    /// Get a delivery
    ///
    /// Scope: `webhooks:manage`.
    #[oai(
        path = "/:id/deliveries/:delivery_id",
        method = "get",
        operation_id = "getWebhookDelivery"
    )]
    async fn delivery(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
        /// Delivery id.
        delivery_id: Path<Uuid>,
    ) -> Result<DeliveryResponse, Fail<READ>> {
        let logged = state
            .service
            .webhook_delivery(auth.0.org_id, WebhookId(id.0), DeliveryId(delivery_id.0))
            .await?;
        Ok(DeliveryResponse::Ok(delivery_envelope(logged)))
    }

    /// Retry a delivery
    ///
    /// Sends a failed delivery again now (one more attempt, then the schedule's remaining
    /// retries), or a pending one without waiting for its next attempt. A delivered one stays as
    /// it is. Scope: `webhooks:manage`.
    #[oai(
        path = "/:id/deliveries/:delivery_id/retry",
        method = "post",
        operation_id = "retryWebhookDelivery"
    )]
    async fn retry(
        &self,
        auth: WebhooksAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        /// Webhook endpoint id.
        id: Path<Uuid>,
        /// Delivery id.
        delivery_id: Path<Uuid>,
    ) -> Result<PingResponse, Fail<ACTION>> {
        let logged = state
            .service
            .retry_webhook_delivery(auth.0.org_id, WebhookId(id.0), DeliveryId(delivery_id.0))
            .await?;
        Ok(PingResponse::Accepted(delivery_envelope(logged)))
    }
}
