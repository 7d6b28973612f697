#!/usr/bin/env python3
"""The spec as a test: run schemathesis against docs/openapi.yaml.

Starts iotflowd on the embedded stores (the API suite's Server helper,
tests/api/conftest.py), creates the things the operations need — a user
with a session token, a device with its key and some telemetry, a group —
and runs schemathesis once per identity, so requests get past 401:

  device      X-API-Key (ApiKeyAuth) first, then Bearer, then admin
  user        a non-admin user's Bearer token only (BearerAuth)
  admin       the admin token only (AdminToken)
  admin-user  an admin user's Bearer token only (is_admin: the admin too)

In each pass an operation uses the first of its security requirements that
the pass configures. Path ids are pinned to the objects created here (so
the fuzzing reaches the handlers, not only 404); the operations that
destroy or lock out (delete a user or device, deactivate, rotate a key,
set a device's status) get victims of their own.

Checks: not_a_server_error, status_code_conformance,
content_type_conformance, response_schema_conformance,
response_headers_conformance, negative_data_rejection (a request the spec
calls invalid must get a 4xx) and positive_data_acceptance (a valid one
must not get 400) — the last one not on the operations that take a time
range, where start <= end and the window count are rules across
parameters that OpenAPI cannot state. Left out: the stateful phase and
use_after_free / ensure_resource_availability (no links in the spec),
ignored_auth (the API suite tests every credential rule, and a wrong
admin token must not lock the run out), missing_required_header and
unsupported_method (405 for every listed path is the API suite's job).

Bounded: --max-examples per operation and phase, a fixed --seed (the same
cases every run; another seed explores others), one worker per pass, --jobs
passes at once, each on a server of its own. Exit status 0
only when every pass had zero failures.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "api"))

# The spec test runs on the embedded stores only, whatever the caller's
# environment says about the server backends.
for _k in ("IOTFLOW_TEST_DATABASE_URL", "IOTFLOW_TEST_REDIS_URL"):
    os.environ.pop(_k, None)

import conftest  # noqa: E402  (the API suite's server harness)

try:
    import schemathesis  # noqa: F401
except ImportError:
    sys.exit(f"run_schemathesis: schemathesis is not installed for {sys.executable}; "
             "install tests/requirements.txt (schemathesis==4.32.5) or run it through make "
             "(PYTHON = the project's .venv)")

# The checks that run, and the ones left out (see README in this folder).
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
]

PASSES = ("device", "user", "admin", "admin-user")

# Operations taking a time range (see write_config).
RANGE_OPERATIONS = ["getTelemetryHistory", "getTelemetryAggregated", "getUserTelemetry",
                    "deleteTelemetry",
                    # end after start, at most 366 days; a day that is over
                    "createDeviceReport", "runDailyReports"]


def setup(server):
    """Create the objects the pinned path parameters name."""
    user = conftest.make_user(server, "bearer")
    victim_user = conftest.make_user(server, "bearer")
    admin_user = conftest.promote_to_admin(conftest.make_user(server, "bearer"))
    device = conftest.register_device(user, name="spec-device", device_type="sensor")
    victim_device = conftest.register_device(user, name="spec-victim", device_type="sensor")
    keyed = conftest.key_client(server, device["api_key"])
    for i, temp in enumerate((20.5, 21.0, 22.5)):
        r = keyed.post("/telemetry", json={"data": {"temperature": temp, "humidity": 40 + i,
                                                     "on": True, "mode": "eco"}})
        conftest.expect(r, 201)
    group = conftest.create_group(user, name="spec-group")
    victim_group = conftest.create_group(user, name="spec-victim")
    r = user.api.post(f"/groups/{group['id']}/devices", json={"device_id": device["id"]})
    conftest.expect(r, 201)
    return {
        "user": user, "victim_user": victim_user, "admin_user": admin_user,
        "device": device, "victim_device": victim_device, "group": group,
        "victim_group": victim_group,
    }


def _schema_objects(node, where="#"):
    """Every Schema Object of an OpenAPI document: components.schemas and
    the `schema` of parameters, headers and media types."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}/{key}"
            if key == "schema" and isinstance(value, dict):
                yield here, value
            elif key == "schemas" and where == "#/components" and isinstance(value, dict):
                for name, sch in value.items():
                    yield f"{here}/{name}", sch
            elif key not in ("example", "examples"):
                yield from _schema_objects(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _schema_objects(value, f"{where}/{i}")


def _patterns(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from value
            if key not in ("example", "examples"):
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def validate_spec(spec):
    """The spec itself must be valid: the document against the OpenAPI 3.1
    meta-schema (schemathesis), each Schema Object against JSON Schema
    2020-12 (which the OpenAPI meta-schema leaves unchecked), and each
    pattern must compile as the generator (Python re) reads it."""
    import re
    import jsonschema_rs
    schema = schemathesis.openapi.from_path(spec)
    schema.validate()
    problems = []
    for where, sch in _schema_objects(schema.raw_schema):
        try:
            jsonschema_rs.meta.validate({"$schema": "https://json-schema.org/draft/2020-12/schema", **sch})
        except jsonschema_rs.ValidationError as e:
            problems.append(f"{where}: {str(e).splitlines()[0]}")
    for pattern in _patterns(schema.raw_schema):
        try:
            re.compile(pattern)
        except re.error as e:
            problems.append(f"pattern {pattern!r}: {e}")
    if problems:
        raise SystemExit(f"{spec} is not a valid OpenAPI 3.1 document:\n  " + "\n  ".join(problems))
    print(f"== {spec}: valid OpenAPI {schema.raw_schema.get('openapi')}, "
          f"{sum(1 for _ in schema.get_all_operations())} operations", flush=True)
    return schema.raw_schema


def toml_str(s):
    return json.dumps(str(s))


def write_config(path, server, objs, ident, args):
    """schemathesis.toml for one pass."""
    user, device = objs["user"], objs["device"]
    lines = [
        f"seed = {args.seed}",
        "workers = 1",
        f"request-timeout = {args.request_timeout}",
        "max-stream-events = 2",
        "suppress-health-check = [\"too_slow\", \"filter_too_much\", \"data_too_large\"]",
        "",
        "[generation]",
        f"max-examples = {args.max_examples}",
        # Reproducible: the seed above, and no example database carried over
        # from an earlier run.
        "database = \"none\"",
        # The spec's conventions: no \\u0000 anywhere in a body (jansson
        # refuses it in keys, iotflowd in strings) — OpenAPI cannot say it.
        "allow-x00 = false",
        # Text limits are UTF-8 bytes (the spec's conventions), JSON Schema's
        # maxLength counts characters: the two agree on ASCII only.
        "codec = \"ascii\"",
        "",
        "[checks]",
        "enabled = false",
    ]
    for c in CHECKS:
        lines += [f"{c}.enabled = true"]
    # The auth of this pass.
    auth = {}
    if ident == "device":
        auth = {"ApiKeyAuth": device["api_key"], "BearerAuth": user.token,
                "AdminToken": f"admin {server.admin_token}"}
    elif ident == "user":
        auth = {"BearerAuth": user.token}
    elif ident == "admin":
        auth = {"AdminToken": f"admin {server.admin_token}"}
    elif ident == "admin-user":
        auth = {"BearerAuth": objs["admin_user"].token}
    for scheme, value in auth.items():
        lines += ["", f"[auth.openapi.{scheme}]"]
        lines += [f"bearer = {toml_str(value)}" if scheme == "BearerAuth"
                  else f"api_key = {toml_str(value)}"]
    # Pinned ids: the objects from setup().
    lines += ["", "[parameters]",
              f"\"path.user_id\" = {toml_str(user.user_id)}",
              f"\"path.device_id\" = {device['id']}",
              f"\"path.group_id\" = {objs['group']['id']}"]
    # Operations that destroy or lock out act on victims.
    victims = {
        "deleteUser": {"path.user_id": objs["victim_user"].user_id},
        "deactivateUser": {"path.user_id": objs["victim_user"].user_id},
        "updateUser": {"path.user_id": objs["victim_user"].user_id},
        "adminDeleteDevice": {"path.device_id": objs["victim_device"]["id"]},
        "adminUpdateDevice": {"path.device_id": objs["victim_device"]["id"]},
        "adminSetDeviceStatus": {"path.device_id": objs["victim_device"]["id"]},
        "rotateDeviceKey": {"path.device_id": objs["victim_device"]["id"]},
        "deleteGroup": {"path.group_id": objs["victim_group"]["id"]},
    }
    # Never tested by schemathesis: the live stream never ends by itself
    # (tests/api/test_telemetry_stream.py covers it); logout would revoke
    # this pass's Bearer token (tests/api/test_auth.py covers it).
    skipped = ["streamTelemetry"] + (["logout"] if "BearerAuth" in auth else [])
    # The device pass configures every scheme and runs every operation; the
    # others run only what their credential opens (the rest would be 401s
    # and public answers the device pass already checks).
    if ident != "device":
        skipped += sorted(op for op, schemes in objs["schemes"].items()
                          if not schemes & auth.keys())
    for op in skipped:
        lines += ["", "[[operations]]", f"include-operation-id = {toml_str(op)}", "enabled = false"]
    # start_time <= end_time, and at most 10000 windows, are rules across
    # parameters that OpenAPI cannot state: valid-looking pairs may get 400.
    for op in RANGE_OPERATIONS:
        lines += ["", "[[operations]]", f"include-operation-id = {toml_str(op)}",
                  "checks.positive_data_acceptance.enabled = false"]
    for op, params in victims.items():
        lines += ["", "[[operations]]", f"include-operation-id = {toml_str(op)}", "[operations.parameters]"]
        lines += [f"{toml_str(k)} = {json.dumps(v)}" for k, v in params.items()]
    path.write_text("\n".join(lines) + "\n")


def operation_schemes(raw):
    """{operationId: the security schemes that open it} (empty: public)."""
    default = raw.get("security", [])
    out = {}
    for item in raw.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict) and "operationId" in op:
                out[op["operationId"]] = {name for req in op.get("security", default)
                                          for name in req}
    return out


def run_pass(server, objs, ident, args, workdir):
    cfg = workdir / f"schemathesis-{ident}.toml"
    write_config(cfg, server, objs, ident, args)
    report = workdir / f"report-{ident}"
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(cfg), "run",
           str(args.spec), "--url", server.base, "--phases", args.phases,
           "--report", "junit", "--report-dir", str(report)]
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    cmd += args.extra
    log = workdir / f"schemathesis-{ident}.log"
    t0 = time.monotonic()
    with open(log, "w") as out:
        out.write(f"== schemathesis pass '{ident}': {' '.join(cmd[3:])}\n")
        out.flush()
        rc = subprocess.call(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    # One pass's output in one piece, even when passes run side by side.
    print(log.read_text(), end="", flush=True)
    print(f"== pass '{ident}': exit {rc} in {time.monotonic() - t0:.0f} s", flush=True)
    return rc, junit_counts(report)


def junit_counts(report_dir):
    """(operations passed, operations failed, operations skipped) of a pass,
    from its JUnit report."""
    import xml.etree.ElementTree as ET
    passed = failed = skipped = 0
    for path in Path(report_dir).glob("*.xml"):
        for case in ET.parse(path).getroot().iter("testcase"):
            kinds = {child.tag for child in case}
            if kinds & {"failure", "error"}:
                failed += 1
            elif "skipped" in kinds:
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


def one_pass(ident, schemes, args, workdir):
    """Runs one pass on a server of its own: (what failed, counts)."""
    # No rate limit may turn the run into 429s: devices, and the admin-token
    # throttle (negative cases send wrong admin tokens).
    server = conftest.Server(env={"IOTFLOW_DEVICE_RATE_LIMIT": "0", "IOTFLOW_ADMIN_FAIL_LIMIT": "0"})
    server.start()
    failed, counts = [], (0, 0, 0)
    try:
        objs = dict(setup(server), schemes=schemes)
        rc, counts = run_pass(server, objs, ident, args, workdir)
        if rc != 0:
            failed.append(ident)
        if not server.alive():
            print(f"iotflowd died in pass '{ident}'; stderr tail:\n{server.stderr()[-3000:]}")
            failed.append(f"server died ({ident})")
    finally:
        rc, _ = server.stop()
        if rc != 0:
            failed.append(f"iotflowd exit {rc} ({ident})")
        server.cleanup()
    return failed, counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "docs" / "openapi.yaml"))
    ap.add_argument("--max-examples", type=int, default=int(os.environ.get("SPEC_MAX_EXAMPLES", "10")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SPEC_SEED", "20261206")))
    ap.add_argument("--max-time", type=int, default=0, help="per pass, seconds (0 = none)")
    ap.add_argument("--phases", default="examples,coverage,fuzzing")
    ap.add_argument("--passes", default=",".join(PASSES))
    ap.add_argument("--request-timeout", type=float, default=10.0)
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SPEC_JOBS", "2")),
                    help="passes run at once")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("extra", nargs="*", help="more schemathesis run options (after --)")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="iotflowd-spec-"))
    schemes = operation_schemes(validate_spec(args.spec))
    # Passes run side by side (--jobs), each on a server of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda ident: one_pass(ident, schemes, args, workdir),
                                args.passes.split(",")))
    if args.keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [f for fails, _ in results for f in fails]
    totals = [sum(c[i] for _, c in results) for i in range(3)]
    # One line in the form test runners close with: operations x passes.
    print(f"spec: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    if failed:
        print(f"spec test FAILED: {', '.join(failed)}")
        return 1
    print("spec test passed: the server and docs/openapi.yaml agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
