//! What we ship for Kubernetes, checked without a cluster: the committed CRD matches
//! `plcfleet crd`; the Helm chart lints (strict) and renders, and every rendered manifest
//! and every Kubernetes manifest under `deploy/` passes `kubernetes-validate --strict`
//! (tests/k8s_check.py, run by the Python that has helm-python-sdk and
//! kubernetes-validate: `PLCFLEET_K8S_PYTHON`, else the workspace `.venv` of `.ci/run`).
//!
//! Without that Python the chart test skips, printing why; under `CI=true` it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn committed_crds_match_plcfleet_crd() {
    let printed = plcfleet::k8s::crd_yaml();
    for (file, fix) in [
        (
            "deploy/crd/simulatorfleets.yaml",
            "plcfleet crd > deploy/crd/simulatorfleets.yaml",
        ),
        (
            "helm/plcfleet/crds/simulatorfleets.yaml",
            "plcfleet crd > helm/plcfleet/crds/simulatorfleets.yaml",
        ),
    ] {
        let committed = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        assert!(
            committed == printed,
            "{file} differs from `plcfleet crd`; regenerate it: {fix}"
        );
    }
}

#[test]
fn plcfleet_crd_prints_the_committed_crd() {
    let out = Command::new(env!("CARGO_BIN_EXE_plcfleet"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed = std::fs::read(root().join("deploy/crd/simulatorfleets.yaml")).unwrap();
    assert!(
        out.stdout == committed,
        "deploy/crd/simulatorfleets.yaml differs from `plcfleet crd`; regenerate it: \
         plcfleet crd > deploy/crd/simulatorfleets.yaml"
    );
}

#[test]
fn the_crd_is_structural() {
    // The API server refuses a CRD whose schema is not structural: every node typed (or
    // int-or-string / preserve-unknown-fields), no `$ref`, no top-level anyOf of types.
    let crd: serde_json::Value = serde_yaml::from_str(
        plcfleet::k8s::crd_yaml()
            .trim_start_matches(|c| c != '-')
            .trim_start_matches("---\n"),
    )
    .unwrap();
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    fn walk(at: &str, v: &serde_json::Value) {
        let obj = v.as_object().unwrap();
        assert!(!obj.contains_key("$ref"), "{at}: $ref");
        let typed = obj.contains_key("type")
            || obj.get("x-kubernetes-int-or-string") == Some(&serde_json::json!(true))
            || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&serde_json::json!(true));
        assert!(typed, "{at}: no type: {v}");
        if let Some(any) = obj.get("anyOf").and_then(|a| a.as_array()) {
            for s in any {
                let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
                assert!(
                    keys.iter()
                        .all(|k| ["type", "minimum"].contains(&k.as_str())),
                    "{at}: anyOf branch with {keys:?}"
                );
            }
        }
        if let Some(props) = obj.get("properties").and_then(|p| p.as_object()) {
            for (k, s) in props {
                walk(&format!("{at}.{k}"), s);
            }
        }
        if let Some(items) = obj.get("items") {
            walk(&format!("{at}[]"), items);
        }
        if let Some(ap) = obj.get("additionalProperties").filter(|a| a.is_object()) {
            walk(&format!("{at}{{}}"), ap);
        }
    }
    walk("", &version["schema"]["openAPIV3Schema"]);
}

#[path = "../../enip-server/tests/support/venv.rs"]
mod venv;

/// The venv's Python with the Helm SDK and the Kubernetes schemas
/// (`PLCFLEET_K8S_PYTHON` names another).
fn python() -> Option<PathBuf> {
    venv::python_with(
        "PLCFLEET_K8S_PYTHON",
        &["helm_python", "kubernetes_validate"],
    )
}

#[test]
fn helm_chart_lints_renders_and_every_manifest_validates() {
    let Some(py) = python() else { return };
    let scratch = std::env::temp_dir().join(format!("plcfleet-k8s-check-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // The pods the controller applies for the example fleet, validated as the chart is.
    let example = std::fs::read_to_string(root().join("deploy/examples/k8s-fleet.yaml")).unwrap();
    let sf: plcfleet::k8s::SimulatorFleet = serde_yaml::from_str(&example).unwrap();
    let fleet = plcfleet::kube_controller::validate(&sf).unwrap();
    let mut pods = Vec::new();
    for sim in &fleet.simulators {
        let pod = plcfleet::kube_controller::pod_for(&sf, &fleet, sim);
        let f = scratch.join(format!("pod-{}.yaml", sim.name));
        std::fs::write(&f, serde_yaml::to_string(&pod).unwrap()).unwrap();
        pods.push(f);
        if let Some(svc) = plcfleet::kube_controller::service_for(&sf, &fleet, sim) {
            let f = scratch.join(format!("service-{}.yaml", sim.name));
            std::fs::write(&f, serde_yaml::to_string(&svc).unwrap()).unwrap();
            pods.push(f);
        }
    }
    // Four pods, and the Service each simulator of the example asks for.
    assert_eq!(pods.len(), 8);
    let out = Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/k8s_check.py"))
        .arg(root())
        .arg(&scratch)
        .args(&pods)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "k8s_check.py failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("against the SimulatorFleet CRD"),
        "{stdout}"
    );
    assert!(stdout.contains("pod-line-003.yaml passed"), "{stdout}");
    assert!(stdout.contains("service-boiler-1.yaml passed"), "{stdout}");
    // Every pod template of the chart and every simulator pod the controller builds.
    assert!(
        stdout.contains("restricted ok pod-line-003.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("restricted Pod Security Standard: 6 pod templates"),
        "{stdout}"
    );
    // The chart's command line is one the binary accepts: with no cluster to reach it
    // gets as far as the client configuration (or the listen address), never a usage
    // error (exit 2).
    for label in ["default", "custom"] {
        let args: Vec<String> = serde_json::from_slice(
            &std::fs::read(scratch.join(format!("{label}-args.json"))).unwrap(),
        )
        .unwrap();
        let run = Command::new(env!("CARGO_BIN_EXE_plcfleet"))
            .args(&args)
            .env("KUBECONFIG", scratch.join("no-such-kubeconfig"))
            // The chart gives it from its Secret: the API listens off loopback.
            .env("PLCFLEET_TOKEN", "from-the-chart-secret")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert_ne!(run.status.code(), Some(2), "{label}: {args:?}: {err}");
        assert!(
            err.contains("cannot configure a Kubernetes client") || err.contains("cannot listen"),
            "{label}: {args:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
