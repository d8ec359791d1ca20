//! svc-api integration tests: the real service in process on 127.0.0.1:0, against real
//! Postgres (a database per test) and RabbitMQ (a name prefix per test).

mod actions;
mod admin;
mod agents;
mod analysis;
mod armory;
mod audit;
mod auth_matrix;
mod bootstrap;
mod deployments;
mod device_flow;
mod discovery;
mod events;
mod fuzz;
mod isolation;
mod keys;
mod lifecycle;
mod limits;
mod metrics;
mod oidc_issuer;
mod openapi;
mod people;
mod remote_manifests;
mod revocation;
mod schema;
mod support;
mod tenants;
mod token;
mod ui_sign_in;
mod webhooks;
mod whoami;
