//! ferry-svc-api: the REST API, the OAuth2 issuer for machine credentials, server-sent events, and the OpenAPI document.
//!
//! Status: the issuer is complete (OIDC discovery, JWKS, the client-credentials token endpoint,
//! signing keys sealed in Postgres and rotated across replicas, `bootstrap` of the first tenant
//! and credential), and the bearer-token [`auth::Principal`] extractor guards `/v1`: deployments
//! (start, list, detail, configuration, server-sent events, actions, webhook callbacks), agents,
//! the tenant and the organization's tenants, roles, users, machine credentials, secrets and
//! metric providers, each resource in its module under [`v1`]. People sign in with an external
//! OIDC issuer (`FERRY_OIDC_*`) as users a tenant administrator invited
//! ([`identity::people`]). `GET /openapi.json` describes it (generated with utoipa) and `/docs`
//! renders that offline. Bodies are size-limited and each tenant is rate-limited. The process
//! also runs the transactional-outbox relay, reports health and metrics on its admin port, and
//! drains and stops on SIGTERM.
//!
//! `run` is the whole service; `main.rs` only parses settings and calls it (or `bootstrap`), and
//! tests start it in process.

pub mod armory;
pub mod auth;
pub mod error;
pub mod extract;
pub mod identity;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod settings;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ui;
pub mod v1;

pub use settings::{Cli, Command, Settings};
pub use state::{ApiConfig, AppState, IssuerConfig};

use anyhow::Context;
use axum::Router;
use ferry_bus::{Relay, RelayConfig, RelayMetrics};
use ferry_runtime::{Health, lifecycle};
use identity::bootstrap::BootstrapOutcome;
use identity::keys::{KeyPolicy, KeyRing};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Interval of keep-alive comments on idle event streams (below common proxy idle timeouts).
const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The admin address used when `FERRY_ADMIN_ADDR` is not set.
pub const DEFAULT_ADMIN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9101);

/// The public router: the issuer's endpoints, `/v1`, the OpenAPI document and its page, with
/// request ids, a request body limit, problem+json 404s, and request metrics by route.
pub fn router(state: AppState) -> Router {
    let body_limit = state.api.max_body_bytes;
    let http_metrics = state.metrics.http.clone();
    Router::new()
        .merge(identity::router())
        .merge(v1::router())
        .merge(armory::router())
        .merge(openapi::router())
        .merge(ui::router())
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(error::request_id))
        // Outermost, so the time and status include every other layer (the body limit's 413s).
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            ferry_runtime::metrics::http::track,
        ))
        .with_state(state)
}

/// Runs svc-api until `shutdown` fires: the public API on `http`, health and metrics on `admin`.
pub async fn run(
    settings: Settings,
    admin: TcpListener,
    http: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let identity = &settings.identity;
    let issuer = identity.issuer()?;
    let token_ttl = identity.token_ttl()?;
    let policy = KeyPolicy {
        rotation: identity.key_rotation()?,
        token_ttl,
    };
    let master = identity.master_key()?;
    settings.api.validate()?;
    let people = settings.oidc.config()?;
    let manifest_fetch = settings
        .manifest_fetch
        .config(settings.api.max_body_bytes)?;
    if people.as_ref().is_some_and(|p| p.issuer == issuer) {
        anyhow::bail!("FERRY_OIDC_ISSUER_URL must be another issuer than FERRY_ISSUER_URL");
    }

    let registry = ferry_runtime::admin::new_registry();
    let metrics = metrics::ApiMetrics::register(&registry).context("registering metrics")?;
    let relay_metrics = RelayMetrics::register(&registry).context("registering metrics")?;
    let store = connect_store(&settings).await?;
    let deployment_gauges = Arc::new(
        metrics::deployments::DeploymentGauges::register(store.pool().clone(), &registry)
            .context("registering metrics")?,
    );
    let bus = ferry_backends::connect::bus(&settings.amqp, "ferry-svc-api").await?;
    let keys = Arc::new(
        KeyRing::open(store.pool().clone(), master.clone(), issuer.clone(), policy)
            .await
            .context(
                "loading the signing keys (is FERRY_MASTER_KEY the one they were sealed with?)",
            )?,
    );
    // A child token: the work can stop itself (the server failed) without cancelling the
    // caller's token.
    let work_shutdown = shutdown.child_token();
    let state = AppState::new(
        store.clone(),
        keys.clone(),
        IssuerConfig { issuer, token_ttl },
        metrics,
        master,
        state::Limits {
            per_tenant: ratelimit::RateLimiter::new(
                settings.api.rate_limit_per_sec,
                settings.api.rate_limit_burst,
            ),
            token: identity::token_limits::TokenLimits::new(&settings.api),
        },
        ApiConfig {
            max_body_bytes: settings.api.max_body_bytes,
            events_poll: Duration::from_millis(settings.api.events_poll_ms),
            events_keep_alive: EVENTS_KEEP_ALIVE,
            shutdown: work_shutdown.clone(),
            manifest_fetch,
        },
    );
    let state = match people {
        Some(config) => {
            tracing::info!(issuer = %config.issuer, audience = %config.audience, "people sign in with an external OIDC issuer");
            state.with_people(
                identity::oidc::OidcIssuer::new(config)
                    .context("setting up the sign-in issuer (FERRY_OIDC_ISSUER_URL)")?,
            )
        }
        None => state,
    };
    let mut state = state;
    state.oidc_client_secret = settings
        .oidc
        .oidc_client_secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Arc::from);
    let health = Health::new(ferry_backends::connect::checks(store.pool(), &bus));
    let http_addr = http.local_addr().context("reading the HTTP address")?;
    tracing::info!(%http_addr, issuer = keys.issuer(), kid = keys.current_kid(), "serving");

    let relay = Relay::new(store.pool().clone(), bus.clone(), RelayConfig::default())
        .with_metrics(relay_metrics);
    let work = async move {
        // Peers' addresses reach the handlers (the token endpoint limits per source address).
        let server = axum::serve(
            http,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(work_shutdown.clone().cancelled_owned());
        let relay_shutdown = work_shutdown.clone();
        let relay_task = tokio::spawn(async move { relay.run(relay_shutdown).await });
        let keys_task = tokio::spawn(keys.run(work_shutdown.clone()));
        let served = server.await.context("serving HTTP");
        // The server returns early only on an accept error: stop the rest with it.
        work_shutdown.cancel();
        let _ = relay_task.await;
        let _ = keys_task.await;
        bus.close().await;
        served
    };
    let admin_server =
        ferry_runtime::Admin::new(health, registry).with_scrape_hook(deployment_gauges);
    lifecycle::run_admin(
        "svc-api",
        admin,
        admin_server,
        shutdown,
        Duration::from_secs(settings.common.shutdown_grace_secs),
        work,
    )
    .await
}

/// Creates the tenant and admin credential `args` names, if missing (the `bootstrap` command).
pub async fn bootstrap(
    settings: &Settings,
    args: &settings::BootstrapArgs,
) -> anyhow::Result<BootstrapOutcome> {
    let store = connect_store(settings).await?;
    identity::bootstrap::bootstrap(&store, args)
        .await
        .with_context(|| format!("bootstrapping tenant {:?}", args.tenant))
}

/// Makes a local account a user of a tenant (the `local-user` command).
pub async fn local_user(
    settings: &Settings,
    args: &settings::LocalUserArgs,
    password: Option<String>,
) -> anyhow::Result<identity::local_users::LocalUser> {
    let store = connect_store(settings).await?;
    identity::local_users::local_user(&store, args, password)
        .await
        .with_context(|| format!("making {:?} a local user of {:?}", args.email, args.tenant))
}

async fn connect_store(settings: &Settings) -> anyhow::Result<ferry_store::Store> {
    let pool = ferry_backends::connect::postgres(&settings.postgres).await?;
    Ok(ferry_store::Store::from_pool(pool))
}
