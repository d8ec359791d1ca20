//! People and roles: the tenant's users, their roles, and roles with their grants and members.
