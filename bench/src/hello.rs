//! The framework ceiling (issue 17): a poem-openapi hello-world endpoint served by the server
//! child next to Quando, on the same cores, so `get` can be compared with what the framework
//! alone answers in the same run. Bench-only: the product has no such route.

use poem::listener::TcpListener;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, OpenApiService};

#[derive(Object)]
struct Hello {
    message: String,
}

struct Api;

#[OpenApi]
impl Api {
    /// `{"message":"hello"}`.
    #[oai(path = "/hello", method = "get")]
    async fn hello(&self) -> Json<Hello> {
        Json(Hello {
            message: "hello".into(),
        })
    }
}

/// A listener on 127.0.0.1 at a free port, and that address.
pub async fn bind_loopback()
-> Result<(poem::listener::TcpAcceptor, std::net::SocketAddr), crate::AnyError> {
    use poem::listener::{Acceptor, Listener};
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or("a loopback listener has no address")?;
    Ok((acceptor, addr))
}

/// Binds 127.0.0.1:0 and serves the hello-world API in the background; returns its base URL.
pub async fn serve() -> Result<String, crate::AnyError> {
    let (acceptor, addr) = bind_loopback().await?;
    let app = OpenApiService::new(Api, "hello", "1");
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    Ok(format!("http://{addr}"))
}
