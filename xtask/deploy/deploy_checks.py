"""The Helm chart's and the Dockerfile's checks, run by `cargo xtask check-deploy` (and
`cargo xtask test`) in the venv target/xtask/deploy-tools, offline:

- lint: `helm lint --strict` (helm-python-sdk) with the default values and each example;
- render: the chart for each values case, written to OUT/<case>/manifests.yaml;
- kubernetes-validate: every rendered object against Kubernetes 1.30's schemas, strictly
  (unknown fields refused); a kind without a schema fails, except the CRD kinds named in
  CRD_KINDS, which get a structural check of their own;
- check-config: the aggregator's and the collector's configuration files as the pods get them
  (the ConfigMap key behind the --config path, the pod's environment with Secrets replaced by
  test values) through the real binaries' `check-config`;
- security: invariants over the rendered objects (non-root, read-only root, no privilege
  escalation, capabilities dropped, no Secret rendered, probes, NetworkPolicies without
  allow-all rules, hooks ordered, config checksums);
- schema: every file in bad-values/ must make rendering fail, for its stated reason;
- Dockerfile: parsed by BuildKit's parser; builds every binary of services/*, runs them on
  distroless as 65532, where the chart's commands expect them.

One line per check on stdout; exit status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("deploy_checks.py needs Python 3.11 or newer (tomllib)")

import dockerfile
import helm_python as helm
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30.0"
RELEASE = "orgtrail"
NAMESPACE = "security"
NONROOT = 65532

# Custom resources kubernetes-validate has no schema for: (apiVersion, kind).
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# What the pods' Secret-backed environment variables hold, for check-config.
SECRET_TEST_VALUES = {
    "ORGTRAIL_DATABASE_URL": "postgres://orgtrail:not-a-real-password@postgres.invalid:5432/orgtrail",
    "ORGTRAIL_ENCRYPTION__KMS_KEY_ID": "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000",
    "ORGTRAIL_AGGREGATOR__TOKEN": "not-a-real-token",
}
SECRET_MARKERS = ["not-a-real-password", "not-a-real-token"]

BINARIES = {"orgtrail-aggregator", "orgtrail-collector"}


class CheckFailed(Exception):
    pass


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def run(self, name: str, check, *args) -> object:
        try:
            result = check(*args)
        except CheckFailed as error:
            self.failures.append(name)
            print(f"deploy check {name}: FAILED: {error}", flush=True)
            return None
        except Exception as error:  # a bug in the check or the chart: still one line
            self.failures.append(name)
            print(f"deploy check {name}: FAILED: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc(file=sys.stderr)
            return None
        value, detail = result if isinstance(result, tuple) else (result, result)
        print(f"deploy check {name}: ok{f' ({detail})' if detail else ''}", flush=True)
        return value if value is not None else True


def fail(message: str) -> None:
    raise CheckFailed(message)


# ---------------------------------------------------------------------------------------------
# lint and render


def lint(chart: Path, values: dict) -> str:
    report = helm.lint(chart, values, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    problems = [
        f"{message['path']}: {message['error']}"
        for message in report.get("messages", [])
        if message.get("severity", 0) >= 2
    ] + list(report.get("errors") or [])
    if problems:
        fail("; ".join(problems))
    infos = [m["error"] for m in report.get("messages", []) if m.get("severity") == 1]
    return f"info only: {', '.join(infos)}" if infos else ""


def render(chart: Path, values: dict) -> dict[str, str]:
    with helm.Chart.load(chart) as loaded:
        return loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def merged_values(chart: Path, values: dict) -> dict:
    with helm.Chart.load(chart) as loaded:
        return loaded.merge_values(values)


class Rendered:
    """The objects of one values case, with the template each came from."""

    def __init__(self, case: str, values: dict, merged: dict, files: dict[str, str]) -> None:
        self.case = case
        self.values = values
        # The values the templates saw: the defaults with the case's values over them.
        self.values_merged = merged
        self.files = files
        self.objects: list[tuple[str, dict]] = []
        for template, text in sorted(files.items()):
            if template.endswith("NOTES.txt"):
                continue
            for document in yaml.safe_load_all(text):
                if document:
                    self.objects.append((template, document))

    def of_kind(self, kind: str) -> list[dict]:
        return [obj for _, obj in self.objects if obj.get("kind") == kind]

    def named(self, kind: str, name: str) -> dict:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        fail(f"no {kind} {name}")

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "manifests.yaml"
        with path.open("w") as out:
            for template, obj in self.objects:
                out.write(f"---\n# Source: {template}\n")
                yaml.safe_dump(obj, out, sort_keys=False)
        return path


def render_case(chart: Path, case: str, values: dict, out_dir: Path) -> Rendered:
    rendered = Rendered(case, values, merged_values(chart, values), render(chart, values))
    path = rendered.write(out_dir / case)
    kinds: dict[str, int] = {}
    for _, obj in rendered.objects:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    return rendered, f"{len(rendered.objects)} objects: {summary}; {path}"


# ---------------------------------------------------------------------------------------------
# kubernetes-validate


def validate(rendered: Rendered) -> str:
    errors = []
    validated = 0
    custom = 0
    for template, obj in rendered.objects:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        label = f"{template}: {kind} {obj.get('metadata', {}).get('name')}"
        if (api_version, kind) in CRD_KINDS:
            problems = check_custom_resource(obj)
            errors.extend(f"{label}: {problem}" for problem in problems)
            custom += 1
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            validated += 1
        except kubernetes_validate.utils.ValidationError as error:
            path = ".".join(str(item) for item in error.path)
            errors.append(f"{label}: {path}: {error.message}")
        except kubernetes_validate.utils.SchemaNotFoundError as error:
            # kubernetes-validate only warns about kinds it has no schema for; here an unknown
            # kind (a typo, a removed API version) is an error.
            errors.append(f"{label}: {error.message}")
    if errors:
        fail("; ".join(errors))
    return f"{validated} objects valid for Kubernetes {KUBERNETES_VERSION} (strict), {custom} custom resources checked structurally"


def check_custom_resource(obj: dict) -> list[str]:
    """ServiceMonitor (monitoring.coreos.com/v1): the fields the Prometheus Operator needs."""
    problems = []
    spec = obj.get("spec") or {}
    allowed = {"apiVersion", "kind", "metadata", "spec"}
    problems += [f"unexpected top-level field {key}" for key in obj if key not in allowed]
    metadata = obj.get("metadata") or {}
    if not metadata.get("name") or not metadata.get("namespace"):
        problems.append("metadata.name and metadata.namespace are required")
    if not isinstance(metadata.get("labels"), dict):
        problems.append("metadata.labels must be a map")
    known = {"endpoints", "selector", "namespaceSelector", "jobLabel", "targetLabels",
             "podTargetLabels", "sampleLimit", "attachMetadata"}
    problems += [f"unknown spec field {key}" for key in spec if key not in known]
    match_labels = (spec.get("selector") or {}).get("matchLabels")
    if not isinstance(match_labels, dict) or not match_labels:
        problems.append("spec.selector.matchLabels must be a non-empty map")
    names = (spec.get("namespaceSelector") or {}).get("matchNames")
    if names != [metadata.get("namespace")]:
        problems.append("spec.namespaceSelector.matchNames must be the release namespace")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        problems.append("spec.endpoints must be a non-empty list")
        return problems
    duration = re.compile(r"^[0-9]+(ms|s|m|h)$")
    for endpoint in endpoints:
        unknown = set(endpoint) - {"port", "path", "scheme", "interval", "scrapeTimeout"}
        problems += [f"unknown endpoint field {key}" for key in sorted(unknown)]
        if not isinstance(endpoint.get("port"), str) or not endpoint["port"]:
            problems.append("endpoint.port must name a Service port")
        if endpoint.get("path") != "/metrics":
            problems.append("endpoint.path must be /metrics")
        if endpoint.get("scheme") not in ("http", "https"):
            problems.append("endpoint.scheme must be http or https")
        for field in ("interval", "scrapeTimeout"):
            if field in endpoint and not duration.match(str(endpoint[field])):
                problems.append(f"endpoint.{field} {endpoint[field]!r} is not a duration")
    return problems


# ---------------------------------------------------------------------------------------------
# check-config through the real binaries


def pod_specs(rendered: Rendered) -> list[tuple[str, dict]]:
    """(kind/name, pod spec) of every workload."""
    specs = []
    for kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        for obj in rendered.of_kind(kind):
            specs.append((f"{kind}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]))
    return specs


def volume_source(spec: dict, name: str) -> dict:
    for volume in spec.get("volumes", []):
        if volume["name"] == name:
            return volume
    fail(f"volume {name} is mounted but not defined")


def mounted_file(rendered: Rendered, spec: dict, container: dict, path: str) -> tuple[str, str] | None:
    """What a container sees at `path`: ("configmap", text) for a ConfigMap key rendered by the
    chart, ("external", description) for a file of a Secret or an outside ConfigMap, ("emptydir",
    volume) for a file written at run time; None when nothing is mounted there."""
    best = None
    for mount in container.get("volumeMounts", []):
        mount_path = mount["mountPath"].rstrip("/")
        if mount.get("subPath"):
            if path == mount_path:
                best = (mount, mount["subPath"])
        elif path.startswith(mount_path + "/"):
            relative = path[len(mount_path) + 1:]
            if best is None or len(mount_path) > len(best[0]["mountPath"]):
                best = (mount, relative)
    if best is None:
        return None
    mount, relative = best
    volume = volume_source(spec, mount["name"])
    for source_kind in ("configMap", "secret"):
        if source_kind in volume:
            source = volume[source_kind]
            source_name = source.get("name") or source.get("secretName")
            items = source.get("items")
            key = relative
            if items is not None:
                matches = [item["key"] for item in items if item["path"] == relative]
                if not matches:
                    return None
                key = matches[0]
            if source_kind == "configMap":
                for configmap in rendered.of_kind("ConfigMap"):
                    if configmap["metadata"]["name"] == source_name:
                        if key not in configmap.get("data", {}):
                            return None
                        return ("configmap", configmap["data"][key])
            return ("external", f"{source_kind} {source_name} key {key}")
    if "emptyDir" in volume:
        return ("emptydir", mount["name"])
    fail(f"volume {mount['name']} has a source the check does not know")


def config_paths(config: dict, binary: str, subcommand: str) -> list[str]:
    """The files a configuration names that the process reads."""
    if binary == "orgtrail-aggregator":
        root_cert = [config.get("database", {}).get("ssl_root_cert")]
        if subcommand == "migrate":
            # migrate only connects to PostgreSQL: TLS files and the keyring are only named.
            return [path for path in root_cert if path]
        tls = config.get("tls", {})
        paths = [tls.get("cert"), tls.get("key"), tls.get("client_ca"),
                 config.get("encryption", {}).get("keyring")] + root_cert
    else:
        aggregator = config.get("aggregator", {})
        paths = [aggregator.get("ca"), aggregator.get("cert"), aggregator.get("key")]
    return [path for path in paths if path]


def pod_environment(container: dict, where: str) -> dict[str, str]:
    env = {}
    for variable in container.get("env", []):
        name = variable["name"]
        if "value" in variable:
            env[name] = str(variable["value"])
        elif "secretKeyRef" in variable.get("valueFrom", {}):
            if name not in SECRET_TEST_VALUES:
                fail(f"{where}: no test value for {name} (from a Secret): add one to SECRET_TEST_VALUES")
            env[name] = SECRET_TEST_VALUES[name]
        elif "fieldRef" in variable.get("valueFrom", {}):
            env[name] = "orgtrail-test-pod"
        else:
            fail(f"{where}: environment variable {name} has a source the check does not know")
    if container.get("envFrom"):
        fail(f"{where}: envFrom is not expected (every variable is listed)")
    return env


def expected_sources(values_sources: list[dict]) -> int:
    count = 0
    for source in values_sources:
        templated = any("{account}" in str(source.get(key, "")) for key in ("name", "bucket", "prefix", "role_arn"))
        count += len(set(source.get("accounts", []))) if templated else 1
    return count


def check_config(rendered: Rendered, bin_dir: Path) -> str:
    runs = []
    with tempfile.TemporaryDirectory(prefix="orgtrail-check-config-") as scratch:
        for where, spec in pod_specs(rendered):
            for container in spec.get("containers", []):
                command = container.get("command") or []
                binary = os.path.basename(command[0]) if command else ""
                if binary not in BINARIES:
                    continue
                label = f"{where}/{container['name']}"
                args = list(container.get("args", []))
                if "--config" not in args:
                    fail(f"{label}: no --config argument")
                config_path = args[args.index("--config") + 1]
                positional = [arg for index, arg in enumerate(args)
                              if not arg.startswith("-") and (index == 0 or args[index - 1] != "--config")]
                subcommand = positional[-1] if positional else "serve"
                mounted = mounted_file(rendered, spec, container, config_path)
                if mounted is None or mounted[0] != "configmap":
                    fail(f"{label}: {config_path} is not a key of a ConfigMap of the chart")
                text = mounted[1]
                try:
                    config = tomllib.loads(text)
                except tomllib.TOMLDecodeError as error:
                    fail(f"{label}: {config_path} is not valid TOML: {error}")
                for path in config_paths(config, binary, subcommand):
                    if mounted_file(rendered, spec, container, path) is None:
                        fail(f"{label}: the configuration names {path}, which the container does not mount")
                file = Path(scratch) / f"{len(runs)}-{os.path.basename(config_path)}"
                file.write_text(text)
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch}
                env.update(pod_environment(container, label))
                rules_directory = config.get("detections", {}).get("rules_directory")
                if binary == "orgtrail-aggregator" and rules_directory:
                    # check-config parses every rule of the folder: the chart's ConfigMap's
                    # rules are written to a scratch folder for it (an outside one's are not
                    # known here: an empty folder).
                    # migrate does not load rules: its pod mounts none.
                    rules = {} if subcommand == "migrate" else \
                        sigma_rules_mounted(rendered, spec, container, rules_directory, label)
                    folder = Path(scratch) / f"{len(runs)}-sigma-rules"
                    folder.mkdir()
                    for name, rule in rules.items():
                        (folder / name).write_text(rule)
                    env["ORGTRAIL_DETECTIONS__RULES_DIRECTORY"] = str(folder)
                # The subcommand the pod runs (serve, migrate) becomes check-config: the same
                # loading and validation, without starting.
                argv = [str(bin_dir / binary), "--config", str(file), "check-config"]
                result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
                output = result.stdout + result.stderr
                if result.returncode != 0:
                    fail(f"{label}: `{binary} check-config` exited {result.returncode}: {output.strip()[-1500:]}")
                leaked = [marker for marker in SECRET_MARKERS if marker in output]
                if leaked:
                    fail(f"{label}: check-config printed a secret ({', '.join(leaked)})")
                check_probe_ports(label, container, output, subcommand)
                if binary == "orgtrail-collector":
                    want = expected_sources(rendered.values_merged["collector"]["config"]["sources"])
                    got = output.count("SourceConfig {")
                    if got != want:
                        fail(f"{label}: check-config shows {got} sources, the values make {want}")
                runs.append(f"{label} {subcommand}")
    if not runs:
        fail("no container runs an orgtrail binary")
    return f"{len(runs)} configurations accepted: {', '.join(runs)}"


def sigma_rules_mounted(rendered: Rendered, spec: dict, container: dict, path: str, label: str) -> dict[str, str]:
    """The rules of the ConfigMap mounted as the folder `path` (empty for an outside one)."""
    mounts = [mount for mount in container.get("volumeMounts", [])
              if mount["mountPath"].rstrip("/") == path.rstrip("/") and not mount.get("subPath")]
    if len(mounts) != 1:
        fail(f"{label}: detections.rules_directory {path} is not a mounted folder")
    volume = volume_source(spec, mounts[0]["name"])
    if "configMap" not in volume:
        fail(f"{label}: detections.rules_directory {path} is not a ConfigMap")
    name = volume["configMap"]["name"]
    for configmap in rendered.of_kind("ConfigMap"):
        if configmap["metadata"]["name"] == name:
            rules = configmap.get("data", {})
            if not rules:
                fail(f"{label}: the Sigma rules ConfigMap {name} has no rules")
            return rules
    return {}


def check_probe_ports(label: str, container: dict, output: str, subcommand: str) -> None:
    """The probes' port is the health listener the configuration turns on, and metrics too."""
    if subcommand == "migrate":
        return
    ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
    for field, port_name in (("health_listen", "health"), ("metrics_listen", "metrics")):
        port = ports.get(port_name)
        if port is None:
            fail(f"{label}: no container port named {port_name}")
        if not re.search(rf"{field}: Some\(\s*0\.0\.0\.0:{port}\b", output):
            fail(f"{label}: check-config does not show {field} on port {port}")
    for probe in ("readinessProbe", "livenessProbe"):
        grpc = (container.get(probe) or {}).get("grpc") or {}
        if grpc.get("port") != ports["health"]:
            fail(f"{label}: {probe} is not a gRPC probe of the health port {ports['health']}")


# ---------------------------------------------------------------------------------------------
# security and consistency invariants


def check_invariants(rendered: Rendered) -> str:
    problems: list[str] = []
    values = rendered.values_merged

    if rendered.of_kind("Secret"):
        problems.append("the chart renders a Secret")

    for template, obj in rendered.objects:
        if obj["kind"] == "ConfigMap":
            for key, text in (obj.get("data") or {}).items():
                if re.search(r"postgres(ql)?://|password|BEGIN [A-Z ]*PRIVATE KEY|not-a-real", text, re.I):
                    problems.append(f"ConfigMap {obj['metadata']['name']} key {key} looks like it holds a secret")

    workloads = pod_specs(rendered)
    for where, spec in workloads:
        context = spec.get("securityContext") or {}
        expected = {"runAsNonRoot": True, "runAsUser": NONROOT, "runAsGroup": NONROOT, "fsGroup": NONROOT}
        for field, want in expected.items():
            if context.get(field) != want:
                problems.append(f"{where}: pod securityContext.{field} is {context.get(field)!r}, not {want!r}")
        if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                problems.append(f"{where}: {field}")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        if spec.get("enableServiceLinks") is not False:
            problems.append(f"{where}: enableServiceLinks is not false (Service variables could be named ORGTRAIL_*)")
        for volume in spec.get("volumes", []):
            if "hostPath" in volume:
                problems.append(f"{where}: hostPath volume {volume['name']}")
            if "secret" in volume:
                mode = volume["secret"].get("defaultMode")
                if mode is None or mode & 0o007:
                    problems.append(f"{where}: Secret volume {volume['name']} is readable by others (defaultMode {mode!r})")
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            label = f"{where}/{container['name']}"
            security = container.get("securityContext") or {}
            if security.get("runAsNonRoot") is not True:
                problems.append(f"{label}: runAsNonRoot is not true")
            if security.get("runAsUser", context.get("runAsUser")) in (None, 0):
                problems.append(f"{label}: runs as root")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{label}: readOnlyRootFilesystem is not true")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{label}: allowPrivilegeEscalation is not false")
            if security.get("privileged"):
                problems.append(f"{label}: privileged")
            capabilities = security.get("capabilities") or {}
            if "ALL" not in (capabilities.get("drop") or []):
                problems.append(f"{label}: capabilities do not drop ALL")
            if capabilities.get("add"):
                problems.append(f"{label}: capabilities added: {capabilities['add']}")
            if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{label}: seccompProfile is not RuntimeDefault")
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(bound) or {}):
                        problems.append(f"{label}: no {bound}.{resource}")
            for variable in container.get("env", []):
                if re.search(r"DATABASE_URL|TOKEN|PASSWORD|SECRET|KMS_KEY", variable["name"]) and "value" in variable:
                    problems.append(f"{label}: {variable['name']} is a plain value, not from a Secret")
            writable = {m["mountPath"] for m in container.get("volumeMounts", []) if not m.get("readOnly")}
            if container in spec.get("containers", []) and "/tmp" not in writable:
                problems.append(f"{label}: no writable /tmp (the root filesystem is read-only)")

    deployments = {obj["metadata"]["name"]: obj for obj in rendered.of_kind("Deployment")}
    for name, deployment in deployments.items():
        template = deployment["spec"]["template"]
        for container in template["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                if "grpc" not in (container.get(probe) or {}):
                    problems.append(f"Deployment/{name}/{container['name']}: no gRPC {probe}")
        # A configuration change must roll the pods: the annotation is the ConfigMap's digest.
        annotation = (template["metadata"].get("annotations") or {}).get("checksum/config")
        configmap_template = f"orgtrail/templates/{name.removeprefix(f'{RELEASE}-')}-configmap.yaml"
        text = rendered.files.get(configmap_template)
        if text is None or annotation != hashlib.sha256(text.encode()).hexdigest():
            problems.append(f"Deployment/{name}: checksum/config is not the digest of {configmap_template}")
        selector = deployment["spec"]["selector"]["matchLabels"]
        if not selector.items() <= template["metadata"]["labels"].items():
            problems.append(f"Deployment/{name}: the selector does not match the pod labels")

    aggregator = deployments.get(f"{RELEASE}-aggregator")
    collector = deployments.get(f"{RELEASE}-collector")
    if aggregator is None or collector is None:
        problems.append("the aggregator and collector Deployments are not both rendered")
    else:
        main = aggregator["spec"]["template"]["spec"]["containers"][0]
        if "grpc" not in (main.get("startupProbe") or {}):
            problems.append("the aggregator has no gRPC startup probe (migrations run at start)")
        grace = aggregator["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        if grace <= values["aggregator"]["config"]["server"]["shutdown_grace_seconds"]:
            problems.append("the aggregator's termination grace period does not exceed its drain")
        pod_labels = aggregator["spec"]["template"]["metadata"]["labels"]
        autoscaling = values["aggregator"]["autoscaling"]["enabled"]
        hpas = rendered.of_kind("HorizontalPodAutoscaler")
        if autoscaling:
            if "replicas" in aggregator["spec"]:
                problems.append("with autoscaling, the Deployment sets replicas (an upgrade would reset the HPA's count)")
            if [hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas] != [aggregator["metadata"]["name"]]:
                problems.append("the HPA does not target the aggregator")
        elif hpas:
            problems.append("an HPA is rendered with autoscaling off")
        for pdb in rendered.of_kind("PodDisruptionBudget"):
            if not pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items():
                problems.append("the PodDisruptionBudget does not select the aggregator's pods")
        service = rendered.named("Service", f"{RELEASE}-aggregator")
        if not service["spec"]["selector"].items() <= pod_labels.items():
            problems.append("the aggregator Service does not select the aggregator's pods")
        port_names = {port["name"] for port in main.get("ports", [])}
        for port in service["spec"]["ports"]:
            if port["targetPort"] not in port_names:
                problems.append(f"the Service's port {port['name']} targets no container port")
        if "health" in {port["name"] for port in service["spec"]["ports"]}:
            problems.append("the plaintext health port is exposed by the Service")

    problems += check_network_policies(rendered, values)
    problems += check_hooks(rendered)
    problems += check_service_monitors(rendered, values)
    problems += check_service_accounts(rendered, values)

    if problems:
        fail("; ".join(problems))
    return f"{len(workloads)} workloads, {len(rendered.objects)} objects"


def selects(policy: dict, labels: dict) -> bool:
    match = policy["spec"]["podSelector"].get("matchLabels") or {}
    return match.items() <= labels.items() and not policy["spec"]["podSelector"].get("matchExpressions")


def check_network_policies(rendered: Rendered, values: dict) -> list[str]:
    problems = []
    policies = rendered.of_kind("NetworkPolicy")
    for policy in policies:
        name = policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            if not rule.get("from"):
                problems.append(f"NetworkPolicy {name}: an ingress rule without peers allows every source")
            if not rule.get("ports"):
                problems.append(f"NetworkPolicy {name}: an ingress rule without ports allows every port")
        for rule in policy["spec"].get("egress", []):
            if not rule.get("to"):
                problems.append(f"NetworkPolicy {name}: an egress rule without peers allows every destination")
            if not rule.get("ports"):
                problems.append(f"NetworkPolicy {name}: an egress rule without ports allows every port")
    if not values["networkPolicy"]["enabled"]:
        return problems
    postgres_port = values["networkPolicy"]["postgres"]["port"]
    allowed_egress = {
        "aggregator": {53, 443, postgres_port},
        "collector": {53, 443, values["aggregator"]["ports"]["grpc"]},
        "migrate": {53, postgres_port},
    }
    for where, spec in pod_specs(rendered):
        obj = next(o for _, o in rendered.objects if f"{o['kind']}/{o['metadata']['name']}" == where)
        labels = obj["spec"]["template"]["metadata"]["labels"]
        component = labels.get("app.kubernetes.io/component")
        covering = [p for p in policies if selects(p, labels)]
        types = {t for p in covering for t in p["spec"].get("policyTypes", [])}
        if types != {"Ingress", "Egress"}:
            problems.append(f"{where}: not isolated for ingress and egress by a NetworkPolicy")
            continue
        ports = {port["port"] for p in covering for rule in p["spec"].get("egress", []) for port in rule["ports"]}
        extra = ports - allowed_egress.get(component, set())
        if extra:
            problems.append(f"{where}: egress allowed to ports {sorted(extra)}")
        if component == "aggregator":
            collector_labels = next(
                (o["spec"]["template"]["metadata"]["labels"] for o in rendered.of_kind("Deployment")
                 if o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "collector"), {})
            reaches = any(
                peer.get("podSelector", {}).get("matchLabels", {}).items() <= collector_labels.items()
                and "podSelector" in peer and "namespaceSelector" not in peer
                for p in covering for rule in p["spec"].get("ingress", []) for peer in rule["from"])
            if not reaches:
                problems.append("the collectors may not call the aggregator")
    return problems


def check_hooks(rendered: Rendered) -> list[str]:
    """A pre-install hook runs before the release's other objects exist: whatever a hook Job
    mounts from the chart must be a hook of a lower weight."""
    problems = []
    hooks = {}
    for _, obj in rendered.objects:
        annotations = obj["metadata"].get("annotations") or {}
        if "helm.sh/hook" in annotations:
            hooks[(obj["kind"], obj["metadata"]["name"])] = (
                set(annotations["helm.sh/hook"].split(",")), int(annotations.get("helm.sh/hook-weight", "0")))
    chart_configmaps = {obj["metadata"]["name"] for obj in rendered.of_kind("ConfigMap")}
    for job in rendered.of_kind("Job"):
        name = job["metadata"]["name"]
        if ("Job", name) not in hooks:
            problems.append(f"Job {name} is not a hook")
            continue
        events, weight = hooks[("Job", name)]
        if events != {"pre-install", "pre-upgrade"}:
            problems.append(f"Job {name}: hooks {sorted(events)}, not pre-install and pre-upgrade")
        spec = job["spec"]["template"]["spec"]
        if spec.get("serviceAccountName"):
            problems.append(f"Job {name}: uses the ServiceAccount {spec['serviceAccountName']}, which a pre-install hook runs before")
        for volume in spec.get("volumes", []):
            configmap = (volume.get("configMap") or {}).get("name")
            if configmap in chart_configmaps:
                hook = hooks.get(("ConfigMap", configmap))
                if hook is None or not events <= hook[0] or hook[1] >= weight:
                    problems.append(f"Job {name} mounts ConfigMap {configmap}, which is not a hook of the same events and a lower weight")
        labels = job["spec"]["template"]["metadata"]["labels"]
        for policy in rendered.of_kind("NetworkPolicy"):
            if selects(policy, labels):
                hook = hooks.get(("NetworkPolicy", policy["metadata"]["name"]))
                if hook is None or not events <= hook[0] or hook[1] >= weight:
                    problems.append(f"Job {name}: its NetworkPolicy {policy['metadata']['name']} is not a hook before it")
    return problems


def check_service_monitors(rendered: Rendered, values: dict) -> list[str]:
    monitors = rendered.of_kind("ServiceMonitor")
    if not values["serviceMonitor"]["enabled"]:
        return ["ServiceMonitors rendered while disabled"] if monitors else []
    problems = []
    if len(monitors) != 2:
        problems.append(f"{len(monitors)} ServiceMonitors, not 2 (aggregator, collector)")
    services = rendered.of_kind("Service")
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        matched = [s for s in services if selector.items() <= (s["metadata"].get("labels") or {}).items()]
        if len(matched) != 1:
            problems.append(f"ServiceMonitor {monitor['metadata']['name']} selects {len(matched)} Services")
            continue
        port_names = {port["name"] for port in matched[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint["port"] not in port_names:
                problems.append(f"ServiceMonitor {monitor['metadata']['name']}: the Service has no port {endpoint['port']}")
        for key, value in values["serviceMonitor"]["labels"].items():
            if monitor["metadata"]["labels"].get(key) != value:
                problems.append(f"ServiceMonitor {monitor['metadata']['name']}: label {key} missing")
    return problems


def check_service_accounts(rendered: Rendered, values: dict) -> list[str]:
    problems = []
    accounts = {a["metadata"]["name"]: a for a in rendered.of_kind("ServiceAccount")}
    for component in ("aggregator", "collector"):
        role = values[component]["serviceAccount"]["roleArn"]
        deployment = rendered.named("Deployment", f"{RELEASE}-{component}")
        name = deployment["spec"]["template"]["spec"].get("serviceAccountName")
        account = accounts.get(name)
        if values[component]["serviceAccount"]["create"] and account is None:
            problems.append(f"{component}: ServiceAccount {name} is not rendered")
            continue
        if account is not None:
            annotation = (account["metadata"].get("annotations") or {}).get("eks.amazonaws.com/role-arn")
            if annotation != (role or None):
                problems.append(f"{component}: ServiceAccount annotation {annotation!r}, values say {role!r}")
    return problems


# ---------------------------------------------------------------------------------------------
# the schema refuses bad values


def check_bad_values(chart: Path, directory: Path) -> str:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        fail(f"no bad values files in {directory}")
    problems = []
    for file in files:
        text = file.read_text()
        expected = re.findall(r"^# expect: (.+)$", text, re.M)
        if not expected:
            problems.append(f"{file.name}: no '# expect: …' line")
            continue
        values = yaml.safe_load(text) or {}
        try:
            render(chart, values)
        except helm.HelmValuesError as error:
            message = str(error)
            missing = [want for want in expected if want.strip() not in message]
            if missing:
                problems.append(f"{file.name}: refused, but not for {missing} ({' '.join(message.split())[:300]})")
            continue
        except helm.HelmError as error:
            problems.append(f"{file.name}: failed in the templates, not the schema: {' '.join(str(error).split())[:300]}")
            continue
        problems.append(f"{file.name}: rendered (the schema let it through)")
    if problems:
        fail("; ".join(problems))
    return f"{len(files)} bad values files refused by values.schema.json"


# ---------------------------------------------------------------------------------------------
# the Dockerfile


RUNTIME_IMAGE = "gcr.io/distroless/cc-debian12:nonroot"
# What the build needs from the context (.dockerignore must not drop it).
BUILD_INPUTS = ["Cargo.toml", "Cargo.lock", "crates", "services", "proto", "migrations", "tests", "xtask"]


def check_dockerfile(workspace: Path, rendered: Rendered | None) -> str:
    problems = []
    try:
        commands = dockerfile.parse_file(str(workspace / "Dockerfile"))
    except dockerfile.GoParseError as error:
        fail(f"the Dockerfile does not parse: {error}")
    stages = [command for command in commands if command.cmd.upper() == "FROM"]
    if len(stages) < 2:
        problems.append("not a multi-stage build")
    elif not re.match(r"^(docker\.io/library/)?rust:[^ ]*bookworm$", stages[0].value[0]):
        problems.append(f"the build stage is {stages[0].value[0]}, not the official rust image (bookworm)")
    final_from = max(index for index, command in enumerate(commands) if command.cmd.upper() == "FROM")
    final = commands[final_from:]
    if stages and stages[-1].value[0] != RUNTIME_IMAGE:
        problems.append(f"the runtime stage is {stages[-1].value[0]}, not {RUNTIME_IMAGE}")
    users = [command.value[0] for command in final if command.cmd.upper() == "USER"]
    if not users or users[-1].split(":")[0] != str(NONROOT) or users[-1].split(":")[-1] != str(NONROOT):
        problems.append(f"the image does not run as {NONROOT}:{NONROOT} (USER {users[-1] if users else 'unset'})")
    runs = " ".join(" ".join(command.value) for command in commands[:final_from] if command.cmd.upper() == "RUN")
    copies = [command for command in final if command.cmd.upper() == "COPY"]
    destinations = [command.value[-1].rstrip("/") for command in copies]

    # Every binary of services/*, from its package, into the directory the chart runs them from.
    binaries = {}
    for manifest in sorted(workspace.glob("services/*/Cargo.toml")):
        cargo = tomllib.loads(manifest.read_text())
        for binary in cargo.get("bin", []):
            binaries[binary["name"]] = cargo["package"]["name"]
    if not binaries:
        problems.append("no [[bin]] in services/*/Cargo.toml")
    for binary, package in sorted(binaries.items()):
        if f"--package {package}" not in runs and f"-p {package}" not in runs:
            problems.append(f"package {package} is not built")
        if not re.search(rf"target/release/{re.escape(binary)}(\s|$)", runs):
            problems.append(f"binary {binary} is not copied out of the build")
    if "--release" not in runs or "--locked" not in runs:
        problems.append("the build is not --release --locked")
    if rendered is not None:
        for where, spec in pod_specs(rendered):
            for container in spec.get("containers", []):
                command = (container.get("command") or [""])[0]
                if os.path.basename(command) in binaries and os.path.dirname(command) not in destinations:
                    problems.append(f"{where} runs {command}, but the image copies the binaries to {destinations}")

    # Migrations are compiled in, which is why the image carries none.
    store = (workspace / "services/aggregator/src/store/mod.rs").read_text()
    if "sqlx::migrate!(" not in store:
        problems.append("the aggregator no longer embeds its migrations (sqlx::migrate!): the image must carry migrations/")

    ignored = [line.strip().rstrip("/") for line in (workspace / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for needed in BUILD_INPUTS:
        if needed in ignored:
            problems.append(f".dockerignore drops {needed}, which the build needs")
    for heavy in ("target", ".git"):
        if heavy not in ignored:
            problems.append(f".dockerignore does not drop {heavy}/")

    if problems:
        fail("; ".join(problems))
    return f"{len(stages)} stages, {len(binaries)} binaries ({', '.join(sorted(binaries))}) on {RUNTIME_IMAGE} as {NONROOT}"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True, help="the repository's root")
    parser.add_argument("--chart", type=Path, required=True)
    parser.add_argument("--values", action="append", default=[], metavar="CASE=FILE",
                        help="a values case besides the defaults (repeatable)")
    parser.add_argument("--bad-values", type=Path, required=True, help="directory of values files the schema must refuse")
    parser.add_argument("--bin-dir", type=Path, required=True, help="where orgtrail-aggregator and orgtrail-collector are")
    parser.add_argument("--out", type=Path, required=True, help="where the rendered manifests are written")
    arguments = parser.parse_args()

    cases: list[tuple[str, dict]] = [("default", {})]
    for case in arguments.values:
        name, _, file = case.partition("=")
        cases.append((name, yaml.safe_load(Path(file).read_text()) or {}))

    report = Report()
    default_render = None
    for name, values in cases:
        report.run(f"helm lint --strict [{name}]", lint, arguments.chart, values)
    for name, values in cases:
        rendered = report.run(f"render [{name}]", render_case, arguments.chart, name, values, arguments.out)
        if rendered is None:
            continue
        if name == "default":
            default_render = rendered
        report.run(f"kubernetes-validate --strict {KUBERNETES_VERSION} [{name}]", validate, rendered)
        report.run(f"check-config [{name}]", check_config, rendered, arguments.bin_dir)
        report.run(f"security invariants [{name}]", check_invariants, rendered)
    report.run("values.schema.json refuses bad values", check_bad_values, arguments.chart, arguments.bad_values)
    report.run("Dockerfile", check_dockerfile, arguments.workspace, default_render)

    if report.failures:
        print(f"deploy checks failed: {', '.join(report.failures)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
