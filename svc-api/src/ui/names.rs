//! Who did what, as people read it: the user and credential ids a page shows (a deployment's
//! `created_by`, and ids inside history reasons such as the scheduler's `approved by <id>`,
//! which it takes from the approval's stored `decided_by`) resolved to a person's email or
//! `credential NAME`, in one tenant-scoped query per page. An id that names neither (deleted,
//! or not a person's or credential's) shows as it is; the signed-in person is marked "(you)".

use crate::error::ApiError;
use crate::state::AppState;
use ferry_store::{StoreError, TenantId};
use std::collections::HashMap;
use uuid::Uuid;

/// Most ids resolved at once (a page lists at most this many actors).
pub const MAX_IDS: usize = 200;

/// Display names by subject id.
pub struct Names {
    by_id: HashMap<String, String>,
    me: String,
}

impl Names {
    /// The names of `ids` in `tenant` (at most [`MAX_IDS`]; ids that are not UUIDs are shown as
    /// they are). `me` is the signed-in principal's subject.
    pub async fn of<'a>(
        state: &AppState,
        tenant: TenantId,
        me: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Names, ApiError> {
        let mut wanted: Vec<Uuid> = ids
            .into_iter()
            .filter_map(|id| id.parse::<Uuid>().ok())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted.truncate(MAX_IDS);
        let rows: Vec<(String, String)> = if wanted.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT id::text, email FROM users WHERE tenant_id = $1 AND id = ANY($2)
                 UNION ALL
                 SELECT id::text, 'credential ' || name FROM credentials
                 WHERE tenant_id = $1 AND id = ANY($2)",
            )
            .bind(tenant)
            .bind(&wanted)
            .fetch_all(state.store.pool())
            .await
            .map_err(StoreError::from)?
        };
        Ok(Names {
            by_id: rows.into_iter().collect(),
            me: me.to_string(),
        })
    }

    /// What people read for `text` (a history reason): the ids in it that name a person or a
    /// credential replaced by the name.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for id in ids_in(text) {
            if let Some(name) = self.by_id.get(&id) {
                out = out.replace(&id, name);
            }
        }
        out
    }

    /// The person's email or `credential NAME` that subject `id` names, if known.
    pub fn name(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }

    /// What people read for subject `id`.
    pub fn show(&self, id: &str) -> String {
        let name = self.by_id.get(id).map_or(id, String::as_str);
        if id == self.me {
            format!("{name} (you)")
        } else {
            name.to_string()
        }
    }
}

/// The UUIDs written in `text` (hyphenated, lower case as Ferry writes them).
pub fn ids_in(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .filter(|word| word.len() == 36 && word.parse::<Uuid>().is_ok())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_reasons_are_found_and_replaced_when_known() {
        let id = "01a23b48-1c2d-7e3f-8a9b-0c1d2e3f4a5b";
        let reason = format!("before deployment: approved by {id}");
        assert_eq!(ids_in(&reason), vec![id.to_string()]);
        assert!(ids_in("canary at 25% (1/4 pods ready)").is_empty());
        let names = Names {
            by_id: HashMap::from([(id.to_string(), "ana@example.com".to_string())]),
            me: id.to_string(),
        };
        assert_eq!(
            names.text(&reason),
            "before deployment: approved by ana@example.com"
        );
        assert_eq!(names.show(id), "ana@example.com (you)");
        assert_eq!(names.show("someone"), "someone");
    }
}
