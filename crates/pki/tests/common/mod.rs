//! What both test files serve: core's side of mutual TLS, answering with its peer's identity.

use std::sync::Arc;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use rampart_kernel::config::HttpSettings;
use rampart_pki::{MtlsAcceptor, MutualTls, Peer};
use tokio_util::sync::CancellationToken;

/// core's side: answers with the identity its client proved. Returns its https URL.
pub async fn serve(tls: &Arc<MutualTls>, shutdown: &CancellationToken) -> String {
    let listener = rampart_kernel::serve::bind(([127, 0, 0, 1], 0).into())
        .await
        .expect("bind");
    let url = format!("https://{}/", listener.local_addr().expect("addr"));
    let router = Router::new().route(
        "/",
        get(|Extension(peer): Extension<Peer>| async move { peer.identity.0 }),
    );
    let (acceptor, shutdown) = (MtlsAcceptor::new(tls), shutdown.clone());
    tokio::spawn(async move {
        rampart_kernel::serve::serve_with(listener, acceptor, router, &HttpSettings::default(), shutdown).await
    });
    url
}
