#!/usr/bin/env python3
"""Brings the `settings` of helm/ferry and helm/ferry-agent's values.schema.json in line with the
FERRY_* variables the binaries read (each clap `env = "FERRY_…"` of the crate's src/, plus the
core/runtime and core/backends argument groups it flattens), with the doc comment of each as its description.

Variables the charts set themselves (MANAGED below, mirroring the templates) are left out; a
variable no binary reads any more is removed. tests/charts checks the result against the
rendered charts, so run this, then `cargo nextest run -p ferry-chart-tests`.

    python3 tests/charts/sync_settings.py          # rewrite the schemas
    python3 tests/charts/sync_settings.py --check  # exit 1 when they are out of date
"""

import glob
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARG = re.compile(r'((?:[ \t]*///[^\n]*\n)*)[ \t]*#\[arg\(([^]]*?)env\s*=\s*"(FERRY_[A-Z0-9_]+)"', re.S)

COMMON = {"FERRY_ADMIN_ADDR", "FERRY_LOG_FORMAT", "FERRY_LOG", "FERRY_SHUTDOWN_GRACE_SECS",
          "FERRY_BUS_PREFIX", "FERRY_DATABASE_URL", "FERRY_AMQP_URL", "FERRY_REDIS_URL",
          "FERRY_MASTER_KEY", "FERRY_MASTER_KEY_FILE"}
# (schema file, JSON path to the settings object, crate folder, variables the chart sets)
TARGETS = [
    ("helm/ferry", ["api"], "svc-api", COMMON | {"FERRY_HTTP_ADDR", "FERRY_ISSUER_URL"}),
    ("helm/ferry", ["scheduler"], "svc-scheduler", COMMON | {"FERRY_API_URL"}),
    ("helm/ferry", ["canary"], "svc-canary", COMMON),
    ("helm/ferry", ["webhook"], "svc-webhook", COMMON),
    ("helm/ferry", ["hub"], "svc-agent-hub", COMMON | {
        "FERRY_HUB_ADDR", "FERRY_HUB_ISSUER", "FERRY_HUB_REPLICA_ID", "FERRY_HUB_TLS_CERT",
        "FERRY_HUB_TLS_KEY", "FERRY_HUB_INSECURE_PLAINTEXT"}),
    ("helm/ferry-agent", [], "agent", {
        "FERRY_ADMIN_ADDR", "FERRY_LOG_FORMAT", "FERRY_LOG", "FERRY_SHUTDOWN_GRACE_SECS",
        "FERRY_AGENT_ID", "FERRY_AGENT_HUB_URL", "FERRY_AGENT_HUB_TLS_DOMAIN",
        "FERRY_AGENT_HUB_CA_FILE", "FERRY_AGENT_ISSUER_URL", "FERRY_AGENT_CLIENT_ID",
        "FERRY_AGENT_CLIENT_SECRET", "FERRY_AGENT_CLIENT_SECRET_FILE", "FERRY_AGENT_TOKEN_FILE",
        "FERRY_AGENT_AUDIENCE"}),
]


def args_in(text):
    out = {}
    for m in ARG.finditer(text):
        doc = " ".join(l.strip()[3:].strip() for l in m.group(1).splitlines() if l.strip())
        out[m.group(3)] = doc
    return out


def read_by(crate):
    files = [f for f in glob.glob(f"{ROOT}/{crate}/src/**/*.rs", recursive=True)
             if f"{os.sep}src{os.sep}bin{os.sep}" not in f]
    text = "".join(open(f).read() for f in sorted(files))
    found = args_in(text)
    runtime = "".join(open(f"{ROOT}/core/{c}/src/settings.rs").read() for c in ("runtime", "backends"))
    for m in re.finditer(r"pub struct (\w+)\s*\{(.*?)\n\}", runtime, re.S):
        group, body = m.group(1), m.group(2)
        if re.search(r":\s*(ferry_(?:runtime|backends)::)?%s\s*[,\n]" % group, text):
            found.update(args_in(body))
    return found


def main():
    check = "--check" in sys.argv
    stale = []
    schemas = {}
    for chart, path, crate, managed in TARGETS:
        file = os.path.join(ROOT, chart, "values.schema.json")
        schema = schemas.setdefault(file, json.load(open(file)))
        node = schema
        for key in path:
            node = node["properties"][key]
        props = node["properties"]["settings"]["properties"]
        read = read_by(crate)
        wanted = {k: v for k, v in read.items() if k not in managed}
        for name in sorted(set(props) - set(wanted)):
            stale.append(f"{crate}: {name} is no longer read")
            del props[name]
        for name in sorted(set(wanted) - set(props)):
            stale.append(f"{crate}: {name} is read but not offered")
            props[name] = {"description": wanted[name], "oneOf": [
                {"type": ["string", "number", "boolean"]}, {"$ref": "#/definitions/secretKeyRef"}]}
        node["properties"]["settings"]["properties"] = dict(sorted(props.items()))
    if check:
        print("\n".join(stale) or "settings are in line with the binaries")
        sys.exit(1 if stale else 0)
    for file, schema in schemas.items():
        with open(file, "w") as f:
            json.dump(schema, f, indent=2)
            f.write("\n")
    print("\n".join(stale) or "nothing to change")


if __name__ == "__main__":
    main()
