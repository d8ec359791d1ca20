//! The process exit codes, one per kind of outcome, so CI can tell them apart (documented in
//! `ferry --help` and the README).

use std::process::ExitCode;
use std::time::Duration;

use ferry_api::status::DeploymentStatus;

/// The deployment succeeded (or the command did what it was asked).
pub(crate) const SUCCESS: u8 = 0;
/// A usage error or an invalid deploy file (and anything not listed below).
pub(crate) const USAGE: u8 = 1;
/// Another deployment of the application is in progress.
pub(crate) const BUSY: u8 = 3;
/// The deployment failed or was rolled back.
pub(crate) const FAILED: u8 = 4;
/// The deployment was aborted or superseded by a newer one.
pub(crate) const ABORTED: u8 = 5;
/// `--timeout` passed before the deployment ended (it goes on).
pub(crate) const TIMED_OUT: u8 = 6;
/// Not logged in, or the credentials are refused or lack the role.
pub(crate) const AUTH: u8 = 7;
/// The Ferry API cannot be reached.
pub(crate) const UNREACHABLE: u8 = 8;

/// The text shown under `ferry --help`.
pub(crate) const HELP: &str = "Exit codes: 0 succeeded, 1 usage error or invalid deploy file, 3 application busy, \
4 deployment failed or rolled back, 5 aborted or superseded, 6 --timeout passed, \
7 not logged in or not allowed, 8 Ferry unreachable.";

/// The exit code for a deployment that ended with `status`.
pub(crate) fn for_status(status: DeploymentStatus) -> ExitCode {
    ExitCode::from(match status {
        DeploymentStatus::Succeeded => SUCCESS,
        DeploymentStatus::Failed | DeploymentStatus::RolledBack => FAILED,
        DeploymentStatus::Aborted | DeploymentStatus::Superseded => ABORTED,
        DeploymentStatus::Waiting | DeploymentStatus::Running | DeploymentStatus::Paused => USAGE,
    })
}

/// Parses a duration as people write it: `90s`, `15m`, `2h`, `1h30m`, or bare seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "{text:?}: use a number with s, m, h or d (e.g. 30m)"
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(format!(
            "{text:?}: use a positive number with s, m, h or d (e.g. 30m)"
        ));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_people_write_them() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "m", "10x", "5m3", "0s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_ending_has_its_code() {
        for (status, code) in [
            (DeploymentStatus::Succeeded, SUCCESS),
            (DeploymentStatus::Failed, FAILED),
            (DeploymentStatus::RolledBack, FAILED),
            (DeploymentStatus::Aborted, ABORTED),
            (DeploymentStatus::Superseded, ABORTED),
        ] {
            assert_eq!(for_status(status), ExitCode::from(code), "{status}");
        }
    }
}
