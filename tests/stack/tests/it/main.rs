//! Whole-system tests: real binaries, real Postgres, Redis and RabbitMQ, Kubernetes API simulators.

mod app;
mod crash;
mod e2e;
