"""A small OpenAPI 3.0 schema checker for the DSCC spec (and any other).

The reference server's --dialect dscc validates request bodies with it, and
dsfs's integration tests validate every body dsfs sends (and every answer the
server gives) against the real specification with it. Python standard library
only. It covers the subset of JSON Schema that OpenAPI 3.0.3 and the DSCC
spec use: $ref, type, nullable, required, properties, additionalProperties,
items, enum, allOf, oneOf, anyOf, format (loosely: date-time, date, uuid,
int32, int64, ipv4), minimum, maximum, minLength, maxLength, pattern,
minItems, maxItems.

Public API (import with `sys.path.insert(0, "<repo>/tests/server")`):

    load_spec(path=None) -> dict
        The parsed spec (cached). path defaults to $DSFS_DSCC_SPEC, else
        tests/server/spec/dscc-storage-api-v1.2.0.json: the published DSCC
        description less its prose (tests/server/spec/extract_dscc.py).
    validate(schema, value, spec=None, *, strict=False) -> [str]
        Error strings, empty when value conforms. schema is a schema dict
        (may hold a $ref) or a component name ("volumePost"). Each error
        names the field: "namePattern: required property is missing",
        "initiatorsToCreate[0].address: expected string, got integer",
        "(root): expected object, got array". strict=True also reports
        properties the schema does not define ("unknown property").
    find_operation(method, path, spec=None) -> (template, operation) or (None, None)
        The spec path template a concrete path (query string allowed) matches,
        literal segments winning over parameters.
    request_schema(method, template, spec=None) -> schema or None
    response_schema(method, template, status, spec=None) -> schema or None
    check_request(method, path, body, spec=None, strict=True) -> [str]
        body: parsed JSON, bytes/str JSON text, or None for no body. Checks
        that the operation exists, that a required body is present and that
        the body validates against the operation's request schema.
    check_response(method, path, status, body, spec=None, strict=False) -> [str]
        The same for an answer (the status must be one the operation lists,
        or covered by "default").
    example(schema, spec=None) -> value
        A deterministic value that validates against schema, with every
        property the schema lists: a valid example where the spec gives one,
        otherwise the type's empty value (null where nullable, [] for arrays).
"""

import copy
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = os.path.join(HERE, "spec", "dscc-storage-api-v1.2.0.json")

_SPECS = {}
_INDEX = {}
_EXAMPLES = {}

_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_INT_RANGE = {"int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def spec_path():
    return os.environ.get("DSFS_DSCC_SPEC") or DEFAULT_SPEC


def load_spec(path=None):
    path = os.path.abspath(path or spec_path())
    spec = _SPECS.get(path)
    if spec is None:
        with open(path, encoding="utf-8") as f:
            spec = _SPECS[path] = json.load(f)
    return spec


def _spec(spec):
    return load_spec() if spec is None else spec


def resolve(schema, spec=None):
    """Follow $refs ("#/components/schemas/X", any local JSON pointer, or a bare name)."""
    seen = 0
    while True:
        if isinstance(schema, str):
            ref = schema if schema.startswith("#/") else "#/components/schemas/" + schema
        elif isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
        else:
            return schema
        node = _spec(spec)
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            try:
                node = node[part]
            except (KeyError, TypeError):
                raise KeyError("unresolvable $ref %r" % ref)
        schema = node
        seen += 1
        if seen > 64:
            raise ValueError("$ref loop at %r" % ref)


# JSON Schema's name of a Python value's type; bool before int, which it is too
_TYPE_NAMES = ((type(None), "null"), (bool, "boolean"), (int, "integer"), (float, "number"),
               (str, "string"), (list, "array"), (dict, "object"))


def _tname(v):
    return next((name for t, name in _TYPE_NAMES if isinstance(v, t)), type(v).__name__)


_TYPE_OK = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _join(where, key):
    return key if where == "" else "%s.%s" % (where, key)


def _nullable(schema, spec):
    if schema.get("nullable") is True:
        return True
    if None in schema.get("enum", ()):
        return True
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, ()):
            sub = resolve(sub, spec)
            if isinstance(sub, dict) and (sub.get("nullable") is True or
                                          (key != "allOf" and _nullable(sub, spec))):
                return True
    return False


def known_properties(schema, spec=None):
    """Property names a schema defines, through allOf/oneOf/anyOf (None: free-form)."""
    schema = resolve(schema, spec)
    names = set()
    free = True
    if "properties" in schema:
        names.update(schema["properties"])
        free = False
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, ()):
            sub_names = known_properties(sub, spec)
            if sub_names is not None:
                names.update(sub_names)
                free = False
    ap = schema.get("additionalProperties")
    if ap not in (None, False):
        return None
    return None if free else names


def _validate(schema, value, spec, strict, where, errs, check_unknown=True):
    schema = resolve(schema, spec)
    if schema is True or schema == {}:
        return
    if not isinstance(schema, dict):
        return
    label = where or "(root)"
    if value is None:
        if _nullable(schema, spec):
            return
        typed = ("type" in schema or "properties" in schema or "items" in schema
                 or "enum" in schema)
        if not typed:
            for key in ("allOf", "anyOf", "oneOf"):
                for sub in schema.get(key, ()):
                    sub = resolve(sub, spec)
                    if isinstance(sub, dict) and ("type" in sub or "properties" in sub
                                                  or "enum" in sub):
                        typed = True
        if typed:
            errs.append("%s: must not be null" % label)
        return
    t = schema.get("type")
    if isinstance(t, str) and t in _TYPE_OK and not _TYPE_OK[t](value):
        errs.append("%s: expected %s, got %s" % (label, t, _tname(value)))
        return
    if "enum" in schema and value not in schema["enum"]:
        shown = ", ".join(json.dumps(e) for e in schema["enum"] if e is not None)
        errs.append("%s: %s is not one of %s" % (label, json.dumps(value), shown))
    if isinstance(value, str):
        fmt = schema.get("format")
        if fmt == "date-time" and not _DATE_TIME.match(value):
            errs.append("%s: %r is not an RFC 3339 date-time" % (label, value))
        elif fmt == "date" and not _DATE.match(value):
            errs.append("%s: %r is not a date (YYYY-MM-DD)" % (label, value))
        elif fmt == "uuid" and not _UUID.match(value):
            errs.append("%s: %r is not a UUID" % (label, value))
        elif fmt == "ipv4" and value and not _IPV4.match(value):
            errs.append("%s: %r is not an IPv4 address" % (label, value))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append("%s: longer than %d characters" % (label, schema["maxLength"]))
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.append("%s: shorter than %d characters" % (label, schema["minLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append("%s: does not match pattern %r" % (label, schema["pattern"]))
    elif _TYPE_OK["number"](value):
        rng = _INT_RANGE.get(schema.get("format"))
        if rng and isinstance(value, int) and not rng[0] <= value <= rng[1]:
            errs.append("%s: %d is out of %s range" % (label, value, schema["format"]))
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: %s is less than the minimum %s" % (label, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: %s is more than the maximum %s" % (label, value, schema["maximum"]))
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append("%s: fewer than %d items" % (label, schema["minItems"]))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append("%s: more than %d items" % (label, schema["maxItems"]))
        items = schema.get("items")
        if items is not None:
            for i, v in enumerate(value):
                _validate(items, v, spec, strict, "%s[%d]" % (where, i), errs)
    elif isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                errs.append("%s: required property is missing" % _join(where, name))
        for name, v in value.items():
            if name in props:
                _validate(props[name], v, spec, strict, _join(where, name), errs)
        ap = schema.get("additionalProperties")
        if isinstance(ap, dict):
            for name, v in value.items():
                if name not in props:
                    _validate(ap, v, spec, strict, _join(where, name), errs)
        elif ap is False:
            for name in value:
                if name not in props:
                    errs.append("%s: unknown property" % _join(where, name))
        elif strict and check_unknown:
            known = known_properties(schema, spec)
            if known is not None:
                for name in value:
                    if name not in known:
                        errs.append("%s: unknown property (not in the schema)"
                                    % _join(where, name))
    for sub in schema.get("allOf", ()):
        _validate(sub, value, spec, strict, where, errs, check_unknown=False)
    for key in ("anyOf", "oneOf"):
        subs = schema.get(key)
        if not subs:
            continue
        results = []
        for sub in subs:
            e = []
            _validate(sub, value, spec, strict, where, e, check_unknown=False)
            results.append(e)
        passed = sum(1 for e in results if not e)
        if passed == 0:
            best = min(results, key=len)
            errs.append("%s: matches none of the %s alternatives (%s)"
                        % (label, key, "; ".join(best[:3])))
        elif key == "oneOf" and passed > 1:
            errs.append("%s: matches %d of the oneOf alternatives, not exactly one"
                        % (label, passed))


def validate(schema, value, spec=None, *, strict=False):
    spec = _spec(spec)
    errs = []
    _validate(schema, value, spec, strict, "", errs)
    return errs


# --------------------------------------------------------------------------
# Operations

def _index(spec):
    idx = _INDEX.get(id(spec))
    if idx is None or idx[0] is not spec:
        table = {}
        for template in spec.get("paths", {}):
            segs = template.strip("/").split("/")
            pattern = tuple(None if s.startswith("{") and s.endswith("}") else s for s in segs)
            table.setdefault(len(segs), []).append((pattern, template))
        for entries in table.values():
            # literals before parameters, position by position
            entries.sort(key=lambda e: tuple(0 if p is not None else 1 for p in e[0]))
        idx = _INDEX[id(spec)] = (spec, table)
    return idx[1]


def find_operation(method, path, spec=None):
    spec = _spec(spec)
    path = path.split("?", 1)[0].split("#", 1)[0]
    segs = path.strip("/").split("/")
    m = method.lower()
    fallback = (None, None)
    for pattern, template in _index(spec).get(len(segs), ()):
        if all(p is None or p == s for p, s in zip(pattern, segs)):
            op = spec["paths"][template].get(m)
            if op is not None:
                return template, op
            if fallback[0] is None:
                fallback = (template, None)
    return fallback


def _media_schema(content):
    if not content:
        return None
    media = content.get("application/json") or next(iter(content.values()))
    return media.get("schema")


def request_schema(method, template, spec=None):
    spec = _spec(spec)
    op = spec["paths"].get(template, {}).get(method.lower())
    if op is None:
        return None
    body = resolve(op.get("requestBody", {}), spec)
    return _media_schema(body.get("content"))


def response_schema(method, template, status, spec=None):
    spec = _spec(spec)
    op = spec["paths"].get(template, {}).get(method.lower())
    if op is None:
        return None
    responses = op.get("responses", {})
    r = responses.get(str(status)) or responses.get("%dXX" % (int(status) // 100)) \
        or responses.get("default")
    if r is None:
        return None
    return _media_schema(resolve(r, spec).get("content"))


def _parse(body):
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if isinstance(body, str):
        return json.loads(body) if body.strip() else None
    return body


def check_request(method, path, body, spec=None, strict=True):
    spec = _spec(spec)
    template, op = find_operation(method, path, spec)
    if op is None:
        return ["%s %s: no such operation in the spec" % (method.upper(), path)]
    try:
        body = _parse(body)
    except ValueError as e:
        return ["(body): not JSON: %s" % e]
    rb = resolve(op.get("requestBody", {}), spec)
    if body is None:
        if rb.get("required"):
            return ["(body): %s %s requires a request body" % (method.upper(), template)]
        return []
    schema = _media_schema(rb.get("content"))
    if schema is None:
        return ["(body): %s %s takes no request body" % (method.upper(), template)]
    return validate(schema, body, spec, strict=strict)


def check_response(method, path, status, body, spec=None, strict=False):
    spec = _spec(spec)
    template, op = find_operation(method, path, spec)
    if op is None:
        return ["%s %s: no such operation in the spec" % (method.upper(), path)]
    responses = op.get("responses", {})
    if str(status) not in responses and "default" not in responses:
        return ["%s %s: status %s is not listed in the spec" % (method.upper(), template,
                                                                 status)]
    schema = response_schema(method, template, status, spec)
    if schema is None:
        return []
    try:
        body = _parse(body)
    except ValueError as e:
        return ["(body): not JSON: %s" % e]
    return validate(schema, body, spec, strict=strict)


# --------------------------------------------------------------------------
# Examples

def _merge(a, b):
    """Merge two example values; non-null values win, objects merge."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    return a if b is None else b


def _example(schema, spec, depth):
    schema = resolve(schema, spec)
    if not isinstance(schema, dict) or depth > 24:
        return None
    parts = [sub for sub in schema.get("allOf", ())]
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            parts.append(schema[key][0])
    if parts:
        rest = {k: v for k, v in schema.items() if k not in ("allOf", "oneOf", "anyOf")}
        out = None
        for sub in parts:
            out = _merge(out, _example(sub, spec, depth + 1))
        if "properties" in rest or "type" in rest:
            out = _merge(out, _example(rest, spec, depth + 1))
        if out is None and not _nullable(schema, spec) and rest.get("type", "object") == "object":
            out = {}
        return out
    t = schema.get("type")
    if "properties" in schema or t == "object":
        if "properties" not in schema:
            ex = schema.get("example")
            if isinstance(ex, dict) and not validate(schema, ex, spec):
                return copy.deepcopy(ex)
            return {}
        return {name: _example(sub, spec, depth + 1)
                for name, sub in schema["properties"].items()}
    if t == "array" or "items" in schema:
        return []
    ex = schema.get("example")
    if ex is not None and not isinstance(ex, (dict, list)) and not validate(schema, ex, spec):
        return ex
    enum = [e for e in schema.get("enum", ()) if e is not None]
    if enum:
        return enum[0]
    if schema.get("nullable"):
        return None
    fmt = schema.get("format")
    if t == "string":
        if fmt == "date-time":
            return "2023-01-01T00:00:00.000000Z"
        if fmt == "date":
            return "2023-01-01"
        if fmt == "uuid":
            return "00000000-0000-4000-8000-000000000000"
        return ""
    if t == "integer":
        return max(0, schema.get("minimum", 0))
    if t == "number":
        return float(max(0, schema.get("minimum", 0)))
    if t == "boolean":
        return False
    return None


def example(schema, spec=None):
    spec = _spec(spec)
    key = (id(spec), json.dumps(schema, sort_keys=True) if isinstance(schema, dict) else schema)
    hit = _EXAMPLES.get(key)
    if hit is None:
        hit = _EXAMPLES[key] = json.dumps(_example(schema, spec, 0))
    return json.loads(hit)
