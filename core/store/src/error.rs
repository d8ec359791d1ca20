//! The store's error type: what went wrong in terms a caller can act on.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist for this tenant (a row of another tenant is reported the same way).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "deployment".
        what: String,
    },
    /// The change conflicts with the current state: a version moved since it was read, a unique
    /// key is taken, or a decision was already recorded. Re-read and decide again.
    #[error("conflict: {what}")]
    Conflict {
        /// What conflicted, for logs and problem details.
        what: String,
    },
    /// A value the schema refuses (a CHECK constraint, e.g. a malformed tenant slug). The
    /// caller's input was wrong; retrying will not help.
    #[error("invalid value: {what}")]
    Invalid {
        /// The constraint that refused it.
        what: String,
    },
    /// Postgres or the connection failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The schema could not be migrated at start.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub use ferry_api::UnknownValue;

/// Results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// A [`StoreError::NotFound`] for `what`.
    pub fn not_found(what: impl Into<String>) -> StoreError {
        StoreError::NotFound { what: what.into() }
    }

    /// A [`StoreError::Conflict`] for `what`.
    pub fn conflict(what: impl Into<String>) -> StoreError {
        StoreError::Conflict { what: what.into() }
    }

    /// Whether this is a [`StoreError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Whether this is a [`StoreError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Maps a failed write: a unique violation becomes a conflict naming `what`, a foreign-key
/// violation means the parent row is missing for this tenant (`NotFound` of `parent`), a CHECK
/// violation is `Invalid`.
pub(crate) fn write_error(
    what: &'static str,
    parent: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let constraint = db.constraint().unwrap_or("unique key");
            StoreError::conflict(format!("{what} already exists ({constraint})"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::not_found(parent),
        sqlx::Error::Database(db) if db.is_check_violation() => StoreError::Invalid {
            what: format!("{what} ({})", db.constraint().unwrap_or("check")),
        },
        _ => StoreError::Database(err),
    }
}

/// Turns "no row" into `NotFound` of `what`.
pub(crate) fn found<T>(row: Option<T>, what: &'static str) -> Result<T> {
    row.ok_or_else(|| StoreError::not_found(what))
}
