//! Webhook endpoint writes and the delivery log's retry: each one transaction. The messages
//! themselves are written by `repo::events` inside every change's own transaction (the outbox);
//! the delivery worker (the crate's `delivery` module) sends them.

use entity::webhook_deliveries::DeliveryStatus;
use entity::webhook_endpoints::Model;

use super::{Render, Resource, Service, ServiceError};
use crate::domain::ids::{DeliveryId, OrgId, WebhookId};
use crate::domain::webhooks::SigningSecret;
use crate::repo::webhooks::{EndpointChanges, Logged, NewEndpoint};
use crate::repo::{self, begin_write, idempotency};

/// A new endpoint's checked fields (the URL already held to the destination rules).
pub struct EndpointRequest {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
}

impl Service {
    /// Creates an endpoint with a fresh signing secret; answers it with the secret, shown this
    /// once.
    pub async fn create_webhook(
        &self,
        org: OrgId,
        req: EndpointRequest,
        render: Render<'_, (Model, String)>,
    ) -> Result<(Model, String), ServiceError> {
        let secret = SigningSecret::generate().shown();
        let (_queued, txn) = begin_write(&self.writer).await?;
        let model = repo::webhooks::create(
            &txn,
            org,
            NewEndpoint {
                url: req.url,
                events: req.events,
                description: req.description,
                disabled: req.disabled,
                secret: secret.clone(),
            },
        )
        .await?;
        let made = (model, secret);
        idempotency::seal(&txn, &made, render).await?;
        txn.commit().await?;
        Ok(made)
    }

    pub async fn webhook(&self, org: OrgId, id: WebhookId) -> Result<Model, ServiceError> {
        repo::webhooks::get(&self.db, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Webhook))
    }

    pub async fn update_webhook(
        &self,
        org: OrgId,
        id: WebhookId,
        changes: EndpointChanges,
    ) -> Result<Model, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let current = repo::webhooks::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Webhook))?;
        let model = repo::webhooks::update(&txn, current, changes).await?;
        txn.commit().await?;
        Ok(model)
    }

    /// Deletes an endpoint and its delivery log; what it had not received yet is not sent.
    pub async fn delete_webhook(&self, org: OrgId, id: WebhookId) -> Result<(), ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        if !repo::webhooks::delete(&txn, org, id).await? {
            return Err(ServiceError::NotFound(Resource::Webhook));
        }
        txn.commit().await?;
        Ok(())
    }

    /// A new signing secret (shown this once); the old one signs beside it for 24 hours.
    pub async fn rotate_webhook_secret(
        &self,
        org: OrgId,
        id: WebhookId,
    ) -> Result<(Model, String), ServiceError> {
        let secret = SigningSecret::generate().shown();
        let (_queued, txn) = begin_write(&self.writer).await?;
        let current = repo::webhooks::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Webhook))?;
        let model = repo::webhooks::rotate(&txn, current, secret.clone()).await?;
        txn.commit().await?;
        Ok((model, secret))
    }

    /// Tells this instance's webhook worker that a write of events has committed: it may have
    /// queued messages (the outbox is written in the same transaction), which the worker then
    /// claims within moments instead of at its next poll. Each instance so delivers what its own
    /// bookings queued, and the messages of one booking load spread over the instances that took
    /// it. A wake costs the worker one read of the queue, and a booking load wakes it at most
    /// once per `delivery::WAKE_GAP`.
    pub(crate) fn event_written(&self) {
        self.deliveries_due.notify_one();
    }

    /// Queues a `ping` to the endpoint; answers its delivery (the log shows how it went).
    pub async fn ping_webhook(&self, org: OrgId, id: WebhookId) -> Result<Logged, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        let endpoint = repo::webhooks::get(&txn, org, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Webhook))?;
        let delivery = repo::webhooks::ping(&txn, &endpoint).await?;
        let message = repo::webhooks::message(&txn, org, delivery.message_id).await?;
        txn.commit().await?;
        self.deliveries_due.notify_one();
        Ok((delivery, message))
    }

    pub async fn webhook_delivery(
        &self,
        org: OrgId,
        webhook: WebhookId,
        id: DeliveryId,
    ) -> Result<Logged, ServiceError> {
        repo::webhooks::delivery(&self.db, org, webhook, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Delivery))
    }

    /// Sends a delivery again now: a failed one, or a pending one without waiting for its next
    /// attempt. A delivery already received stays as it is.
    pub async fn retry_webhook_delivery(
        &self,
        org: OrgId,
        webhook: WebhookId,
        id: DeliveryId,
    ) -> Result<Logged, ServiceError> {
        let (_queued, txn) = begin_write(&self.writer).await?;
        repo::webhooks::get(&txn, org, webhook)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Webhook))?;
        let (delivery, message) = repo::webhooks::delivery(&txn, org, webhook, id)
            .await?
            .ok_or(ServiceError::NotFound(Resource::Delivery))?;
        let delivery = if delivery.status == DeliveryStatus::Succeeded {
            delivery
        } else {
            repo::webhooks::retry(&txn, delivery).await?
        };
        txn.commit().await?;
        self.deliveries_due.notify_one();
        Ok((delivery, message))
    }
}
