//! Turning an Armory start request into Ferry's: the deploy file sent as JSON becomes YAML text
//! for the one deploy-file parser, `files` (manifest path → contents) becomes the manifest
//! files, `sourceControl` goes to the audit entry. A link request names a stored deployment or
//! a deploy file's URL instead.

use super::yaml::{Fields, Node, to_yaml};
use crate::error::ApiError;
use crate::v1::deployments::StartInput;
use ferry_deploy::Overrides;
use ferry_store::DeploymentId;
use ferry_store::deployments::ManifestFile;
use serde_json::{Map, Value};

/// The name diagnostics give the deploy file of a JSON request: their lines and columns are
/// those of the request rendered as YAML; the field path says where in the file.
pub(super) const REQUEST_FILE_NAME: &str = "request.yml";

/// Reads a JSON object body (`{}` when empty).
fn object(body: &[u8]) -> Result<Fields, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    match serde_json::from_slice::<Node>(body) {
        Ok(Node::Map(fields)) => Ok(fields),
        Ok(other) => Err(ApiError::BadRequest(format!(
            "the body must be a JSON object, not {}",
            other.kind()
        ))),
        Err(e) => Err(ApiError::BadRequest(format!("invalid JSON body: {e}"))),
    }
}

/// Removes `key` from `fields`, returning its value.
fn take(fields: &mut Fields, key: &str) -> Option<Node> {
    let at = fields.iter().position(|(k, _)| k == key)?;
    Some(fields.remove(at).1)
}

/// The audit details of an Armory request.
fn audit(source_control: Option<Node>) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("via".into(), "armory".into());
    if let Some(scm) = source_control.filter(|n| !n.is_empty()) {
        details.insert("sourceControl".into(), scm.to_json());
    }
    details
}

/// `account` is Armory's "override every target's account" of a link start; Ferry has no such
/// override, so a non-empty one is refused rather than ignored.
fn refuse_account(account: Option<Node>) -> Result<(), ApiError> {
    match account {
        None | Some(Node::Null) => Ok(()),
        Some(Node::String(s)) if s.is_empty() => Ok(()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "account {}: overriding every target's account is not supported; set \
             targets.<name>.account in the deploy file",
            other.to_json()
        ))),
    }
}

/// The manifest files of `files`: one file per content. A path with one content is sent under
/// that path when it names a YAML file; otherwise (a directory) its contents are numbered
/// files inside it, which the deploy file's entry for the directory takes in.
fn manifests(files: Option<Node>) -> Result<Vec<ManifestFile>, ApiError> {
    let fields = match files {
        None | Some(Node::Null) => return Ok(Vec::new()),
        Some(Node::Map(fields)) => fields,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "files must be an object of manifest path to a list of file contents, not {}",
                other.kind()
            )));
        }
    };
    let mut out = Vec::new();
    for (path, contents) in fields {
        let contents: Vec<String> = match contents {
            Node::String(one) => vec![one],
            Node::List(items) => items
                .into_iter()
                .map(|item| match item {
                    Node::String(text) => Ok(text),
                    other => Err(ApiError::BadRequest(format!(
                        "files[{path:?}] must list file contents as strings, not {}",
                        other.kind()
                    ))),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "files[{path:?}] must be a list of file contents, not {}",
                    other.kind()
                )));
            }
        };
        if contents.len() == 1 && ferry_deploy::manifests::is_yaml(&path) {
            out.extend(contents.into_iter().map(|content| ManifestFile {
                path: path.clone(),
                content,
            }));
        } else {
            let dir = path.trim_end_matches('/');
            out.extend(
                contents
                    .into_iter()
                    .enumerate()
                    .map(|(i, content)| ManifestFile {
                        path: format!("{dir}/armory-file-{i}.yaml"),
                        content,
                    }),
            );
        }
    }
    Ok(out)
}

/// A `pipeline.v2+json` body (the CLI's `deploy start -f`): the deploy file's own keys, plus
/// `files`, `context` (file and `--add-context` merged), `targetFilters` (`-t`) and
/// `sourceControl`.
pub(super) fn deploy_request(body: &[u8]) -> Result<StartInput, ApiError> {
    let mut fields = object(body)?;
    let manifests = manifests(take(&mut fields, "files"))?;
    let source_control = take(&mut fields, "sourceControl");
    refuse_account(take(&mut fields, "account"))?;
    // The CLI sends `targetFilters: null` without `-t`, and `context: {}` without context;
    // both mean "none" (an absent key), as Armory reads them.
    for key in ["targetFilters", "context"] {
        if fields.iter().any(|(k, v)| k == key && v.is_empty()) {
            take(&mut fields, key);
        }
    }
    if fields.is_empty() {
        return Err(ApiError::BadRequest(
            "the body holds no deploy file (expected its keys: application, targets, \
             manifests, ...)"
                .into(),
        ));
    }
    Ok(StartInput {
        file_name: REQUEST_FILE_NAME.into(),
        deploy_file: to_yaml(&fields),
        manifests,
        overrides: Overrides::default(),
        audit: audit(source_control),
    })
}

/// What a link start names.
#[derive(Debug, PartialEq)]
pub(super) enum Location {
    /// `armory::<api>/pipelines/<id>/config`: the configuration of a stored deployment.
    Pipeline(DeploymentId),
    /// A deploy file to fetch.
    Url(String),
}

/// A `pipeline.v2.link+json` start.
#[derive(Debug)]
pub(super) struct Link {
    pub location: Location,
    /// `targetFilters`' names (empty: as the configuration says).
    pub targets: Vec<String>,
    /// Context added to the fetched file's (a redeploy reuses the stored context).
    pub context: Vec<(String, String)>,
    /// Audit details.
    pub audit: Map<String, Value>,
}

/// Reads `X-Armory-Config-Location`.
pub(super) fn location(header: Option<&str>) -> Result<Location, ApiError> {
    let Some(value) = header.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err(ApiError::BadRequest(format!(
            "a {} start needs the X-Armory-Config-Location header",
            super::MEDIA_TYPE_PIPELINE_V2_LINK
        )));
    };
    if let Some(rest) = value.strip_prefix("armory::") {
        let id = rest
            .trim_end_matches('/')
            .strip_suffix("/config")
            .and_then(|r| r.rsplit_once("/pipelines/"))
            .map(|(_, id)| id)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "X-Armory-Config-Location {value:?}: expected armory::<api>/pipelines/<id>/config"
                ))
            })?;
        let id = id.parse::<DeploymentId>().map_err(|e| {
            ApiError::BadRequest(format!(
                "X-Armory-Config-Location {value:?}: {id:?} is not a deployment id: {e}"
            ))
        })?;
        return Ok(Location::Pipeline(id));
    }
    if ferry_deploy::manifests::is_url(value) {
        return Ok(Location::Url(value.to_string()));
    }
    Err(ApiError::BadRequest(format!(
        "X-Armory-Config-Location {value:?}: expected armory::<api>/pipelines/<id>/config or an \
         http(s) URL of a deploy file"
    )))
}

/// A link start's body: `account` (refused when set), `targetFilters`, `context`,
/// `sourceControl`.
pub(super) fn link_request(body: &[u8], header: Option<&str>) -> Result<Link, ApiError> {
    let location = location(header)?;
    let mut fields = object(body)?;
    refuse_account(take(&mut fields, "account"))?;
    let source_control = take(&mut fields, "sourceControl");
    let targets = match take(&mut fields, "targetFilters") {
        None | Some(Node::Null) => Vec::new(),
        Some(Node::List(items)) => items
            .iter()
            .map(|item| match item {
                Node::Map(filter) => match filter.as_slice() {
                    [(key, Node::String(name))] if key == "includeTarget" => Ok(name.clone()),
                    _ => Err(()),
                },
                _ => Err(()),
            })
            .collect::<Result<_, _>>()
            .map_err(|()| {
                ApiError::BadRequest(
                    "targetFilters must be a list of {\"includeTarget\": <target name>}".into(),
                )
            })?,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "targetFilters must be a list, not {}",
                other.kind()
            )));
        }
    };
    let context = match take(&mut fields, "context") {
        None | Some(Node::Null) => Vec::new(),
        Some(Node::Map(entries)) => entries
            .into_iter()
            .map(|(k, v)| match v {
                Node::String(s) => Ok((k, s)),
                Node::Number(n) => Ok((k, n.to_string())),
                Node::Bool(b) => Ok((k, b.to_string())),
                other => Err(ApiError::BadRequest(format!(
                    "context.{k} must be a string, not {}",
                    other.kind()
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "context must be an object, not {}",
                other.kind()
            )));
        }
    };
    if let Some((key, _)) = fields.first() {
        return Err(ApiError::BadRequest(format!(
            "unknown key {key:?} in a link start (expected account, targetFilters, context, \
             sourceControl)"
        )));
    }
    Ok(Link {
        location,
        targets,
        context,
        audit: audit(source_control),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_become_manifests_and_the_rest_the_deploy_file() {
        // Raw text: the order of keys as sent must survive (json! would sort them).
        let body = r#"{
            "version": "v1",
            "application": "potato-facts",
            "targets": {"dev": {"account": "dev-cluster", "namespace": "potato"}},
            "manifests": [{"path": "manifests/app.yaml"}, {"path": "/abs/dir"}],
            "files": {
                "manifests/app.yaml": ["kind: ConfigMap\n"],
                "/abs/dir": ["a: 1\n", "b: 2\n"]
            },
            "context": {},
            "targetFilters": null,
            "sourceControl": {"type": "github", "sha": "abc123"}
        }"#;
        let input = deploy_request(body.as_bytes()).unwrap();
        let paths: Vec<&str> = input.manifests.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "manifests/app.yaml",
                "/abs/dir/armory-file-0.yaml",
                "/abs/dir/armory-file-1.yaml"
            ]
        );
        assert!(!input.deploy_file.contains("files"));
        assert!(!input.deploy_file.contains("targetFilters"));
        assert!(!input.deploy_file.contains("context"));
        assert!(
            input
                .deploy_file
                .starts_with("\"version\": \"v1\"\n\"application\"")
        );
        assert_eq!(input.audit["sourceControl"]["sha"], "abc123");
        assert_eq!(input.audit["via"], "armory");
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        for (body, says) in [
            (json!([1]), "JSON object"),
            (
                json!({"files": {"a.yaml": [1]}, "application": "x"}),
                "as strings",
            ),
            (json!({"files": []}), "files must be an object"),
            (
                json!({"account": "elsewhere", "application": "x"}),
                "not supported",
            ),
            (
                json!({"files": {}, "sourceControl": null}),
                "no deploy file",
            ),
        ] {
            let error = deploy_request(&serde_json::to_vec(&body).unwrap()).unwrap_err();
            assert!(error.to_string().contains(says), "{body}: {error}");
        }
    }

    #[test]
    fn link_locations_name_a_pipeline_or_a_url() {
        let id = DeploymentId::new();
        assert_eq!(
            location(Some(&format!(
                "armory::https://api.example/pipelines/{id}/config"
            )))
            .unwrap(),
            Location::Pipeline(id)
        );
        assert_eq!(
            location(Some("https://files.example/deploy.yml")).unwrap(),
            Location::Url("https://files.example/deploy.yml".into())
        );
        for bad in [
            None,
            Some(""),
            Some("armory::x/pipelines/nope/config"),
            Some("/etc/passwd"),
        ] {
            assert!(location(bad).is_err(), "{bad:?}");
        }
        let link = link_request(
            br#"{"account": "", "targetFilters": [{"includeTarget": "prod"}]}"#,
            Some(&format!(
                "armory::http://localhost:9099/pipelines/{id}/config"
            )),
        )
        .unwrap();
        assert_eq!(link.targets, ["prod"]);
        let refused = link_request(
            br#"{"account": "other-cluster"}"#,
            Some("https://files.example/deploy.yml"),
        );
        assert!(refused.unwrap_err().to_string().contains("account"));
        let unknown = link_request(br#"{"bogus": 1}"#, Some("https://files.example/d.yml"));
        assert!(unknown.unwrap_err().to_string().contains("bogus"));
    }
}
