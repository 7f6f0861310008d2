"""Checks `lab inventory` output against each provisioner's own schema or CLI syntax.

Run by tests/inventory.rs with the venv's Python (LAB_VENV: python-ironicclient, jsonschema,
PyYAML). The schemas are upstream data kept in tests/fixtures/inventory/ (see its README for
sources and commits). Prints a JSON summary of what the tool would receive, for the Rust test to
compare with the lab file; exits non-zero with the reasons when anything does not validate.

  inventory_check.py ironic FILE.json DRIVER      python-ironicclient's create_resources loads the
      file (its own JSON schema), creates each node and port through its NodeManager/PortManager
      (their creation-attribute checks) with the HTTP transport replaced by a recorder; each
      recorded POST body is validated against Ironic's API schemas (node_schema(), PORT_SCHEMA),
      driver_info against the driver's REQUIRED/OPTIONAL_PROPERTIES, root_device against
      VALID_ROOT_DEVICE_HINTS and the boot_mode capability against Ironic's values.
  inventory_check.py kube FILE.yaml                every document against its CRD's openAPIV3Schema
      (jsonschema), plus what the API server's strict field validation adds: no field the schema
      does not declare; ObjectMeta names and labels as Kubernetes validates them; Secrets with the
      username/password keys baremetal-operator and rufio read; references resolving within the
      file; BareMetalHost bmc.address of a type baremetal-operator registers.
  inventory_check.py maas FILE.sh                  runs the script with sh and a `maas` on PATH
      that records its argv; each command must be `PROFILE machines create NAME=VALUE...` (split
      as maascli does), with only parameters MachinesHandler.create documents, power parameters
      the power type declares (required ones present, choices respected) and MACs MAAS accepts.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

import jsonschema
import yaml

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "inventory")
ERRORS = []


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def fail(msg):
    ERRORS.append(msg)


def validate(instance, schema, what):
    v = jsonschema.Draft7Validator(schema)
    for e in sorted(v.iter_errors(instance), key=lambda e: list(e.path)):
        fail(f"{what}: {'/'.join(map(str, e.path)) or '(top)'}: {e.message}")


# --- ironic --------------------------------------------------------------------------------------

class Recorder:
    """ironicclient's HTTP client, replaced: keeps each request and answers like Ironic (201)."""

    def __init__(self):
        self.requests = []

    def json_request(self, method, url, body=None, headers=None, **kwargs):
        answer = dict(body or {}, uuid=str(uuid.uuid4()))
        self.requests.append((method, url, body, answer["uuid"]))
        return None, answer


def check_ironic(path, driver):
    from ironicclient.v1 import create_resources, node, port, portgroup, chassis

    api = Recorder()

    class Client:  # what create_resources uses of ironicclient.v1.client.Client
        pass

    client = Client()
    client.node = node.NodeManager(api)
    client.port = port.PortManager(api)
    client.portgroup = portgroup.PortgroupManager(api)
    client.chassis = chassis.ChassisManager(api)
    create_resources.create_resources(client, [path])  # raises ClientException on any error

    ironic = fixture("ironic-api.json")
    info = ironic["driver_info"][driver]
    known = set(info["required"]) | set(info["optional"])
    hints = ironic["root_device_hints"]["types"]
    py = {"int": int, "str": str, "bool": bool}
    nodes, ports, node_uuids = [], [], {}
    for method, url, body, made in api.requests:
        if url.endswith("/nodes"):
            name = body.get("name")
            validate(body, ironic["node_schema"]["schema"], f"POST {url} {name}")
            if body["driver"] != driver:
                fail(f"{name}: driver {body['driver']!r}, asked for {driver!r}")
            di = body["driver_info"]
            for k in info["required"]:
                if k not in di:
                    fail(f"{name}: driver_info lacks {k}, which the {driver} driver requires")
            for k in di:
                if k not in known:
                    fail(f"{name}: driver_info.{k} is no property of Ironic's {driver} driver")
            props = body["properties"]
            for k, v in props.get("root_device", {}).items():
                if k not in hints or not isinstance(v, py[hints[k]]):
                    fail(f"{name}: root_device hint {k}={v!r} is not one Ironic knows")
            caps = dict(c.split(":", 1) for c in props.get("capabilities", "").split(",") if c)
            if caps.get("boot_mode") not in ("bios", "uefi"):
                fail(f"{name}: capabilities boot_mode {caps.get('boot_mode')!r} is not bios|uefi")
            node_uuids[made] = name
            nodes.append(body)
        elif url.endswith("/ports"):
            validate(body, ironic["port_schema"]["schema"], f"POST {url} {body.get('address')}")
            if body.get("node_uuid") not in node_uuids:
                fail(f"port {body.get('address')}: node_uuid names no node created before it")
            ports.append(dict(body, node=node_uuids.get(body.get("node_uuid"))))
        else:
            fail(f"unexpected request {method} {url}")
    return {"nodes": nodes, "ports": ports}


# --- kubernetes ----------------------------------------------------------------------------------

# k8s.io/apimachinery/pkg/util/validation: DNS-1123 subdomain (object names), label keys and values.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_meta(doc, what):
    meta = doc.get("metadata") or {}
    name = meta.get("name", "")
    if not (DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
        fail(f"{what}: metadata.name {name!r} is not a DNS-1123 subdomain")
    ns = meta.get("namespace", "")
    if not (re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", ns) and len(ns) <= 63):
        fail(f"{what}: metadata.namespace {ns!r} is not a DNS-1123 label")
    for key, value in list((meta.get("labels") or {}).items()):
        prefix, _, nm = key.rpartition("/")
        if prefix and not DNS1123_SUBDOMAIN.match(prefix) or not QUALIFIED_NAME.match(nm) or len(nm) > 63:
            fail(f"{what}: label key {key!r} is not a qualified name")
        if not isinstance(value, str) or not LABEL_VALUE.match(value) or len(value) > 63:
            fail(f"{what}: label value {value!r} is not valid")
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            fail(f"{what}: annotation {key} is not a string")


def unknown_fields(obj, schema, path, what):
    """Fields the schema does not declare: the API server prunes them (strict validation refuses)."""
    if isinstance(obj, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in obj.items():
            if props is not None and k in props:
                unknown_fields(v, props[k], path + [k], what)
            elif isinstance(extra, dict):
                unknown_fields(v, extra, path + [k], what)
            elif props is not None or extra is False:
                fail(f"{what}: unknown field {'.'.join(path + [k])}")
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(obj):
            unknown_fields(v, schema["items"], path + [str(i)], what)


def check_kube(path):
    crds = {}
    for f in ("metal3-baremetalhost.json", "tinkerbell-hardware.json", "rufio-machine.json"):
        c = fixture(f)
        crds[(f"{c['group']}/{c['version']}", c["kind"])] = c
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if not docs:
        fail("no YAML documents")
    by_kind = {}
    for d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        what = f"{key[1]} {d.get('metadata', {}).get('name')}"
        check_meta(d, what)
        by_kind.setdefault(key[1], {})[d.get("metadata", {}).get("name")] = d
        if key == ("v1", "Secret"):
            # core/v1 Secret: type, and the keys baremetal-operator's controller
            # (bmcCredsSecret.Data["username"|"password"]) and rufio read.
            if set(d) - {"apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"}:
                fail(f"{what}: unknown Secret fields {set(d)}")
            data = d.get("stringData") or {}
            if d.get("type") != "Opaque" or not all(isinstance(data.get(k), str) and data.get(k) for k in ("username", "password")):
                fail(f"{what}: not an Opaque Secret with username and password")
            continue
        crd = crds.get(key)
        if crd is None:
            fail(f"{what}: apiVersion/kind {key} is none of the CRDs in the fixtures")
            continue
        schema = crd["openAPIV3Schema"]
        validate(d, schema, what)
        unknown_fields(d.get("spec", {}), schema["properties"]["spec"], ["spec"], what)
    secrets = by_kind.get("Secret", {})
    for name, bmh in by_kind.get("BareMetalHost", {}).items():
        bmc = bmh.get("spec", {}).get("bmc", {})
        if bmc.get("credentialsName") not in secrets:
            fail(f"BareMetalHost {name}: credentialsName {bmc.get('credentialsName')} is not in the file")
        types = crds[("metal3.io/v1alpha1", "BareMetalHost")]["bmc_address_types"]["types"]
        scheme = bmc.get("address", "").split("://", 1)[0]
        base, _, transport = scheme.partition("+")
        if base not in types or (transport and transport not in types[base]["transports"]):
            fail(f"BareMetalHost {name}: bmc.address scheme {scheme!r} is no BMC type baremetal-operator registers")
    machines = by_kind.get("Machine", {})
    for name, m in machines.items():
        ref = m.get("spec", {}).get("connection", {}).get("authSecretRef", {})
        if ref.get("name") not in secrets:
            fail(f"Machine {name}: authSecretRef {ref.get('name')} is not in the file")
    for name, hw in by_kind.get("Hardware", {}).items():
        ref = hw.get("spec", {}).get("bmcRef", {})
        if ref.get("apiGroup") != "bmc.tinkerbell.org" or ref.get("kind") != "Machine" or ref.get("name") not in machines:
            fail(f"Hardware {name}: bmcRef {ref} is no Machine in the file")
    return {k: list(v.values()) for k, v in by_kind.items()}


# --- maas ----------------------------------------------------------------------------------------

RECORDER = """#!/bin/sh
exec "$LAB_PYTHON" -c 'import json, sys; open(sys.argv[1], "a").write(json.dumps(sys.argv[2:]) + "\\n")' "$LAB_MAAS_LOG" "$@"
"""


def check_maas(path):
    maas = fixture("maas-api.json")
    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "maas")
        with open(fake, "w") as f:
            f.write(RECORDER)
        os.chmod(fake, 0o755)
        log = os.path.join(tmp, "calls")
        env = dict(os.environ, PATH=tmp + ":" + os.environ["PATH"], PROFILE="lab-test",
                   LAB_MAAS_LOG=log, LAB_PYTHON=sys.executable)
        subprocess.run(["sh", path], env=env, check=True)
        calls = [json.loads(line) for line in open(log)] if os.path.exists(log) else []
    # Without PROFILE the script must stop before calling maas.
    env = dict(os.environ)
    env.pop("PROFILE", None)
    if subprocess.run(["sh", path], env=env, capture_output=True).returncode == 0:
        fail("the script ran without PROFILE")
    create = maas["machines_create"]["params"]
    split = re.compile(maas["cli_name_value_split"]["pattern"])
    mac_re = re.compile(maas["mac_field_re"]["pattern"])
    machines = []
    for argv in calls:
        if argv[:3] != ["lab-test", "machines", "create"]:
            fail(f"not `maas PROFILE machines create`: {argv}")
            continue
        params = {}
        for word in argv[3:]:
            parts = split.split(word, maxsplit=1)
            if len(parts) != 3 or parts[1] != "=":
                fail(f"{word!r} is not a name=value pair")
                continue
            params.setdefault(parts[0], []).append(parts[2])
        host = params.get("hostname", ["?"])[0]
        power_type = params.get("power_type", [None])[0]
        settings = maas["power_types"].get(power_type, {}).get("settings")
        if settings is None:
            fail(f"{host}: power_type {power_type!r} is not one of {list(maas['power_types'])}")
            settings = {}
        for name, values in params.items():
            if name.startswith("power_parameters_"):
                setting = settings.get(name[len("power_parameters_"):])
                if setting is None:
                    fail(f"{host}: {name}: the {power_type} power type has no such parameter")
                elif "choices" in setting and values[0] not in setting["choices"]:
                    fail(f"{host}: {name}={values[0]!r} is none of {setting['choices']}")
            elif name not in create:
                fail(f"{host}: {name} is no parameter of machines create")
            if len(values) > 1 and name != "mac_addresses":
                fail(f"{host}: {name} given {len(values)} times")
        for name, p in create.items():
            if p["required"] and name not in params:
                fail(f"{host}: lacks required {name}")
        for name, s in settings.items():
            if s["required"] and f"power_parameters_{name}" not in params:
                fail(f"{host}: lacks power_parameters_{name}, which {power_type} requires")
        for mac in params.get("mac_addresses", []):
            if not mac_re.match(mac):
                fail(f"{host}: MAC {mac!r} is not one MAAS accepts")
        machines.append(params)
    if not machines:
        fail("the script created no machines")
    return {"machines": machines}


def main():
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "ironic":
        summary = check_ironic(path, sys.argv[3])
    elif kind == "kube":
        summary = check_kube(path)
    elif kind == "maas":
        summary = check_maas(path)
    else:
        sys.exit(f"unknown check {kind}")
    if ERRORS:
        sys.exit("\n".join(["does not validate:"] + ERRORS))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
