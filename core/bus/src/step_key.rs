//! [`StepKey`]: which waiting step of a target a message, approval or webhook run belongs to,
//! written by the scheduler and read by the API and the other services as one type, so the text
//! form (`step:<i>`, `before:<i>`, `after:<i>`, and blue/green's `redirect:<i>` and
//! `shutdown:<i>`) is spelt and parsed in one place.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A step of a target: a strategy step or a `beforeDeployment`/`afterDeployment` constraint,
/// each by its index in the deploy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepKey {
    /// The strategy's step at this index (`step:<i>`).
    Step(u32),
    /// The `beforeDeployment` constraint at this index (`before:<i>`).
    Before(u32),
    /// The `afterDeployment` constraint at this index (`after:<i>`).
    After(u32),
    /// Blue/green: the `redirectTrafficAfter` condition at this index (`redirect:<i>`).
    Redirect(u32),
    /// Blue/green: the `shutDownOldVersionAfter` condition at this index (`shutdown:<i>`).
    ShutDown(u32),
}

impl StepKey {
    /// The strategy step's index, `None` for a constraint.
    pub fn step_index(self) -> Option<u32> {
        match self {
            StepKey::Step(i) => Some(i),
            StepKey::Before(_)
            | StepKey::After(_)
            | StepKey::Redirect(_)
            | StepKey::ShutDown(_) => None,
        }
    }

    /// A constraint's key: `before` picks `beforeDeployment`, else `afterDeployment`.
    pub fn gate(before: bool, index: u32) -> StepKey {
        if before {
            StepKey::Before(index)
        } else {
            StepKey::After(index)
        }
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepKey::Step(i) => write!(f, "step:{i}"),
            StepKey::Before(i) => write!(f, "before:{i}"),
            StepKey::After(i) => write!(f, "after:{i}"),
            StepKey::Redirect(i) => write!(f, "redirect:{i}"),
            StepKey::ShutDown(i) => write!(f, "shutdown:{i}"),
        }
    }
}

/// Why a text is not a [`StepKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "step key {text:?} is not step:<index>, before:<index>, after:<index>, redirect:<index> or \
     shutdown:<index>"
)]
pub struct StepKeyError {
    /// The text (cut to 64 characters).
    pub text: String,
}

impl FromStr for StepKey {
    type Err = StepKeyError;

    fn from_str(text: &str) -> Result<StepKey, StepKeyError> {
        let error = || StepKeyError {
            text: text.chars().take(64).collect(),
        };
        let (kind, index) = text.split_once(':').ok_or_else(error)?;
        // Digits only: no sign, no spaces, no leading `+`.
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        let index: u32 = index.parse().map_err(|_| error())?;
        match kind {
            "step" => Ok(StepKey::Step(index)),
            "before" => Ok(StepKey::Before(index)),
            "after" => Ok(StepKey::After(index)),
            "redirect" => Ok(StepKey::Redirect(index)),
            "shutdown" => Ok(StepKey::ShutDown(index)),
            _ => Err(error()),
        }
    }
}

impl Serialize for StepKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StepKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text_and_json() {
        for key in [
            StepKey::Step(0),
            StepKey::Step(12),
            StepKey::Before(0),
            StepKey::After(3),
            StepKey::Redirect(1),
            StepKey::ShutDown(0),
            StepKey::Step(u32::MAX),
        ] {
            assert_eq!(key.to_string().parse::<StepKey>().unwrap(), key);
            let json = serde_json::to_value(key).unwrap();
            assert_eq!(json, key.to_string());
            assert_eq!(serde_json::from_value::<StepKey>(json).unwrap(), key);
        }
        assert_eq!("step:3".parse::<StepKey>().unwrap().step_index(), Some(3));
        assert_eq!("before:0".parse::<StepKey>().unwrap().step_index(), None);
        assert_eq!(StepKey::gate(false, 2).to_string(), "after:2");
    }

    #[test]
    fn anything_else_is_an_error_naming_the_text() {
        for bad in [
            "",
            "step",
            "step:",
            "step:x",
            "step:-1",
            "step:+1",
            "step: 1",
            "gate:0",
            "step:4294967296",
            "before:0:1",
        ] {
            let err = bad.parse::<StepKey>().expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(serde_json::from_value::<StepKey>(serde_json::json!("pause:1")).is_err());
    }
}
