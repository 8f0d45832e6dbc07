//! The controller: manifests added, changed, broken and removed; drift repaired.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use plcfleet::api::Shared;
use plcfleet::apply::ApplyOptions;
use plcfleet::backend::Backend;
use plcfleet::controller::Controller;
use plcfleet::local::LocalBackend;
use plcfleet::manifest::BackendKind;

fn manifest(name: &str, subnet: u8, n: u32) -> String {
    format!(
        "kind: Fleet\nmetadata: {{name: {name}}}\nspec:\n  backend: local\n  network: {{subnet: 127.{subnet}.0.0/16}}\n  defaults: {{tags: {{SCADA: \"DINT[10]\"}}, identity: {{serial: auto}}}}\n  simulators:\n    - name: s-{{index}}\n      replicas: {n}\n      ipStart: 127.{subnet}.0.10\n"
    )
}

fn write(dir: &Path, file: &str, text: &str) {
    // A fresh mtime even within the filesystem's timestamp granularity.
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    let t = std::time::SystemTime::now() + Duration::from_secs(1);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_come_and_go_and_drift_is_repaired() {
    let dir = std::env::temp_dir().join(format!("plcfleet-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let backend = LocalBackend::new();
    let shared = Shared::new().unwrap();
    let mut c = Controller::new(
        &dir,
        backend.clone(),
        BackendKind::Local,
        shared.clone(),
        ApplyOptions::default(),
    );
    write(&dir, "a.yaml", &manifest("alpha", 81, 4));
    write(&dir, "b.yml", &manifest("beta", 82, 2));
    // Not a manifest: ignored.
    write(&dir, "notes.txt", "hello");
    let p = c.reconcile().await;
    assert_eq!(p.applied, ["alpha", "beta"]);
    assert_eq!(p.repaired, 6);
    let f = shared.fleets();
    assert_eq!(f.len(), 2);
    assert!(
        f[0].simulators
            .iter()
            .all(|s| s.healthy && s.state == "running"),
        "{f:?}"
    );

    // Nothing changed: nothing done.
    assert_eq!(c.reconcile().await.repaired, 0);

    // A simulator removed behind the controller's back is back at the next pass.
    let victim = backend.list("alpha").await.unwrap().remove(0);
    backend.remove("alpha", &victim).await.unwrap();
    let p = c.reconcile().await;
    assert_eq!(p.repaired, 1);
    assert_eq!(backend.list("alpha").await.unwrap().len(), 4);

    // A broken edit changes nothing and is reported; the fix applies.
    write(
        &dir,
        "a.yaml",
        "kind: Fleet\nmetadata: {name: alpha}\nspec: {backend: local, simulators: [{name: x}]}\n",
    );
    let p = c.reconcile().await;
    assert_eq!(p.invalid.len(), 1);
    assert_eq!(backend.list("alpha").await.unwrap().len(), 4);
    write(&dir, "a.yaml", &manifest("alpha", 81, 3));
    let p = c.reconcile().await;
    assert_eq!(p.applied, ["alpha"]);
    assert_eq!(backend.list("alpha").await.unwrap().len(), 3);

    // A removed file: its fleet goes, the other stays.
    std::fs::remove_file(dir.join("b.yml")).unwrap();
    let p = c.reconcile().await;
    assert_eq!(p.deleted, ["beta"]);
    assert!(backend.list("beta").await.unwrap().is_empty());
    assert_eq!(shared.fleets().len(), 1);
    let m = shared.metrics.render();
    assert!(
        m.contains("plcfleet_simulators_healthy{fleet=\"alpha\"} 3"),
        "{m}"
    );
    assert!(!m.contains("fleet=\"beta\""), "{m}");
    assert!(
        m.contains("plcfleet_reconcile_errors_total{kind=\"invalid\"} 1"),
        "{m}"
    );
    backend.shutdown();
}
