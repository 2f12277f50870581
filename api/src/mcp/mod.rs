//! Quando as an MCP server for voice agents: `/mcp`, the Streamable HTTP transport of the Model
//! Context Protocol, from the official Rust SDK (`rmcp`), hosted by poem as a tower service.
//!
//! The same bearer keys and scopes as the REST API: the tenant layer authenticates the request
//! before it reaches the transport (no key or an unknown one is a 401 in the native envelope; a
//! publishable key is refused: an agent runs on a server, where a secret key belongs), and each
//! tool reads the caller from the HTTP request the SDK hands it. Read tools need
//! `calendar:read`, write tools `calendar:write`; a missing scope is a tool error naming it.
//!
//! The tools (`tools.rs`) are mappers over the same service every dialect uses: one set of
//! booking rules. A refused booking is a normal tool result (`isError: true`) with the reason
//! and the next free slots written for speech, never a protocol error; bad arguments name the
//! field.

mod tools;

use std::sync::Arc;

use poem::endpoint::TowerCompatExt;
use poem::{Endpoint, EndpointExt, Request, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::auth::{AuthFailure, Tenant};
use crate::dialects::native::errors::error_response;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub use tools::Quando;

/// The MCP endpoint: authenticated by the tenant layer, then the SDK's transport.
pub struct McpEndpoint {
    transport: poem::endpoint::BoxEndpoint<'static, Response>,
}

impl McpEndpoint {
    pub fn new(state: AppState) -> Self {
        let config = StreamableHttpServerConfig::default()
            // Every request carries a bearer key, which a page in a browser cannot send on its
            // own: the Host and Origin checks against DNS rebinding add nothing, and would refuse
            // Quando behind its own domain name. Browser origins are the CORS layer's.
            .disable_allowed_hosts()
            .disable_allowed_origins()
            // Requests of the session-less protocol revision (2026-07-28, which the SDKs try
            // first) answer one JSON body. Sessions (`initialize`, `Mcp-Session-Id`, for older
            // clients) keep rmcp's session mode, whose POSTs answer a one-event SSE stream: the
            // transport allows either, and the SDK only offers JSON without sessions.
            .with_json_response(true)
            .with_sse_keep_alive(Some(std::time::Duration::from_secs(15)));
        let transport = StreamableHttpService::new(
            move || Ok(Quando::new(state.clone())),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        McpEndpoint {
            transport: transport.compat().map_to_response().boxed(),
        }
    }
}

impl Endpoint for McpEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if req.data::<Tenant>().is_none() {
            let err = match req.data::<AuthFailure>() {
                Some(AuthFailure(err)) => err.clone(),
                None => ApiError::unauthorized(
                    "/mcp needs Authorization: Bearer qnd_live_... (an API key of the organization)",
                ),
            };
            let mut resp = error_response(err.into());
            if resp.status() == poem::http::StatusCode::UNAUTHORIZED {
                // RFC 9110 and MCP clients' discovery: how to authenticate.
                resp.headers_mut().insert(
                    poem::http::header::WWW_AUTHENTICATE,
                    poem::http::HeaderValue::from_static("Bearer realm=\"quando\""),
                );
            }
            return Ok(resp);
        }
        if req
            .data::<Tenant>()
            .is_some_and(|t| t.publishable.is_some())
        {
            return Ok(error_response(
                ApiError::new(
                    ErrorCode::InsufficientScope,
                    "a publishable key cannot use /mcp: voice agents use a secret key",
                )
                .into(),
            ));
        }
        let closing = req.method() == poem::http::Method::DELETE;
        let mut resp = self.transport.call(req).await?;
        if closing && resp.status() == poem::http::StatusCode::ACCEPTED {
            // A session closed: nothing is pending (rmcp answers 202; clients expect 200/204).
            resp.set_status(poem::http::StatusCode::NO_CONTENT);
        }
        Ok(resp)
    }
}
