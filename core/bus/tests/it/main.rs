//! Integration tests of ferry-bus against the real local RabbitMQ and Postgres. Each test has its
//! own database (`TestDb`) and its own exchange/queue prefix, deleted when the test ends.

mod consumer;
mod metrics;
mod outbox;
mod parking;
mod publisher;
mod shutdown;
mod support;
mod topology;
