//! Integration tests of `ferry-deploy`: the shipped examples, every rule with its path, line and
//! message, property tests that parsing never panics, and the JSON Schema against the parser.

mod armory;
mod examples;
mod limits;
mod planning;
mod props;
mod rules;
mod schema;
mod sections;
mod support;
