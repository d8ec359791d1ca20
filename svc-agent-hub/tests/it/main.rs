//! Integration tests of svc-agent-hub against real Redis and RabbitMQ: replicas run in process
//! (each on its own runtime so one can be killed outright), agents are `ferry-agent-sim`
//! agents, callers use `ferry-tunnel`.

mod auth;
mod failover;
mod harness;
mod relay;
mod tls;
