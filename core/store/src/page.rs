//! Keyset pagination: newest first by `(created_at, id)`, with an opaque cursor for the API.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The largest page a caller may ask for; larger requests are clamped.
pub const MAX_PAGE: i64 = 200;

/// The position after the last row of a page: the next page starts strictly older than it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last row returned.
    pub created_at: DateTime<Utc>,
    /// `id` of the last row returned (breaks ties between rows created in the same microsecond).
    pub id: Uuid,
}

/// Cursor text that is not one we produced.
#[derive(Debug, thiserror::Error)]
#[error("invalid page cursor")]
pub struct InvalidCursor;

/// Encoded as `<microseconds since epoch>.<uuid>`: opaque to clients, stable across releases.
impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;
    fn from_str(s: &str) -> Result<Cursor, InvalidCursor> {
        let (micros, id) = s.split_once('.').ok_or(InvalidCursor)?;
        let micros: i64 = micros.parse().map_err(|_| InvalidCursor)?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or(InvalidCursor)?;
        let id = Uuid::parse_str(id).map_err(|_| InvalidCursor)?;
        Ok(Cursor { created_at, id })
    }
}

/// One page of rows and where the next one starts (`None` on the last page).
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    /// The rows, newest first.
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` when there is nothing older.
    pub next: Option<Cursor>,
}

/// Clamps a requested page size into `1..=MAX_PAGE`.
pub(crate) fn clamp_limit(limit: i64) -> i64 {
    limit.clamp(1, MAX_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        assert!("12.nope".parse::<Cursor>().is_err());
        assert!("nodot".parse::<Cursor>().is_err());
    }
}
