//! Integration tests of svc-agent-hub against real Postgres, Redis and RabbitMQ: replicas run
//! in process (each on its own runtime so one can be killed outright), agents are
//! `ferry-agent-sim` agents, callers use `ferry-tunnel`, and each test has its own database.

mod auth;
mod broker;
mod failover;
mod harness;
mod metrics;
mod presence;
mod relay;
mod tls;
