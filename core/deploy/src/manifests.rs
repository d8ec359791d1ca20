//! Kubernetes manifests: the caller's sources (files, and fetched URLs), matching manifest entries to them, parsing them
//! into objects (with errors naming the manifest file, line and column), the refused kinds,
//! cluster-scoped kinds and apply order.

use serde_json::Value;

use crate::diagnostics::Diagnostic;
use crate::file::normalize_path;
use crate::node::{self, Node, NodeKind};

/// A manifest file the caller loaded, by its path relative to the deploy file's folder, or
/// the contents of a manifest URL the caller fetched, by that URL exactly as the file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Relative path with `/` separators (normalised again here), or an `http(s)` URL (kept
    /// verbatim).
    pub path: String,
    /// The file's text.
    pub content: String,
}

/// Kinds that have no namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "CSIDriver",
    "CSINode",
    "Node",
    "VolumeSnapshotClass",
    "CertificateSigningRequest",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "ClusterIssuer",
];

/// Whether objects of this kind live in a namespace.
pub fn is_namespaced(kind: &str) -> bool {
    !CLUSTER_SCOPED.contains(&kind)
}

/// Apply order rank: Namespaces, then CRDs, then everything else.
pub fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        _ => 2,
    }
}

/// Whether a path names a YAML file.
pub fn is_yaml(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

/// Whether a manifest path is an `http(s)` URL (fetched by the server) rather than a file.
pub fn is_url(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Whether a source belongs to a manifest entry's path: the file itself, or a YAML file under
/// the directory (an empty path is the deploy file's folder).
pub fn entry_matches(entry: &str, source: &str) -> bool {
    if entry == source {
        return true;
    }
    let under = entry.is_empty() || source.starts_with(&format!("{entry}/"));
    under && is_yaml(source)
}

/// One Kubernetes object read from a source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Object {
    /// Which source or inline entry it came from.
    pub source: String,
    /// Index of the document in the source, to deduplicate objects reached twice.
    pub document: usize,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub object: Value,
}

/// Parses a YAML stream of Kubernetes objects. Errors are reported against `file` with
/// positions shifted by `line_offset` (for inline manifests inside the deploy file).
pub(crate) fn parse_objects(
    file: &str,
    label: &str,
    content: &str,
    line_offset: usize,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Object> {
    let mut push = |line: usize, column: usize, path: String, message: String| {
        diags.push(Diagnostic {
            file: file.to_string(),
            line: line + line_offset,
            column,
            path,
            message,
            suggestion: None,
        });
    };
    let docs = match node::load(content) {
        Ok(docs) => docs,
        Err(e) => {
            push(e.line, e.column, "syntax".to_string(), e.message);
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let path = format!("documents[{i}]");
        if !matches!(doc.kind, NodeKind::Map(_)) {
            push(
                doc.line,
                doc.column,
                path,
                format!("expected a Kubernetes object, found {}", doc.type_name()),
            );
            continue;
        }
        let field = |n: Option<&Node>| n.and_then(Node::scalar).map(str::to_string);
        let kind = field(doc.get("kind"));
        let api_version = field(doc.get("apiVersion"));
        let metadata = doc.get("metadata");
        let name = field(metadata.and_then(|m| m.get("name")))
            .or_else(|| field(metadata.and_then(|m| m.get("generateName"))));
        let namespace = field(metadata.and_then(|m| m.get("namespace")));
        let mut ok = true;
        for (value, key) in [(&kind, "kind"), (&api_version, "apiVersion")] {
            if value.is_none() {
                push(
                    doc.line,
                    doc.column,
                    format!("{path}.{key}"),
                    format!("a Kubernetes object needs {key}"),
                );
                ok = false;
            }
        }
        if name.is_none() {
            let at = metadata.unwrap_or(doc);
            push(
                at.line,
                at.column,
                format!("{path}.metadata.name"),
                "a Kubernetes object needs metadata.name".to_string(),
            );
            ok = false;
        }
        if let Some(k) = &kind
            && matches!(k.as_str(), "Pod" | "ReplicaSet")
        {
            let at = doc.get("kind").unwrap_or(doc);
            push(
                at.line,
                at.column,
                format!("{path}.kind"),
                format!("bare {k} manifests are refused: deploy it through a Deployment"),
            );
            ok = false;
        }
        if let (true, Some(kind), Some(name)) = (ok, kind, name) {
            out.push(Object {
                source: label.to_string(),
                document: i,
                kind,
                name,
                namespace,
                object: doc.to_json(),
            });
        }
    }
    out
}

/// Normalised copies of the caller's file sources; fetched URLs are left out (they match only
/// their URL entry, never a directory entry).
pub(crate) fn normalize_sources(sources: &[Source]) -> Vec<Source> {
    sources
        .iter()
        .filter(|s| !is_url(&s.path))
        .map(|s| Source {
            path: normalize_path(&s.path),
            content: s.content.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_files_and_directories() {
        assert!(entry_matches("manifests/app.yaml", "manifests/app.yaml"));
        assert!(entry_matches("manifests", "manifests/istio/routing.yaml"));
        assert!(!entry_matches("manifests", "manifests/README.md"));
        assert!(!entry_matches("manifests", "manifests2/app.yaml"));
        assert!(entry_matches("", "app.yml"));
    }

    #[test]
    fn parses_objects_and_refuses_bare_pods() {
        let mut diags = Vec::new();
        let objs = parse_objects(
            "m.yaml",
            "m.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
            0,
            &mut diags,
        );
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].kind, "ConfigMap");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].path, "documents[1].kind");
        assert_eq!(diags[0].line, 7);
        assert!(diags[0].message.contains("bare Pod"));
    }

    #[test]
    fn syntax_errors_name_the_manifest() {
        let mut diags = Vec::new();
        parse_objects("m.yaml", "m.yaml", "a:\n  b: 1\n   c: 2\n", 0, &mut diags);
        assert_eq!(diags[0].file, "m.yaml");
        assert_eq!(diags[0].path, "syntax");
        assert_eq!(diags[0].line, 3);
    }
}
