#!/usr/bin/env python3
"""Keeps what dsfs's tests use of the published DSCC OpenAPI description.

The reference server's DSCC mode (tests/server/refserver.py --dialect dscc)
and the integration tests check every request and answer against HPE Data
Services Cloud Console API v1.2.0's OpenAPI 3.0.3 description, as published
by its authors (file storage-api.json of the public repository
HewlettPackard/HPEDSCC-PowerShell-Toolkit, MIT licence: see NOTICE beside
this file). This script turns that published file into the one the project
keeps, dscc-storage-api-v1.2.0.json beside it:

  * every path, method, parameter, request body, response, component schema
    and security scheme is kept as published, with every example, enum,
    default, format, pattern and bound the checks and the server's example
    bodies use;
  * the prose is dropped: description, summary and externalDocs, the tag
    list and x- extensions, which no check reads.

Usage: tests/server/spec/extract_dscc.py PUBLISHED.json > dscc-storage-api-v1.2.0.json
Python standard library only; the output keeps the published order, so it is the same on every run.
"""

import json
import sys

PROSE = {"description", "summary", "externalDocs"}
# Objects whose keys are names the spec chose (property, path, schema,
# media type or status names), never keywords: "description" there is a name.
NAME_MAPS = {"properties", "paths", "schemas", "parameters", "responses", "content",
             "securitySchemes", "headers", "requestBodies", "patternProperties",
             "variables", "links", "callbacks", "encoding", "scopes"}
# Values kept verbatim: data, not schema.
DATA = {"example", "examples", "default", "enum"}


def strip(node, names=False):
    if isinstance(node, list):
        return [strip(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if names:
            out[key] = strip(value)
        elif key in DATA:
            out[key] = value
        elif key in PROSE or key.startswith("x-"):
            continue
        else:
            out[key] = strip(value, names=key in NAME_MAPS)
    return out


def extract(spec):
    kept = strip({k: v for k, v in spec.items() if k != "tags"})
    kept["info"] = {"title": spec["info"]["title"], "version": spec["info"]["version"],
                    "x-dsfs-source": "HewlettPackard/HPEDSCC-PowerShell-Toolkit storage-api.json "
                                     "(MIT, see NOTICE); prose removed by extract_dscc.py"}
    return kept


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: extract_dscc.py PUBLISHED.json > dscc-storage-api-v1.2.0.json\n")
        return 2
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    json.dump(extract(spec), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
