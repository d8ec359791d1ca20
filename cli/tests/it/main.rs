//! Tests of the built `ferry` binary: local validation, and every command against svc-api
//! started in process (with the scheduler engine and Kubernetes API simulators for `--watch`).

mod commands;
mod deployments;
mod support;
mod validate;
mod watch;
