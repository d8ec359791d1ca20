//! Application names: written as people write them ("Potato Facts"), and turned into a
//! deterministic, collision-safe DNS label wherever they name or label a Kubernetes object.

/// Longest application name accepted, in bytes.
pub const MAX_APPLICATION_NAME_LEN: usize = 253;

/// Longest slug: a DNS label.
const MAX_SLUG_LEN: usize = 63;

/// Hex digits of the hash suffix a changed name gets.
const HASH_DIGITS: usize = 8;

/// Why an application name is refused, or `None` when it is fine: not empty or blank, at most
/// [`MAX_APPLICATION_NAME_LEN`] bytes, no control characters.
pub fn application_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("the application name is empty".to_string())
    } else if name.len() > MAX_APPLICATION_NAME_LEN {
        Some(format!(
            "the application name is {} bytes long; at most {MAX_APPLICATION_NAME_LEN} are allowed",
            name.len()
        ))
    } else if name.chars().any(char::is_control) {
        Some("the application name holds a control character (a tab, a line break…)".to_string())
    } else {
        None
    }
}

/// The DNS label standing for application `name` in object names and labels. A name that is
/// already a DNS label is its own slug; any other is lower-cased, every run of characters
/// outside `[a-z0-9]` becomes one `-`, and a hash of the name as written is appended
/// (`potato-facts-1a2b3c4d` for "Potato Facts"), so two names that differ only in case or
/// punctuation never share a slug. The slug is at most 63 characters.
pub fn application_slug(name: &str) -> String {
    if crate::is_dns_label(name) {
        return name.to_string();
    }
    let mut base = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            base.push(c);
        } else if !base.ends_with('-') {
            base.push('-');
        }
    }
    let room = MAX_SLUG_LEN - HASH_DIGITS - 1;
    let base: String = base.trim_matches('-').chars().take(room).collect();
    let base = base.trim_end_matches('-');
    let hash = format!("{:016x}", fnv1a(name.as_bytes()));
    let suffix = &hash[..HASH_DIGITS];
    if base.is_empty() {
        format!("app-{suffix}")
    } else {
        format!("{base}-{suffix}")
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (the slug must never change).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_people_write_them_are_accepted() {
        for name in ["Potato Facts", "potatolessFacts", "my.app_v2", "Café ☕"] {
            assert_eq!(application_name_problem(name), None, "{name}");
        }
        assert!(application_name_problem("").is_some());
        assert!(application_name_problem("  ").is_some());
        assert!(application_name_problem("a\tb").is_some());
        assert!(application_name_problem(&"a".repeat(254)).is_some());
        assert_eq!(application_name_problem(&"a".repeat(253)), None);
    }

    #[test]
    fn slugs_are_dns_labels_deterministic_and_collision_safe() {
        assert_eq!(application_slug("hello-ferry"), "hello-ferry");
        let facts = application_slug("Potato Facts");
        assert!(facts.starts_with("potato-facts-"), "{facts}");
        assert_eq!(facts, application_slug("Potato Facts"), "deterministic");
        // Pinned: a slug labels running objects, so it must never change between versions.
        assert_eq!(facts, "potato-facts-807850b1");
        let others = [
            "potato facts",
            "Potato  Facts",
            "Potato_Facts",
            "potato-facts",
            "POTATO FACTS",
        ];
        for other in others {
            assert_ne!(application_slug(other), facts, "{other}");
        }
        for name in [
            "Potato Facts",
            "potatolessFacts",
            "-x-",
            "☕",
            "my.app_v2",
            &"Long Name ".repeat(30),
        ] {
            let slug = application_slug(name);
            assert!(crate::is_dns_label(&slug), "{name:?} -> {slug:?}");
        }
        let long = "a".repeat(100);
        assert_ne!(
            application_slug(&long),
            application_slug(&"a".repeat(99)),
            "truncated names keep their hashes apart"
        );
    }
}
