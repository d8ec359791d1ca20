//! Tests of the built `ferry` binary: local validation, and every command against svc-api
//! started in process (with the scheduler engine and Kubernetes API simulators for `--watch`).

mod analysis;
mod commands;
mod deployments;
mod external_sign_in;
mod github;
mod people;
mod sign_in;
mod support;
mod validate;
mod watch;
