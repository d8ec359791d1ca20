//! Write-only secrets.
