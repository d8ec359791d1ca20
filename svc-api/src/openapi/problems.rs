//! The error responses of the document: every `/v1` operation's 4xx and 5xx answers are
//! problem documents (RFC 9457, [`crate::error::Problem`]), so the `Problem` schema is declared
//! once and given to each error response here, and the answers every authenticated operation
//! can give (401, 403, 429, 500, 503; 400 and 413 where it takes input) are added where the
//! handler's annotation does not already name them. Armory's routes keep their own envelope.

use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder, Schema};

/// The media type of every error body.
const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// Adds the `Problem` schema and the error responses (see the module header).
pub(super) struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert("Problem".into(), RefOr::T(problem_schema()));
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/v1/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_errors(operation);
            }
        }
    }
}

/// Whether the operation overrides the document's bearer requirement with "none".
fn is_public(operation: &Operation) -> bool {
    operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().all(|requirement| {
            serde_json::to_value(requirement).is_ok_and(|v| v == serde_json::json!({}))
        })
    })
}

/// The generic error answers of `operation`, then a problem body on each error response.
fn add_errors(operation: &mut Operation) {
    let takes_input = operation.request_body.is_some()
        || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut generic: Vec<(&str, &str)> = Vec::new();
    if !is_public(operation) {
        generic.extend([
            (
                "401",
                "No usable bearer token (missing, malformed, expired, revoked, or for another \
                 audience or issuer)",
            ),
            ("403", "The caller lacks a role this operation needs"),
            (
                "429",
                "The tenant's request budget is spent; see Retry-After",
            ),
            (
                "503",
                "A dependency of the request (the sign-in issuer) does not answer now",
            ),
        ]);
    }
    if takes_input {
        generic.push((
            "400",
            "A path or query parameter, or the body, is malformed (the detail names it)",
        ));
    }
    if operation.request_body.is_some() {
        generic.push(("413", "The request body is larger than the server accepts"));
    }
    generic.push((
        "500",
        "An internal error; the request id finds it in the server's logs",
    ));
    for (status, description) in generic {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
    }
    for (status, response) in &mut operation.responses.responses {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response)
            && response.content.is_empty()
        {
            response.content.insert(
                PROBLEM_MEDIA_TYPE.into(),
                Content::new(Some(Ref::from_schema_name("Problem"))),
            );
        }
    }
}

/// The schema of [`crate::error::Problem`].
fn problem_schema() -> Schema {
    let text = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    };
    ObjectBuilder::new()
        .description(Some(
            "A problem document (RFC 9457) with Ferry's stable `code`.",
        ))
        .property(
            "type",
            text("A URI naming the problem type: `urn:ferry:problem:<code>`"),
        )
        .required("type")
        .property("title", text("A short, fixed summary of the problem type"))
        .required("title")
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("The HTTP status")),
        )
        .required("status")
        .property(
            "detail",
            text("What happened in this case; never internals"),
        )
        .required("detail")
        .property(
            "code",
            text("Stable, machine-readable code clients switch on"),
        )
        .required("code")
        .property(
            "request_id",
            text("The request id, to find the server's log lines"),
        )
        .property(
            "errors",
            ArrayBuilder::new()
                .items(ObjectBuilder::new())
                .description(Some(
                    "Every problem of an invalid deploy file, with its position",
                )),
        )
        .property(
            "running",
            text("The deployment holding a busy application's slot"),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .into()
}
