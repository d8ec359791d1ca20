//! One way to turn an error into text: the error and its sources on one line
//! (`outer: inner: innermost`), each source once. Logs, dead-letter reasons and answers that
//! carry an error's cause all use it, so a cause is never lost and never printed twice.

/// `error` with its chain of sources, `outer: inner: innermost`. A source whose text the outer
/// error already shows (`#[error("x: {0}")]`) is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper {
        text: &'static str,
        source: Option<std::io::Error>,
    }

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.text)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.as_ref().map(|e| e as _)
        }
    }

    #[test]
    fn sources_are_appended_once() {
        let outer = Wrapper {
            text: "connecting to the hub",
            source: Some(std::io::Error::other("connection refused")),
        };
        assert_eq!(
            error_chain(&outer),
            "connecting to the hub: connection refused"
        );
        // An error that already shows its source's text does not show it twice.
        let embedded = Wrapper {
            text: "connecting: connection refused",
            source: Some(std::io::Error::other("connection refused")),
        };
        assert_eq!(error_chain(&embedded), "connecting: connection refused");
        let alone = std::io::Error::other("disk gone");
        assert_eq!(error_chain(&alone), "disk gone");
    }
}
