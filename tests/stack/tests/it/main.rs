//! Whole-system tests: real binaries, real Postgres, Redis and RabbitMQ, Kubernetes API simulators.

mod analysis;
mod app;
mod crash;
mod e2e;
mod readiness;
mod traces;
mod ui;
mod webhooks;
