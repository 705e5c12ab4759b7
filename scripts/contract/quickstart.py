"""The README quickstart, run through a client that openapi-python-client generated from the
served per-tenant OpenAPI document, and nothing else: every request goes through a generated
`sync_detailed` function, every request body is built from the generated typed models, and every
assertion reads declared fields of the parsed typed responses. A document that leaves a body or
response untyped (free-form objects, `oneOf` without a way to tell the branches apart), that
misses a path, parameter or header, or that types a field wrongly makes this script fail.

Functions are not named here: operationIds are the document's business. Each operation is found
by path and method in the document, then mapped to the module the generator wrote for it
(`api/<tag>/<operationId in snake_case>.py`), and checked against the URL in that module.

    python quickstart.py --client-dir DIR --document openapi.json --base-url URL --token T
        --custom-attribute NAME

DIR holds the generated package `corral_client`. NAME is a `number` custom attribute of
accounts, created before the document was fetched. Run by scripts/contract-check.
"""

from __future__ import annotations

import argparse
import enum
import importlib
import io
import json
import pkgutil
import re
import sys
import traceback
import types
import typing
import uuid

import attrs

# --------------------------------------------------------------------------------------------
# Plumbing: finding operations, building typed bodies, reading typed fields.


class Failure(Exception):
    """A contract failure: the message says what the document or server got wrong."""


try:  # the generator's own naming rules (same venv, pinned version)
    from openapi_python_client.strings import PythonIdentifier as _PythonIdentifier

    def python_name(json_name: str) -> str:
        """The attribute/parameter name the generator gives a JSON name (its own rule)."""
        return str(_PythonIdentifier(json_name, prefix="field_"))

    def tag_dir(tag: str) -> str:
        return str(_PythonIdentifier(tag, prefix="tag"))

except ImportError:  # a later generator may move it; fall back to the documented rule

    def python_name(json_name: str) -> str:
        words = re.findall(r"[A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", json_name))
        return "_".join(words).lower()

    def tag_dir(tag: str) -> str:
        return python_name(tag)


class Api:
    def __init__(self, client_dir: str, document: dict, base_url: str, token: str) -> None:
        sys.path.insert(0, client_dir)
        self.pkg = importlib.import_module("corral_client")
        self.models = importlib.import_module("corral_client.models")
        self.types = importlib.import_module("corral_client.types")
        client_mod = importlib.import_module("corral_client.client")
        self.client = client_mod.AuthenticatedClient(
            base_url=base_url, token=token, raise_on_unexpected_status=True, timeout=30.0
        )
        self.doc = document
        self.model_ns = {name: getattr(self.models, name) for name in dir(self.models)}
        self._modules: dict[tuple[str, str], types.ModuleType] = {}

    # -- operations --

    def module(self, method: str, path: str) -> types.ModuleType:
        key = (method, path)
        if key in self._modules:
            return self._modules[key]
        op = self.doc.get("paths", {}).get(path, {}).get(method)
        if op is None:
            raise Failure(f"the document has no operation {method.upper()} {path}")
        op_id = op.get("operationId")
        candidates = []
        if op_id:
            for tag in op.get("tags") or ["default"]:
                candidates.append(f"corral_client.api.{tag_dir(tag)}.{python_name(op_id)}")
        found = None
        for name in candidates:
            try:
                found = importlib.import_module(name)
                break
            except ImportError:
                continue
        if found is None or not self._module_serves(found, method, path):
            # Fall back to the URL each generated module sends to.
            found = self._scan(method, path)
        if found is None:
            raise Failure(
                f"the generated client has no function for {method.upper()} {path} "
                f"(operationId {op_id!r}; the generator skips operations it cannot type: see client-generate.log)"
            )
        self._modules[key] = found
        return found

    @staticmethod
    def _module_serves(mod: types.ModuleType, method: str, path: str) -> bool:
        try:
            src = open(mod.__file__, encoding="utf-8").read()
        except OSError:
            return False
        return f'"method": "{method}"' in src and f'"url": "{path}"' in src

    def _scan(self, method: str, path: str) -> types.ModuleType | None:
        api = importlib.import_module("corral_client.api")
        for info in pkgutil.walk_packages(api.__path__, "corral_client.api."):
            if info.ispkg:
                continue
            mod = importlib.import_module(info.name)
            if self._module_serves(mod, method, path):
                return mod
        return None

    def call(self, method: str, path: str, *, expect: int | tuple[int, ...], body: dict | None = None, **params):
        """Calls the generated function for METHOD PATH. `params` are path, query and header
        parameters by their JSON names; `body` is plain JSON turned into the typed body model."""
        mod = self.module(method, path)
        fn = mod.sync_detailed
        hints = typing.get_type_hints(fn, globalns=vars(mod), localns=self.model_ns)
        kwargs = {}
        for json_name, value in params.items():
            py = python_name(json_name)
            if py not in hints:
                raise Failure(
                    f"{method.upper()} {path}: the generated function takes no parameter `{py}` "
                    f"(the document does not declare `{json_name}`)"
                )
            kwargs[py] = self.build(hints[py], value, f"parameter {json_name}")
        if body is not None:
            if "body" not in hints:
                raise Failure(f"{method.upper()} {path}: the document declares no request body")
            kwargs["body"] = self.build(hints["body"], body, "body")
        try:
            resp = fn(client=self.client, **kwargs)
        except Exception as e:  # UnexpectedStatus, or a parse error of the response
            name = type(e).__name__
            if name == "UnexpectedStatus":
                raise Failure(
                    f"{method.upper()} {path}: the generated client has no parser for status {e.status_code} "
                    f"(undocumented, or dropped by the generator: see client-generate.log): {e.content[:300]!r}"
                ) from None
            raise Failure(
                f"{method.upper()} {path}: the generated client could not parse the response: {name}: {e}"
            ) from e
        expected = (expect,) if isinstance(expect, int) else expect
        if int(resp.status_code) not in expected:
            raise Failure(
                f"{method.upper()} {path}: expected status {'/'.join(map(str, expected))}, "
                f"got {int(resp.status_code)}: {resp.content[:400]!r}"
            )
        if resp.parsed is None and int(resp.status_code) != 204:
            raise Failure(f"{method.upper()} {path}: the client parsed no body for status {int(resp.status_code)}")
        return resp

    # -- typed request bodies --

    def _hints(self, cls: type) -> dict:
        mod = sys.modules[cls.__module__]
        return typing.get_type_hints(cls, globalns=vars(mod), localns=self.model_ns)

    def _alternatives(self, tp) -> list:
        if tp is typing.Any:
            return [typing.Any]
        origin = typing.get_origin(tp)
        if origin is typing.Union or origin is types.UnionType:
            out = []
            for a in typing.get_args(tp):
                out.extend(self._alternatives(a))
            return out
        return [tp]

    def build(self, tp, value, where: str):
        """`value` (plain JSON) as an instance of type hint `tp`: typed models for objects,
        enum members for enum values. Objects must match declared fields exactly."""
        unset = self.types.Unset
        alts = [a for a in self._alternatives(tp) if a is not unset]
        if typing.Any in alts:
            return value
        if value is None:
            if type(None) in alts:
                return None
            raise Failure(f"{where}: null is not allowed by the document here ({tp})")
        errors = []
        if isinstance(value, dict):
            for a in alts:
                if isinstance(a, type) and attrs.has(a):
                    try:
                        return self.build_model(a, value, where)
                    except Failure as e:
                        errors.append(str(e))
            if not errors:
                raise Failure(f"{where}: the document gives this object no model (type {tp})")
            raise Failure(" / ".join(errors))
        if isinstance(value, list):
            for a in alts:
                if typing.get_origin(a) is list:
                    (item_tp,) = typing.get_args(a) or (typing.Any,)
                    return [self.build(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
            raise Failure(f"{where}: the document does not allow an array here (type {tp})")
        for a in alts:
            if isinstance(a, type) and issubclass(a, enum.Enum):
                try:
                    return a(value)
                except ValueError:
                    errors.append(f"{value!r} is not a value of {a.__name__}")
        for a in alts:
            if a is bool and isinstance(value, bool):
                return value
            if a in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
                if a is int and isinstance(value, float) and not value.is_integer():
                    continue
                return a(value)
            if a is str and isinstance(value, str):
                return value
            # An id read from a typed response (format: uuid) sent back as a string parameter,
            # or the other way round: what any client program does.
            if a is str and isinstance(value, uuid.UUID):
                return str(value)
            if a is uuid.UUID and isinstance(value, (str, uuid.UUID)):
                try:
                    return uuid.UUID(str(value))
                except ValueError:
                    pass
        why = f" ({'; '.join(errors)})" if errors else ""
        raise Failure(f"{where}: {value!r} does not fit the declared type {tp}{why}")

    def build_model(self, cls: type, data: dict, where: str):
        fields = attrs.fields_dict(cls)
        hints = self._hints(cls)
        kwargs = {}
        for key, value in data.items():
            py = python_name(key)
            if py not in fields or py == "additional_properties":
                raise Failure(f"{where}: model {cls.__name__} declares no field `{key}`")
            kwargs[py] = self.build(hints[py], value, f"{where}.{key}")
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise Failure(f"{where}: model {cls.__name__} needs more than the quickstart sends: {e}") from None


def conforms(api: Api, value, tp) -> bool:
    """Whether a parsed value really has its declared type (the generated parsers cast scalars
    without checking them, so a number declared as a string would otherwise slip through)."""
    alts = [a for a in api._alternatives(tp) if a is not api.types.Unset]
    for a in alts:
        if a is typing.Any or (value is None and a is type(None)):
            return True
        origin = typing.get_origin(a)
        if origin is list and isinstance(value, list):
            (item_tp,) = typing.get_args(a) or (typing.Any,)
            return all(conforms(api, v, item_tp) for v in value)
        if origin is dict and isinstance(value, dict):
            return True
        if not isinstance(a, type):
            continue
        if a is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if a is int and isinstance(value, bool):
            continue
        if isinstance(value, a):
            return True
    return False


def field(obj, *names):
    """Reads `obj.a.b…` by JSON names, requiring each to be a declared, set field of a typed
    model (a value that only sits in `additional_properties` is untyped: a failure) whose
    parsed value has the declared type."""
    from_where = type(obj).__name__
    for name in names:
        if isinstance(name, int):
            if not isinstance(obj, list) or len(obj) <= name:
                raise Failure(f"{from_where}: expected a list with an item {name}, got {obj!r}")
            obj = obj[name]
            continue
        if not attrs.has(type(obj)):
            got = f"{type(obj).__name__}: {obj!r}"[:300]
            raise Failure(f"{from_where}: expected a typed model with field `{name}`, got {got}")
        py = python_name(name)
        if py not in attrs.fields_dict(type(obj)) or py == "additional_properties":
            extra = getattr(obj, "additional_properties", {})
            where = " (present only untyped, in additional_properties)" if name in extra else ""
            raise Failure(f"model {type(obj).__name__} declares no field `{name}`{where}")
        value = getattr(obj, py)
        if type(value).__name__ == "Unset":
            raise Failure(f"{type(obj).__name__}.{name} was not set in the parsed response")
        declared = API._hints(type(obj)).get(py)
        if declared is not None and not conforms(API, value, declared):
            raise Failure(f"{type(obj).__name__}.{name} is declared {declared} but the server sent {value!r}"[:400])
        from_where = f"{type(obj).__name__}.{name}"
        obj = value
    return obj


def plain(value):
    """An enum member's value, else the value (for comparisons)."""
    return value.value if isinstance(value, enum.Enum) else value


def check(what: str, got, expected) -> None:
    if plain(got) != expected:
        raise Failure(f"{what}: expected {expected!r}, got {plain(got)!r}")


# --------------------------------------------------------------------------------------------
# The flows.

V1 = "/api/v1/crm/accounts"
V1_ONE = "/api/v1/crm/accounts/{id}"
V1_RESTORE = "/api/v1/crm/accounts/{id}/restore"
V2 = "/api/v2/account"
V2_ONE = "/api/v2/account/{id}"
V2_QUERY = "/api/v2/account/_query"
V2_ASSERT = "/api/v2/account/_assert"
V2_DOMAINS = "/api/v2/account/{id}/attribute/domains"
V2_RESTORE = "/api/v2/account/{id}/_restore"
V2_BULK = "/api/v2/account/_bulk"


class Quickstart:
    def __init__(self, api: Api, custom: str) -> None:
        self.api = api
        self.custom = custom
        self.tag = uuid.uuid4().hex[:8]
        self.state: dict = {}

    def need(self, *keys):
        missing = [k for k in keys if k not in self.state]
        if missing:
            raise Skipped(f"needs {', '.join(missing)} from an earlier step")
        return [self.state[k] for k in keys]

    # --- v1 ---

    def v1_create(self):
        r = self.api.call(
            "post",
            V1,
            expect=201,
            body={
                "name": f"Initrode {self.tag}",
                "domain": f"https://www.Initrode-{self.tag}.com/",
                "industry": "software",
                "tags": ["new"],
            },
        )
        doc = r.parsed
        check("v1 create: domain (normalised)", field(doc, "domain"), f"initrode-{self.tag}.com")
        check("v1 create: name", field(doc, "name"), f"Initrode {self.tag}")
        check("v1 create: version", field(doc, "version"), 1)
        check("v1 create: tags", field(doc, "tags"), ["new"])
        check("v1 create: ETag", r.headers.get("etag"), '"1"')
        self.state["v1_id"] = field(doc, "id")

    def v1_list_filtered(self):
        (v1_id,) = self.need("v1_id")
        r = self.api.call("get", V1, expect=200, domain=f"initrode-{self.tag}.com", industry="software", limit=3)
        data = field(r.parsed, "data")
        check("v1 list ?domain=&industry=: number of documents", len(data), 1)
        check("v1 list: id", field(data[0], "id"), v1_id)
        check("v1 list: domain", field(data[0], "domain"), f"initrode-{self.tag}.com")
        check("v1 list: has_more", field(r.parsed, "has_more"), False)

    def v1_if_match(self):
        (v1_id,) = self.need("v1_id")
        r = self.api.call(
            "patch", V1_ONE, expect=200, id=v1_id, body={"lifecycle_stage": "engaged"}, **{"If-Match": '"1"'}
        )
        check('v1 PATCH If-Match "1": lifecycle_stage', field(r.parsed, "lifecycle_stage"), "engaged")
        check('v1 PATCH If-Match "1": version', field(r.parsed, "version"), 2)
        r = self.api.call(
            "patch", V1_ONE, expect=412, id=v1_id, body={"lifecycle_stage": "customer"}, **{"If-Match": '"1"'}
        )
        check("v1 PATCH stale If-Match: error code", field(r.parsed, "error", "code"), "precondition_failed")

    def v1_archive_restore(self):
        (v1_id,) = self.need("v1_id")
        r = self.api.call("delete", V1_ONE, expect=200, id=v1_id)
        check("v1 DELETE: is_deleted", field(r.parsed, "is_deleted"), True)
        r = self.api.call("get", V1_ONE, expect=404, id=v1_id)
        check("v1 GET archived: error code", field(r.parsed, "error", "code"), "record_not_found")
        r = self.api.call("post", V1_RESTORE, expect=200, id=v1_id)
        check("v1 restore: is_deleted", field(r.parsed, "is_deleted"), False)
        check("v1 restore: domain kept", field(r.parsed, "domain"), f"initrode-{self.tag}.com")

    # --- v2 ---

    def v2_create(self):
        r = self.api.call(
            "post",
            V2,
            expect=201,
            body={
                "attributes": {"display_name": f"Globex {self.tag}", "industry": "software", self.custom: 12},
            },
        )
        attributes = field(r.parsed, "data", "attributes")
        check("v2 create: display_name", field(attributes, "display_name", "value"), f"Globex {self.tag}")
        check(f"v2 create: custom attribute {self.custom}", field(attributes, self.custom, "value"), 12)
        check("v2 create: record_type", field(r.parsed, "data", "record_type"), "account")
        self.state["v2_id"] = field(r.parsed, "data", "id")

    def v2_query(self):
        (v2_id,) = self.need("v2_id")
        r = self.api.call(
            "post",
            V2_QUERY,
            expect=200,
            body={
                "filters": [{"field": "display_name", "operator": "eq", "value": f"Globex {self.tag}"}],
                "sort": [{"field": "created_at", "direction": "desc"}],
                "limit": 10,
                "count": "exact",
            },
        )
        data = field(r.parsed, "data")
        check("v2 _query name eq: number of records", len(data), 1)
        check("v2 _query: id", field(data[0], "id"), v2_id)
        check("v2 _query: meta.total", field(r.parsed, "meta", "total"), 1)
        check(f"v2 _query: {self.custom}", field(data[0], "attributes", self.custom, "value"), 12)

    def v2_if_match(self):
        (v2_id,) = self.need("v2_id")
        r = self.api.call(
            "patch",
            V2_ONE,
            expect=200,
            id=v2_id,
            body={"attributes": {"current_stage_id": "engaged"}},
            **{"If-Match": '"1"'},
        )
        attributes = field(r.parsed, "data", "attributes")
        check('v2 PATCH If-Match "1": version', field(attributes, "version", "value"), 2)
        check("v2 PATCH: current_stage_id", field(attributes, "current_stage_id", "value", "api_name"), "engaged")
        check("v2 PATCH: ETag", r.headers.get("etag"), '"2"')
        r = self.api.call(
            "patch", V2_ONE, expect=412, id=v2_id, body={"attributes": {"industry": "retail"}}, **{"If-Match": '"1"'}
        )
        check("v2 PATCH stale If-Match: error code", field(r.parsed, "error", "code"), "precondition_failed")

    def v2_add_domain(self):
        (v2_id,) = self.need("v2_id")
        domain = f"globex-{self.tag}.example"
        r = self.api.call("post", V2_DOMAINS, expect=201, id=v2_id, body={"domain_name": f"https://WWW.{domain}/"})
        check("v2 add domain: domain_name (normalised)", field(r.parsed, "data", "domain_name"), domain)
        r = self.api.call("post", V2_DOMAINS, expect=200, id=v2_id, body={"domain_name": domain})
        check("v2 add same domain again: domain_name", field(r.parsed, "data", "domain_name"), domain)
        r = self.api.call("get", V2_ONE, expect=200, id=v2_id)
        domains = field(r.parsed, "data", "attributes", "domains")
        names = [plain(field(d, "value", "domain_name")) for d in domains]
        check("v2 GET: domains", names, [domain])

    def custom_field(self):
        (v2_id,) = self.need("v2_id")
        r = self.api.call("patch", V2_ONE, expect=200, id=v2_id, body={"attributes": {self.custom: 42}})
        check(f"v2 PATCH {self.custom}", field(r.parsed, "data", "attributes", self.custom, "value"), 42)
        r = self.api.call("get", V2_ONE, expect=200, id=v2_id)
        check(f"v2 GET {self.custom}", field(r.parsed, "data", "attributes", self.custom, "value"), 42)
        r = self.api.call("get", V1_ONE, expect=200, id=v2_id)
        check(f"v1 GET custom_fields.{self.custom}", field(r.parsed, "custom_fields", self.custom), 42)
        r = self.api.call("patch", V1_ONE, expect=200, id=v2_id, body={"custom_fields": {self.custom: 7}})
        check(f"v1 PATCH custom_fields.{self.custom}", field(r.parsed, "custom_fields", self.custom), 7)

    def v2_archive_restore(self):
        (v2_id,) = self.need("v2_id")
        self.api.call("delete", V2_ONE, expect=204, id=v2_id)
        r = self.api.call("get", V2_ONE, expect=404, id=v2_id)
        check("v2 GET archived: error code", field(r.parsed, "error", "code"), "record_not_found")
        r = self.api.call("post", V2_RESTORE, expect=200, id=v2_id)
        check("v2 _restore: id", field(r.parsed, "data", "id"), v2_id)
        check(f"v2 _restore: {self.custom} kept", field(r.parsed, "data", "attributes", self.custom, "value"), 7)

    # --- _assert ---

    def assert_by_domain(self):
        domain = f"asserted-{self.tag}.example"
        r = self.api.call(
            "post",
            V2_ASSERT,
            expect=201,
            body={
                "match": {"domain_name": domain},
                "attributes": {"display_name": f"Asserted {self.tag}"},
            },
        )
        check("_assert (new): meta.action", field(r.parsed, "meta", "action"), "created")
        created_id = field(r.parsed, "data", "id")
        r = self.api.call(
            "post",
            V2_ASSERT,
            expect=200,
            body={
                "match": {"domain_name": domain.upper()},
                "attributes": {"industry": "retail", self.custom: 3},
            },
        )
        check("_assert (existing): meta.action", field(r.parsed, "meta", "action"), "updated")
        check("_assert (existing): same record", field(r.parsed, "data", "id"), created_id)
        check("_assert (existing): industry", field(r.parsed, "data", "attributes", "industry", "value"), "retail")
        check(f"_assert (existing): {self.custom}", field(r.parsed, "data", "attributes", self.custom, "value"), 3)

    # --- _bulk (NDJSON: a byte body and a byte response to the generated client) ---

    def bulk_ndjson(self):
        domain = f"bulk-{self.tag}.example"
        lines = [
            {"op": "create", "attributes": {"display_name": f"Bulk {self.tag}"}},
            {"op": "create", "attributes": {}},
            {"op": "assert", "match": {"domain_name": domain}, "attributes": {"display_name": f"Bulk {self.tag} 2"}},
            {"op": "assert", "match": {"domain_name": domain}, "attributes": {"industry": "retail"}},
        ]
        payload = "".join(json.dumps(line) + "\n" for line in lines).encode()
        mod = self.api.module("post", V2_BULK)
        resp = mod.sync_detailed(client=self.api.client, body=self.api.types.File(payload=io.BytesIO(payload)))
        check("_bulk: status", int(resp.status_code), 200)
        check("_bulk: content type", resp.headers.get("content-type", "").split(";")[0], "application/x-ndjson")
        results = [json.loads(line) for line in resp.parsed.payload.read().decode().splitlines() if line]
        check("_bulk: one result per line", [r["line"] for r in results], [1, 2, 3, 4])
        check("_bulk: statuses", [r["status"] for r in results], [201, 422, 201, 200])
        check("_bulk: actions", [r.get("action") for r in results], ["created", None, "created", "updated"])
        check("_bulk: bad line's error code", results[1]["error"]["code"], "field_required_missing")
        check("_bulk: the second assert found the first's record", results[3].get("id"), results[2].get("id"))

    STEPS = [
        ("v1 create account", "v1_create"),
        ("v1 filtered list", "v1_list_filtered"),
        ("v1 If-Match update", "v1_if_match"),
        ("v1 archive and restore", "v1_archive_restore"),
        ("v2 create with custom attribute", "v2_create"),
        ("v2 _query", "v2_query"),
        ("v2 If-Match update", "v2_if_match"),
        ("v2 add a domain", "v2_add_domain"),
        ("custom field write and read (v2 and v1)", "custom_field"),
        ("v2 archive and _restore", "v2_archive_restore"),
        ("v2 _assert by domain_name", "assert_by_domain"),
        ("v2 _bulk NDJSON (byte body)", "bulk_ndjson"),
    ]


class Skipped(Exception):
    pass


API: Api  # the one client of this run (field() checks parsed values against its models)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client-dir", required=True)
    p.add_argument("--document", required=True)
    p.add_argument("--base-url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--custom-attribute", required=True)
    args = p.parse_args()
    document = json.load(open(args.document, encoding="utf-8"))
    global API
    api = API = Api(args.client_dir, document, args.base_url, args.token)
    qs = Quickstart(api, args.custom_attribute)
    failed = skipped = passed = 0
    for title, method in Quickstart.STEPS:
        try:
            getattr(qs, method)()
            print(f"  ok   {title}")
            passed += 1
        except Skipped as e:
            print(f"  skip {title}: {e}")
            skipped += 1
        except Failure as e:
            print(f"  FAIL {title}: {e}")
            failed += 1
        except Exception:
            print(f"  FAIL {title}: unexpected error in the generated client or this script:")
            traceback.print_exc(file=sys.stdout)
            failed += 1
    print(f"quickstart: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
