//! The caller, its tenant, the tenants of an organization, and the tenant's agents.
