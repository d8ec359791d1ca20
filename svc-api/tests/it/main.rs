//! svc-api integration tests: the real service in process on 127.0.0.1:0, against real
//! Postgres (a database per test) and RabbitMQ (a name prefix per test).

mod actions;
mod admin;
mod agents;
mod bootstrap;
mod deployments;
mod discovery;
mod events;
mod isolation;
mod keys;
mod lifecycle;
mod limits;
mod oidc_issuer;
mod people;
mod remote_manifests;
mod support;
mod tenants;
mod token;
mod whoami;
