#!/usr/bin/env python3
"""Renders a Helm chart and validates what comes out, for tests/charts.

Reads one JSON request on stdin and writes one JSON answer on stdout:

  request:  {"chart": path, "release": name, "namespace": ns, "values": {...},
             "kube_versions": ["1.29", ...]}
  answer:   {"ok": true, "objects": [...], "notes": "...", "invalid": [...], "lint": [...]}
            {"ok": false, "stage": "schema" | "render", "error": "..."}

Rendering is Helm's own engine (Helm v4's Go SDK, from the PyPI package helm-python-sdk): values
are merged with the chart's defaults and checked against values.schema.json as `helm install`
does, then every template is rendered. Every object is then validated against the Kubernetes
OpenAPI schemas of each requested version in strict mode (unknown fields are errors), with the
PyPI package kubernetes-validate; kinds outside Kubernetes itself (ServiceMonitor) against the
schemas in tests/charts/schemas/. YAML with duplicate keys is refused, as the API server would.

`render.py yaml FILE` prints a YAML file as JSON (for the workflow checks).
"""

import json
import os
import sys

try:
    import helm_python as helm
    import jsonschema
    import kubernetes_validate
    import yaml
except ImportError as e:  # pragma: no cover - reported to the Rust test as a tool error
    print(json.dumps({"ok": False, "stage": "tool",
                      "error": f"{e}: run scripts/deps.sh (it installs helm-python-sdk and kubernetes-validate)"}))
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
EXTRA_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
}


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys in a mapping."""


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def validate(obj, versions):
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    name = f"{kind}/{obj.get('metadata', {}).get('name')}"
    extra = EXTRA_SCHEMAS.get((api_version, kind))
    if extra:
        with open(os.path.join(HERE, "schemas", extra)) as f:
            schema = json.load(f)
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=str)
        return [f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    problems = []
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(map(str, e.path))
            problems.append(f"{name} (Kubernetes {version}): {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name}: no schema for {api_version} {kind} in Kubernetes {version}")
    return problems


def render(request):
    with helm.Chart.load(request["chart"]) as chart:
        values = request.get("values") or {}
        try:
            chart.validate_schema(chart.merge_values(values))
        except helm.HelmError as e:
            return {"ok": False, "stage": "schema", "error": str(e)}
        try:
            manifests = chart.render(values, name=request["release"],
                                     namespace=request["namespace"], is_install=True)
        except helm.HelmError as e:
            return {"ok": False, "stage": "render", "error": str(e)}
    objects, notes, invalid = [], "", []
    for path in sorted(manifests):
        text = manifests[path]
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        try:
            docs = list(yaml.load_all(text, Loader=StrictLoader))
        except yaml.YAMLError as e:
            invalid.append(f"{path}: not YAML: {e}")
            continue
        for doc in docs:
            if doc is None:
                continue
            doc.setdefault("metadata", {}).setdefault("namespace", None)
            if doc["metadata"]["namespace"] is None:
                del doc["metadata"]["namespace"]
            doc["_template"] = path
            clean = {k: v for k, v in doc.items() if k != "_template"}
            invalid.extend(validate(clean, request.get("kube_versions", ["1.29"])))
            objects.append(doc)
    report = helm.lint(request["chart"], request.get("values") or {}, strict=True,
                       namespace=request["namespace"])
    lint = [m["error"] for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    lint += report.get("errors", [])
    return {"ok": True, "objects": objects, "notes": notes, "invalid": invalid, "lint": lint}


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "yaml":
        with open(sys.argv[2]) as f:
            print(json.dumps(yaml.load(f, Loader=StrictLoader)))
        return
    print(json.dumps(render(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
