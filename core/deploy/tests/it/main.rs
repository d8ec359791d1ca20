//! Integration tests of `ferry-deploy`: the shipped examples, every rule with its path, line and
//! message, and property tests that parsing never panics.

mod examples;
mod planning;
mod props;
mod rules;
mod sections;
mod support;
