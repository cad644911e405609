#!/usr/bin/python3
# check_contrib.py SOURCE_DIR: check contrib/ (no cluster, no Docker, no systemd needed) and
# print, as JSON, {"errors": [...], "run": {...}} where "run" is what the Lua test needs to run
# the ConfigMap's scripts the way the Deployment does: {"files": {name: text}, "mount": dir,
# "args": [...], "env": {...}, "metrics_port": n, "live": path, "ready": path,
# "grace": s, "shutdown_timeout": s}. Exit status 0 either way (test_contrib.lua asserts).
#   k8s: every file parses (python3-yaml); Deployment, ConfigMap and PodDisruptionBudget
#        agree with each other (selectors, names, the mount against the script path, the
#        metrics port against the probes and the Prometheus annotations, the grace period
#        against --shutdown-timeout); the kustomization lists every manifest.
#   docker: final stage debian:12-slim, non-root USER, ENTRYPOINT ["jetlua", "run"], a
#        HEALTHCHECK on /livez at the --metrics port of CMD; the build stage installs every
#        Debian package CMakeLists.txt asks for.
#   systemd: the unit has what an operator's unit needs (Type=notify, ExecReload,
#        Restart=on-failure, a dedicated user, hardening) and a stop timeout above
#        --shutdown-timeout.
import json
import os
import re
import sys

import yaml

src = sys.argv[1]
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def opt(args, name):
    """value of --name=V or --name V in an argument list, else None"""
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return a[len(name) + 1:]
        if a == name and i + 1 < len(args):
            return args[i + 1]
    return None


def seconds(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|min)?", str(v).strip())
    if not m:
        return None
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1)


# ---- Kubernetes ----
k8s = os.path.join(src, "contrib", "k8s")
docs = {}
manifests = sorted(f for f in os.listdir(k8s) if f.endswith(".yaml") and f != "kustomization.yaml")
for f in manifests:
    try:
        with open(os.path.join(k8s, f)) as fh:
            for d in yaml.safe_load_all(fh):
                if d is None:
                    continue
                check(isinstance(d, dict) and "apiVersion" in d and "kind" in d and "metadata" in d,
                      "%s: a document without apiVersion/kind/metadata" % f)
                docs.setdefault(d.get("kind"), []).append(d)
    except yaml.YAMLError as e:
        errors.append("%s: %s" % (f, e))

with open(os.path.join(k8s, "kustomization.yaml")) as fh:
    kust = yaml.safe_load(fh)
check(sorted(kust.get("resources", [])) == manifests,
      "kustomization.yaml resources %s != the manifests %s" % (kust.get("resources"), manifests))

run = {}
for kind in ("Deployment", "ConfigMap", "PodDisruptionBudget"):
    check(len(docs.get(kind, [])) == 1, "expected one %s, found %d" % (kind, len(docs.get(kind, []))))
if not errors:
    dep, cm, pdb = docs["Deployment"][0], docs["ConfigMap"][0], docs["PodDisruptionBudget"][0]
    spec = dep["spec"]
    tmpl = spec["template"]
    pod = tmpl["spec"]
    labels = tmpl["metadata"].get("labels", {})
    sel = spec["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in sel.items()), "Deployment selector does not match its pod labels")
    check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
          "PodDisruptionBudget selector does not match the pods")
    check(spec.get("replicas", 1) >= 2, "replicas < 2: the point is several pods sharing one durable")
    ns = {d["metadata"].get("namespace") for ds in docs.values() for d in ds}
    check(len(ns) == 1, "manifests in different namespaces: %s" % ns)

    c = [x for x in pod["containers"] if x["name"] == "jetlua"]
    check(len(c) == 1, "no container named jetlua")
    c = c[0]
    args = [str(a) for a in c.get("args", [])]
    check(not c.get("command"), "command overrides the image's ENTRYPOINT [jetlua, run]")
    check("--watch" in args, "args lack --watch (ConfigMap hot reload)")
    metrics = opt(args, "--metrics")
    port = metrics.rsplit(":", 1)[1] if metrics and ":" in metrics else None
    port = int(port) if port and port.isdigit() else None
    check(metrics is not None and metrics.rsplit(":", 1)[0] in ("", "0.0.0.0"),
          "--metrics must listen on every interface for the kubelet's probes: %s" % metrics)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("metrics") == port, "container port 'metrics' %s != --metrics port %s" % (ports.get("metrics"), port))

    def probe_port(p):
        v = p["httpGet"]["port"]
        return ports.get(v) if isinstance(v, str) else v

    live, ready = c.get("livenessProbe", {}), c.get("readinessProbe", {})
    check(live.get("httpGet", {}).get("path") == "/livez", "livenessProbe is not GET /livez")
    check(ready.get("httpGet", {}).get("path") == "/readyz", "readinessProbe is not GET /readyz")
    check(live and probe_port(live) == port and ready and probe_port(ready) == port, "probes not on the metrics port")
    ann = tmpl["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true", "no prometheus.io/scrape: \"true\" annotation")
    check(ann.get("prometheus.io/port") == str(port), "prometheus.io/port %s != %s" % (ann.get("prometheus.io/port"), port))
    check(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path is not /metrics")

    st = seconds(opt(args, "--shutdown-timeout") or 10)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > st, "terminationGracePeriodSeconds %s is not above --shutdown-timeout %s" % (grace, st))

    sc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, "pod securityContext lacks runAsNonRoot: true")
    check(csc.get("allowPrivilegeEscalation") is False, "container may escalate privileges")
    check(csc.get("readOnlyRootFilesystem") is True, "root file system not read-only")

    script = args[-1] if args else ""
    mount = os.path.dirname(script)
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == mount]
    check(len(mounts) == 1, "no volume mounted at %s, the script's directory" % mount)
    if mounts:
        m = mounts[0]
        check("subPath" not in m, "the scripts are mounted with subPath: the kubelet never updates those")
        v = vols.get(m["name"], {})
        check(v.get("configMap", {}).get("name") == cm["metadata"]["name"],
              "the volume at %s is not the ConfigMap %s" % (mount, cm["metadata"]["name"]))
    check(os.path.basename(script) in cm.get("data", {}), "the script %s is not a key of the ConfigMap" % script)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    run = {"files": cm.get("data", {}), "mount": mount, "args": args, "env": env, "metrics_port": port,
           "live": live.get("httpGet", {}).get("path"), "ready": ready.get("httpGet", {}).get("path"),
           "grace": grace, "shutdown_timeout": st}

# ---- Docker ----
with open(os.path.join(src, "contrib", "docker", "Dockerfile")) as fh:
    text = re.sub(r"\\\n", " ", fh.read())
lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
stages, cur = [], None
for l in lines:
    word, _, rest = l.partition(" ")
    if word.upper() == "FROM":
        cur = {"from": rest.split()[0], "lines": []}
        stages.append(cur)
    elif cur is not None:
        cur["lines"].append((word.upper(), rest.strip()))
check(len(stages) >= 2, "Dockerfile: expected a build stage and a runtime stage")
if stages:
    final = stages[-1]
    last = {}
    for w, rest in final["lines"]:
        last[w] = rest
    check(final["from"] == "debian:12-slim", "Dockerfile: the image is not FROM debian:12-slim")
    user = last.get("USER", "root").split(":")[0]
    check(user not in ("", "root", "0"), "Dockerfile: runs as root")
    check(last.get("ENTRYPOINT") and json.loads(last["ENTRYPOINT"]) == ["jetlua", "run"],
          "Dockerfile: ENTRYPOINT is not [\"jetlua\", \"run\"]")
    cmd = json.loads(last.get("CMD", "[]"))
    m = opt(cmd, "--metrics")
    hc = last.get("HEALTHCHECK", "")
    check(m is not None and re.search(r"127\.0\.0\.1:%s/livez" % re.escape(m.rsplit(":", 1)[-1]), hc),
          "Dockerfile: HEALTHCHECK does not ask /livez on CMD's --metrics port (%s): %s" % (m, hc))
    check(any(w == "RUN" and "jetlua_" in r and ".deb" in r for w, r in final["lines"]),
          "Dockerfile: the runtime stage does not install the .deb")
    build_text = " ".join(r for s in stages[:-1] for _, r in s["lines"])
    with open(os.path.join(src, "CMakeLists.txt")) as fh:
        for dep in re.findall(r"^\s*jetlua_dep\(\s*\w+\s+\S+\s+(\S+?)\s*\)", fh.read(), re.M):
            check(re.search(r"(^|\s)%s(\s|$)" % re.escape(dep), build_text),
                  "Dockerfile: the build stage does not install %s (CMakeLists.txt needs it)" % dep)
    check("scripts/package.sh" in build_text, "Dockerfile: the build stage does not run scripts/package.sh")

# ---- systemd ----
unit = {}
with open(os.path.join(src, "contrib", "systemd", "jetlua@.service")) as fh:
    for l in fh:
        l = l.strip()
        if l and not l.startswith(("#", ";", "[")) and "=" in l:
            k, v = l.split("=", 1)
            unit.setdefault(k.strip(), []).append(v.strip())
u = lambda k: unit.get(k, [""])[-1]
for k, v in (("Type", "notify"), ("Restart", "on-failure"), ("ExecReload", "/bin/kill -HUP $MAINPID"),
             ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("KillMode", "mixed")):
    check(u(k) == v, "jetlua@.service: %s=%s, expected %s" % (k, u(k), v))
check(u("User") not in ("", "root") or u("DynamicUser") == "yes", "jetlua@.service: no dedicated user")
check(u("MemoryDenyWriteExecute") in ("", "no"), "jetlua@.service: MemoryDenyWriteExecute breaks LuaJIT's JIT")
start = u("ExecStart").split()
check(start[:2] == ["/usr/bin/jetlua", "run"], "jetlua@.service: ExecStart is not /usr/bin/jetlua run ...")
ust = seconds(opt(start, "--shutdown-timeout") or 10)
check(seconds(u("TimeoutStopSec") or "90") > ust,
      "jetlua@.service: TimeoutStopSec=%s is not above --shutdown-timeout %s" % (u("TimeoutStopSec"), ust))

print(json.dumps({"errors": errors, "run": run}))
