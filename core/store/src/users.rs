//! Human users of a tenant (identified by email; authentication itself is an OIDC issuer's),
//! their role bindings, and the sign-in lookup from a tenant slug and an email to a membership.

use crate::Store;
use crate::error::{Result, StoreError, found, write_error};
use crate::ids::TenantId;
pub use ferry_api::people::{User, UserWithRoles};
use sqlx::PgConnection;
use uuid::Uuid;

/// Creates a user; an email already used in the tenant is a conflict.
pub async fn create(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
    display_name: &str,
) -> Result<User> {
    sqlx::query_as(
        "INSERT INTO users (tenant_id, id, email, display_name) VALUES ($1, $2, $3, $4)
         RETURNING tenant_id, id, email, display_name, created_at, updated_at",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(display_name)
    .fetch_one(conn)
    .await
    .map_err(write_error("user", "tenant"))
}

/// The user with `id`.
pub async fn get(store: &Store, tenant: TenantId, id: Uuid) -> Result<User> {
    let row = sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    found(row, "user")
}

/// The user with `email` (as stored; callers normalise case).
pub async fn get_by_email(store: &Store, tenant: TenantId, email: &str) -> Result<User> {
    let row = sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND email = $2",
    )
    .bind(tenant)
    .bind(email)
    .fetch_optional(store.pool())
    .await?;
    found(row, "user")
}

/// All users of the tenant, by email.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<User>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 ORDER BY email",
    )
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// Who a person is in a tenant: found by [`membership`] when they sign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub tenant: TenantId,
    pub user: Uuid,
    /// Role names bound to the user, sorted.
    pub roles: Vec<String>,
}

macro_rules! with_roles_select {
    () => {
        "SELECT u.tenant_id, u.id, u.email, u.display_name, u.created_at, u.updated_at,
                COALESCE(array_agg(r.name ORDER BY r.name) FILTER (WHERE r.name IS NOT NULL),
                         '{}') AS roles
         FROM users u
         LEFT JOIN role_bindings b ON b.tenant_id = u.tenant_id AND b.principal_kind = 'user'
                                  AND b.principal_id = u.id
         LEFT JOIN roles r ON r.tenant_id = b.tenant_id AND r.id = b.role_id "
    };
}

/// The user with `email` in the caller's transaction, if any (as stored; callers normalise
/// case).
pub async fn find_by_email(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, email, display_name, created_at, updated_at
         FROM users WHERE tenant_id = $1 AND email = $2 FOR UPDATE",
    )
    .bind(tenant)
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// All users of the tenant with their roles, by email.
pub async fn list_with_roles(store: &Store, tenant: TenantId) -> Result<Vec<UserWithRoles>> {
    Ok(sqlx::query_as(concat!(
        with_roles_select!(),
        "WHERE u.tenant_id = $1 GROUP BY u.tenant_id, u.id ORDER BY u.email"
    ))
    .bind(tenant)
    .fetch_all(store.pool())
    .await?)
}

/// The user `id` with its roles, in the caller's transaction.
pub async fn get_with_roles(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<UserWithRoles> {
    let row = sqlx::query_as(concat!(
        with_roles_select!(),
        "WHERE u.tenant_id = $1 AND u.id = $2 GROUP BY u.tenant_id, u.id"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    found(row, "user")
}

/// Makes `roles` exactly the set of roles bound to user `id`. A role name the tenant does not
/// have is `NotFound` naming it, and nothing changes.
pub async fn set_roles(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
    roles: &[String],
) -> Result<()> {
    let known: Vec<String> =
        sqlx::query_scalar("SELECT name FROM roles WHERE tenant_id = $1 AND name = ANY($2)")
            .bind(tenant)
            .bind(roles)
            .fetch_all(&mut *conn)
            .await?;
    if let Some(missing) = roles.iter().find(|r| !known.contains(r)) {
        return Err(StoreError::not_found(format!("role {missing:?}")));
    }
    sqlx::query(
        "DELETE FROM role_bindings b USING roles r
         WHERE b.tenant_id = $1 AND r.tenant_id = $1 AND r.id = b.role_id
           AND b.principal_kind = 'user' AND b.principal_id = $2 AND NOT r.name = ANY($3)",
    )
    .bind(tenant)
    .bind(id)
    .bind(roles)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO role_bindings (tenant_id, role_id, principal_kind, principal_id)
         SELECT $1, r.id, 'user', $2 FROM roles r WHERE r.tenant_id = $1 AND r.name = ANY($3)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(id)
    .bind(roles)
    .execute(&mut *conn)
    .await
    .map_err(write_error("role binding", "role"))?;
    Ok(())
}

/// Removes the user with `email` and its role bindings; returns what it was. `NotFound` when
/// the tenant has no such user.
pub async fn remove(
    conn: &mut PgConnection,
    tenant: TenantId,
    email: &str,
) -> Result<UserWithRoles> {
    let user = find_by_email(conn, tenant, email)
        .await?
        .ok_or_else(|| StoreError::not_found("user"))?;
    let removed = get_with_roles(conn, tenant, user.id).await?;
    sqlx::query(
        "DELETE FROM role_bindings
         WHERE tenant_id = $1 AND principal_kind = 'user' AND principal_id = $2",
    )
    .bind(tenant)
    .bind(user.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(user.id)
        .execute(&mut *conn)
        .await?;
    Ok(removed)
}

/// A person signing in, as their verified token says.
#[derive(Clone, Copy, Debug)]
pub struct SignIn<'a> {
    /// The token's issuer.
    pub issuer: &'a str,
    /// The token's subject at that issuer.
    pub subject: &'a str,
    /// The email, trimmed and lower-cased.
    pub email: &'a str,
    /// Whether the issuer says it verified the email (`email_verified: true`).
    pub email_verified: bool,
}

/// What a sign-in finds in a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignInOutcome {
    /// A member: the user bound to the issuer and subject (bound now, on a first sign-in).
    Member(Membership),
    /// No such tenant, or no user in it for this identity (callers answer both alike).
    NotMember,
    /// An invitation for the email waits, but the issuer did not verify the email, so it is
    /// not accepted.
    EmailUnverified,
}

/// The membership of the person signing in to the tenant with slug `tenant_slug`. People are
/// known by issuer and subject: a user already bound to them is found whatever the email says
/// now; an invited user (bound to nobody yet) with the token's email is bound to the token's
/// issuer and subject on this first sign-in, only when the issuer verified the email. A user
/// bound to someone else is never reached through their email.
pub async fn membership(
    store: &Store,
    tenant_slug: &str,
    person: SignIn<'_>,
) -> Result<SignInOutcome> {
    for _ in 0..2 {
        let bound: Option<(TenantId, Uuid)> = sqlx::query_as(
            "SELECT t.id, u.id FROM tenants t
             JOIN users u ON u.tenant_id = t.id AND u.issuer = $2 AND u.subject = $3
             WHERE t.slug = $1",
        )
        .bind(tenant_slug)
        .bind(person.issuer)
        .bind(person.subject)
        .fetch_optional(store.pool())
        .await?;
        if let Some((tenant, user)) = bound {
            return Ok(SignInOutcome::Member(roles_of(store, tenant, user).await?));
        }
        let invited: Option<(TenantId, Uuid)> = sqlx::query_as(
            "SELECT t.id, u.id FROM tenants t
             JOIN users u ON u.tenant_id = t.id AND u.email = $2 AND u.issuer IS NULL
             WHERE t.slug = $1",
        )
        .bind(tenant_slug)
        .bind(person.email)
        .fetch_optional(store.pool())
        .await?;
        let Some((tenant, user)) = invited else {
            return Ok(SignInOutcome::NotMember);
        };
        if !person.email_verified {
            return Ok(SignInOutcome::EmailUnverified);
        }
        let claimed = sqlx::query(
            "UPDATE users SET issuer = $3, subject = $4, updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND issuer IS NULL",
        )
        .bind(tenant)
        .bind(user)
        .bind(person.issuer)
        .bind(person.subject)
        .execute(store.pool())
        .await;
        match claimed {
            Ok(done) if done.rows_affected() == 1 => {
                return Ok(SignInOutcome::Member(roles_of(store, tenant, user).await?));
            }
            // Another sign-in bound the invitation first, or this identity already holds
            // another user of the tenant: look again by identity.
            Ok(_) => continue,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => continue,
            Err(error) => return Err(StoreError::Database(error)),
        }
    }
    Ok(SignInOutcome::NotMember)
}

/// The membership of `user` of `tenant`: its role names.
async fn roles_of(store: &Store, tenant: TenantId, user: Uuid) -> Result<Membership> {
    let roles: Vec<String> = sqlx::query_scalar(
        "SELECT r.name FROM role_bindings b
         JOIN roles r ON r.tenant_id = b.tenant_id AND r.id = b.role_id
         WHERE b.tenant_id = $1 AND b.principal_kind = 'user' AND b.principal_id = $2
         ORDER BY r.name",
    )
    .bind(tenant)
    .bind(user)
    .fetch_all(store.pool())
    .await?;
    Ok(Membership {
        tenant,
        user,
        roles,
    })
}
