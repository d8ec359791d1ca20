//! Readiness checks built from a closure, for dependencies reached through a wrapper of their own.
//! The checks of Postgres, RabbitMQ and Redis are in `ferry-backends`.

use crate::admin::ReadinessCheck;
use futures::future::BoxFuture;

/// A check made of a name and a closure, for dependencies reached through a wrapper of their own
/// (e.g. `ferry_bus::Bus::readiness`).
pub struct FromFn<F> {
    name: &'static str,
    check: F,
}

/// Builds a [`ReadinessCheck`] from a closure returning the check's future.
pub fn from_fn<F>(name: &'static str, check: F) -> FromFn<F>
where
    F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
{
    FromFn { name, check }
}

impl<F> ReadinessCheck for FromFn<F>
where
    F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        (self.check)()
    }
}
