//! ferry-store integration tests, against a fresh Postgres database per test.

mod access;
mod deployments;
mod scheduling;
mod support;
mod tenancy;
