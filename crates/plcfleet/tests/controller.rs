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

async fn http(
    method: &str,
    addr: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let (code, text) = plcfleet::scrape::http(method, addr, path, body)
        .await
        .unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Poll `f` every 100 ms for up to `secs`.
async fn eventually(secs: u64, mut f: impl AsyncFnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_applies_and_deletes_fleets_and_reports_what_simulators_say() {
    use plcfleet::backend::Timed;
    let dir = std::env::temp_dir().join(format!("plcfleet-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shared = Shared::new().unwrap().with_manifests(dir.clone());
    let local = LocalBackend::new();
    let backend = Timed::new(local.clone(), "local", shared.metrics.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let router = plcfleet::api::router(shared.clone());
    tokio::spawn(async move { axum::serve(l, router).await });
    let mut c = Controller::new(
        &dir,
        backend,
        BackendKind::Local,
        shared.clone(),
        ApplyOptions::default(),
    );
    // A resync far longer than the test: only the API's wake-up can reconcile in time.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        c.run(Duration::from_secs(600), None, async {
            let _ = stop_rx.await;
        })
        .await;
    });

    // Refused before anything is written: a bad manifest (with where), a name mismatch.
    let bad = "kind: Fleet\nmetadata: {name: gamma}\nspec:\n  backend: local\n  network: {subnet: 127.86.0.0/16}\n  defaults: {tags: {SCADA: \"DINT[10]\"}}\n  simulators:\n    - {name: a, ip: 127.86.0.10, bogus: 1}\n";
    let (code, v) = http("PUT", &addr, "/api/fleets/gamma", Some(bad)).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["problems"][0]["line"], 8, "{v}");
    assert!(v["error"].as_str().unwrap().contains("bogus"), "{v}");
    let good = "kind: Fleet\nmetadata: {name: gamma}\nspec:\n  backend: local\n  network: {subnet: 127.86.0.0/16}\n  defaults: {tags: {SCADA: \"DINT[10]\"}, web: true, identity: {serial: auto}}\n  simulators:\n    - name: s-{index}\n      replicas: 2\n      ipStart: 127.86.0.10\n";
    let (code, v) = http("PUT", &addr, "/api/fleets/delta", Some(good)).await;
    assert_eq!(code, 400, "{v}");
    let (code, _) = http("PUT", &addr, "/api/fleets/..%2Fetc", Some(good)).await;
    assert_eq!(code, 400);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );

    let (code, v) = http("PUT", &addr, "/api/fleets/gamma", Some(good)).await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["simulators"], 2);
    assert!(dir.join("gamma.yaml").is_file());
    let ready = eventually(15, async || {
        let (code, v) = http("GET", &addr, "/api/fleets/gamma", None).await;
        code == 200
            && v["simulators"]
                .as_array()
                .is_some_and(|s| s.len() == 2 && s.iter().all(|x| x["healthy"] == true))
    })
    .await;
    assert!(ready, "gamma never came up through the API");
    // What the simulators say of themselves: requests and uptime.
    let (code, v) = http("GET", &addr, "/api/fleets/gamma/simulators/s-2", None).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["ip"], "127.86.0.11");
    assert!(v["requests"].is_u64(), "{v}");
    assert!(
        v["uptime"]
            .as_f64()
            .is_some_and(|u| (0.0..60.0).contains(&u)),
        "{v}"
    );
    let (code, _) = http("GET", &addr, "/api/fleets/gamma/simulators/nope", None).await;
    assert_eq!(code, 404);
    let (code, v) = http("GET", &addr, "/api/health", None).await;
    assert_eq!(
        (code, v["simulators"].as_u64(), v["status"].as_str()),
        (200, Some(2), Some("ok")),
        "{v}"
    );
    let (_, m) = plcfleet::scrape::http("GET", &addr, "/metrics", None)
        .await
        .unwrap();
    assert!(
        m.contains(
            "plcfleet_backend_call_duration_seconds_count{backend=\"local\",call=\"create\"} 2"
        ),
        "{m}"
    );

    // Deleting by name removes the manifest, and the controller the fleet.
    let (code, v) = http("DELETE", &addr, "/api/fleets/gamma", None).await;
    assert_eq!(code, 202, "{v}");
    assert!(!dir.join("gamma.yaml").exists());
    let gone = eventually(15, async || local.list("gamma").await.unwrap().is_empty()).await;
    assert!(gone, "gamma's simulators outlived its manifest");
    let (code, _) = http("DELETE", &addr, "/api/fleets/gamma", None).await;
    assert_eq!(code, 404);
    let _ = stop_tx.send(());
    run.await.unwrap();
    local.shutdown();

    // Without a manifests directory (`plcfleet up`), the API cannot take manifests.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let router = plcfleet::api::router(Shared::new().unwrap());
    tokio::spawn(async move { axum::serve(l, router).await });
    let (code, v) = http("PUT", &addr, "/api/fleets/gamma", Some(good)).await;
    assert_eq!(code, 405, "{v}");
}

#[tokio::test]
async fn the_api_wants_its_token_and_bounds_requests() {
    use plcfleet::scrape::http_with_token;
    let shared = Shared::new().unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let rate = "2/3".parse().unwrap();
    let router = plcfleet::api::router_with(
        shared.clone(),
        plcfleet::api::guard(Some("fleet-token".into()), rate),
    );
    let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(l, app).await });
    let (code, body) = http_with_token("GET", &addr, "/api/fleets", None, None)
        .await
        .unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (code, _) = http_with_token("GET", &addr, "/api/fleets", None, Some("nope"))
        .await
        .unwrap();
    assert_eq!(code, 401);
    let (code, body) = http_with_token("GET", &addr, "/api/fleets", None, Some("fleet-token"))
        .await
        .unwrap();
    assert_eq!((code, body.as_str()), (200, "[]"));
    // The bucket (burst 3) is empty now; it refills at 2 per second.
    let (code, body) = plcfleet::scrape::http("GET", &addr, "/metrics", None)
        .await
        .unwrap();
    assert_eq!(code, 429, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // /metrics and /healthz are open on purpose.
    let (code, body) = plcfleet::scrape::http("GET", &addr, "/metrics", None)
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("plcfleet_"), "{body}");
    let (code, _) = plcfleet::scrape::http("GET", &addr, "/healthz", None)
        .await
        .unwrap();
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A manifest over 1 MiB is refused from its Content-Length, before it is read (the
    // body is not sent: a server that answers early may reset a connection mid-write).
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        b"PUT /api/fleets/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fleet-token\r\n\
          Content-Length: 1048577\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.ends_with(r#"{"error":"the body is 1048577 bytes; at most 1048576"}"#),
        "{answer}"
    );
}
