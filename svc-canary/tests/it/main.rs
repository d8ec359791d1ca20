//! svc-canary's integration tests: the worker in process against real Postgres and RabbitMQ,
//! a real Prometheus server scraping a test exporter, and recorded Datadog and New Relic
//! answers served locally; the binary as an operator runs it.

mod binary;
mod durability;
mod prom_server;
mod real_prometheus;
mod recorded;
mod support;
