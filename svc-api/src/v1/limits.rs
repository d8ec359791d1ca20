//! Limits on the free text a request carries (an action's reason or comment, a webhook
//! callback's message): each travels in a scheduler message, the deployment's history and the
//! audit log, so an oversized one is refused with 422 before anything is written. The deploy
//! file's own limits are `ferry_deploy::limits`.

use crate::error::ApiError;

/// Bytes of a reason or comment (approve, reject, abort, rollback, skip-pause, roll-forward).
pub const MAX_REASON_BYTES: usize = 4 * 1024;

/// Bytes of a webhook callback's `mdMessage` (Markdown shown with the step).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Refuses a reason or comment over [`MAX_REASON_BYTES`] or with control characters other than
/// newlines and tabs.
pub fn reason(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    text(field, value, MAX_REASON_BYTES)
}

/// Refuses a callback message over [`MAX_MESSAGE_BYTES`] or with control characters other
/// than newlines and tabs.
pub fn message(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    text(field, value, MAX_MESSAGE_BYTES)
}

fn text(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    let Some(value) = value else { return Ok(()) };
    if value.len() > max {
        return Err(ApiError::Invalid(format!(
            "{field} is {} bytes long: at most {} KiB",
            value.len(),
            max / 1024
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::Invalid(format!(
            "{field} holds a control character (only newlines and tabs are allowed)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_over_its_limit_or_with_control_characters_is_refused() {
        assert!(reason("reason", None).is_ok());
        assert!(reason("reason", Some(&"x".repeat(MAX_REASON_BYTES))).is_ok());
        assert!(reason("reason", Some("two\nlines\tand a tab")).is_ok());
        let err = reason("reason", Some(&"x".repeat(MAX_REASON_BYTES + 1))).unwrap_err();
        assert_eq!(err.to_string(), "reason is 4097 bytes long: at most 4 KiB");
        assert_eq!(err.classify().0, 422);
        let err = reason("comment", Some("bell\u{7}")).unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
        assert!(message("mdMessage", Some(&"x".repeat(MAX_MESSAGE_BYTES))).is_ok());
        assert!(message("mdMessage", Some(&"x".repeat(MAX_MESSAGE_BYTES + 1))).is_err());
    }
}
