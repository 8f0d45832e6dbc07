"""Lint and render helm/plcfleet, then validate every rendered manifest and every
Kubernetes manifest under deploy/ with `kubernetes-validate --strict`.

Run by tests/k8s.rs:  python k8s_check.py <workspace root> <scratch dir> [extra.yaml ...]
(the extra files: objects the controller makes, validated the same way)
Exit 0: all good; any failure prints what and where, and exits 1.
"""
import glob
import json
import os
import subprocess
import sys

import helm_python
import jsonschema
import yaml

root, scratch, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
chart_dir = os.path.join(root, "helm", "plcfleet")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


# 1. Lint, strict: warnings are errors (info, such as "icon is recommended", is not).
report = helm_python.lint(chart_dir, strict=True)
for m in report["messages"]:
    if m["severity"] >= 2:
        fail(f"helm lint: {m['path']}: {m['error']}")
for e in report["errors"]:
    fail(f"helm lint: {e}")

# 2. Render with the defaults and with every option changed.
NON_DEFAULT = {
    "image": {"repository": "registry.example/plcfleet/controller", "tag": "9.9.9",
              "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "concurrency": 16,
    "logLevel": "debug,kube=info",
    "serviceAccount": {"create": False, "name": "existing-sa"},
    "metrics": {"port": 9200,
                "serviceMonitor": {"enabled": True, "interval": "15s",
                                   "labels": {"release": "prom"}}},
    "podAnnotations": {"a": "b"},
    "podLabels": {"team": "ot"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "ot", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {},
    "apiToken": {"existingSecret": "my-controller-token"},
}
chart = helm_python.Chart.load(chart_dir)
files = []
renders = {}
for label, values in (("default", None), ("custom", NON_DEFAULT)):
    out = chart.render(values, name="plcfleet", namespace="plcfleet", is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            if "deploy/crd/simulatorfleets.yaml" not in text:
                fail(f"{label}: NOTES.txt does not give the CRD upgrade path")
            continue
        for n, doc in enumerate(yaml.safe_load_all(text)):
            if not doc:
                continue
            docs.append(doc)
            f = os.path.join(scratch, f"{label}-{os.path.basename(path)}-{n}.yaml")
            with open(f, "w") as fh:
                yaml.safe_dump(doc, fh)
            files.append(f)
    renders[label] = docs
    print(f"rendered {label}: {len(docs)} manifests")

# Values the schema must refuse.
for bad in ({"concurrency": 0}, {"metrics": {"port": "http"}}, {"replicas": 2}):
    try:
        chart.render(bad, name="plcfleet", namespace="plcfleet", is_install=True)
        fail(f"values.schema.json accepted {bad}")
    except helm_python.HelmError:
        pass


def kinds(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


for label, docs in renders.items():
    (dep,) = kinds(docs, "Deployment")
    spec = dep["spec"]
    if spec["replicas"] != 1 or spec["strategy"]["type"] != "Recreate":
        fail(f"{label}: the Deployment must be one replica with the Recreate strategy")
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    sc = c["securityContext"]
    if not (pod["securityContext"]["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
            and sc["capabilities"]["drop"] == ["ALL"] and not sc["allowPrivilegeEscalation"]
            and sc["seccompProfile"]["type"] == "RuntimeDefault"):
        fail(f"{label}: the controller's security context is not restricted")
    for d in docs:
        labels = d["metadata"].get("labels", {})
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                  "app.kubernetes.io/version", "app.kubernetes.io/managed-by"):
            if k not in labels:
                fail(f"{label}: {d['kind']} {d['metadata']['name']} lacks label {k}")
    for role in kinds(docs, "ClusterRole"):
        for rule in role["rules"]:
            if "*" in rule["verbs"] or "*" in rule["resources"]:
                fail(f"{label}: ClusterRole has a wildcard rule: {rule}")
        # Exactly what kube_controller does, and nothing more.
        granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
                   for r in rule["resources"] for v in rule["verbs"]}
        owned = {("", r, v) for r in ("pods", "services")
                 for v in ("list", "watch", "create", "patch", "delete")}
        wanted = owned | {("plcfleet.io", "simulatorfleets", "list"),
                          ("plcfleet.io", "simulatorfleets", "watch"),
                          ("plcfleet.io", "simulatorfleets/status", "patch"),
                          ("events.k8s.io", "events", "create"),
                          ("events.k8s.io", "events", "patch")}
        if granted != wanted:
            fail(f"{label}: ClusterRole grants {sorted(granted - wanted)} beyond what the "
                 f"controller does, and lacks {sorted(wanted - granted)}")
# The controller's command line, for tests/k8s.rs to hand to the real CLI parser.
for label, docs in renders.items():
    (dep,) = kinds(docs, "Deployment")
    with open(os.path.join(scratch, f"{label}-args.json"), "w") as fh:
        json.dump(dep["spec"]["template"]["spec"]["containers"][0]["args"], fh)
sm_default = kinds(renders["default"], "ServiceMonitor")
sm_custom = kinds(renders["custom"], "ServiceMonitor")
if sm_default or len(sm_custom) != 1:
    fail("the ServiceMonitor must exist exactly when metrics.serviceMonitor.enabled")
if kinds(renders["custom"], "ServiceAccount"):
    fail("serviceAccount.create=false still renders a ServiceAccount")


# The restricted Pod Security Standard
# (https://kubernetes.io/docs/concepts/security/pod-security-standards/), baseline
# included, for one pod spec. Returns what breaks it.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}


def restricted(pod):
    bad = []
    psc = pod.get("securityContext") or {}
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(k):
            bad.append(f"{k}: true")
    for v in pod.get("volumes") or []:
        kinds_ = set(v) - {"name"}
        if not kinds_ <= RESTRICTED_VOLUMES:
            bad.append(f"volume {v.get('name')}: {sorted(kinds_ - RESTRICTED_VOLUMES)}")
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            bad.append(f"sysctl {s.get('name')}")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        bad.append("windowsOptions.hostProcess")
    if psc.get("runAsUser") == 0:
        bad.append("pod runAsUser: 0")
    containers = [("container", c) for c in pod.get("containers") or []]
    containers += [("initContainer", c) for c in pod.get("initContainers") or []]
    containers += [("ephemeralContainer", c) for c in pod.get("ephemeralContainers") or []]
    if not containers:
        bad.append("no containers")
    for what, c in containers:
        at = f"{what} {c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            bad.append(f"{at}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{at}: allowPrivilegeEscalation is not false")
        if not (sc.get("runAsNonRoot") is True
                or (psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)):
            bad.append(f"{at}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            bad.append(f"{at}: runAsUser: 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{at}: seccompProfile {seccomp!r}, not RuntimeDefault or Localhost")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{at}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            bad.append(f"{at}: capabilities add {caps['add']}")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                bad.append(f"{at}: hostPort {p['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            bad.append(f"{at}: procMount {sc['procMount']}")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            bad.append(f"{at}: windowsOptions.hostProcess")
    return bad


def pod_specs(doc):
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                "ReplicationController"):
        return [spec["template"]["spec"]]
    return []


checked = 0
for label, docs in renders.items():
    for d in docs:
        for pod in pod_specs(d):
            checked += 1
            for why in restricted(pod):
                fail(f"{label}: {d['kind']} {d['metadata']['name']} breaks the restricted "
                     f"Pod Security Standard: {why}")
for f in extra:
    with open(f) as fh:
        d = yaml.safe_load(fh)
    for pod in pod_specs(d):
        checked += 1
        for why in restricted(pod):
            fail(f"{os.path.basename(f)}: breaks the restricted Pod Security Standard: {why}")
        if not restricted(pod):
            print(f"restricted ok {os.path.basename(f)}")
# The check itself catches what it must (a pod that breaks each rule once).
probe = {"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
         "containers": [{"name": "c", "securityContext": {
             "privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}]}
if len(restricted(probe)) != 8:
    fail(f"the restricted check missed something: {restricted(probe)}")
print(f"restricted Pod Security Standard: {checked} pod templates")

# The controller API's token: a Secret the chart makes, or one of the user's.
for label, want in (("default", "plcfleet-api-token"), ("custom", "my-controller-token")):
    (dep,) = kinds(renders[label], "Deployment")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env.get("PLCFLEET_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if ref != {"name": want, "key": "token"}:
        fail(f"{label}: PLCFLEET_TOKEN comes from {ref}, not Secret {want} key token")
secrets = kinds(renders["default"], "Secret")
if [s["metadata"]["name"] for s in secrets] != ["plcfleet-api-token"] \
        or len(secrets[0]["data"]["token"]) < 40:
    fail(f"default: the chart must make the Secret plcfleet-api-token with a token: {secrets}")
if kinds(renders["custom"], "Secret"):
    fail("custom: apiToken.existingSecret still renders a Secret")

# 3. The chart's CRD and deploy/: every Kubernetes manifest.
crd_docs = []
for f in sorted(glob.glob(os.path.join(chart_dir, "crds", "*.yaml"))
                + glob.glob(os.path.join(root, "deploy", "**", "*.yaml"), recursive=True)):
    with open(f) as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]
    if not any("apiVersion" in d for d in docs):
        print(f"skip {os.path.relpath(f, root)}: a plcfleet manifest, not a Kubernetes one")
        continue
    crd_docs += [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    files.append(f)

files += extra

# Custom resources: kubernetes-validate knows only built-in kinds. A SimulatorFleet is
# checked against our CRD's schema here; a ServiceMonitor (Prometheus Operator) is not.
schemas = {}
for crd in crd_docs:
    for v in crd["spec"]["versions"]:
        key = (f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])
        schemas[key] = v["schema"]["openAPIV3Schema"]
builtin = []
for f in files:
    with open(f) as fh:
        doc = yaml.safe_load(fh)
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in schemas:
        try:
            jsonschema.validate(doc, schemas[key])
            print(f"ok {os.path.relpath(f, root)} against the {key[1]} CRD")
        except jsonschema.ValidationError as e:
            fail(f"{f}: {e.message} at {list(e.absolute_path)}")
    elif key == ("monitoring.coreos.com/v1", "ServiceMonitor"):
        print(f"skip {os.path.basename(f)}: ServiceMonitor's schema is the Prometheus "
              "Operator's, not bundled with kubernetes-validate")
    elif key[1] == "SimulatorFleet":
        fail(f"{f}: no SimulatorFleet CRD found to validate it against")
    else:
        builtin.append(f)

kv = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
r = subprocess.run([kv, "--strict", *builtin], capture_output=True, text=True)
print(r.stdout, end="")
print(r.stderr, end="", file=sys.stderr)
if r.returncode != 0:
    fail(f"kubernetes-validate --strict exited {r.returncode}")
print(f"kubernetes-validate --strict: {len(builtin)} files")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all good")
