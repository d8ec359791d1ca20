//! Webhook runs of a deployment and the tenant's webhook network settings.
