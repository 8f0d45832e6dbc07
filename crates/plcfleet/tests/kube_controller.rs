//! `plcfleet controller --kubernetes`, one reconcile at a time against a `tower_test`
//! mock API server (as kube-rs/controller-rs does): each scenario asserts the exact API
//! calls, in order, and that nothing else is called.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::Client;
use plcfleet::api::Shared;
use plcfleet::k8s::{SimulatorFleet, SimulatorFleetStatus};
use plcfleet::kube_controller::{
    backoff, error_policy, pod_for, reconcile, validate, Context, Prober, HASH_ANNOTATION, RESYNC,
    SOON,
};
use serde_json::{json, Value};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const SPEC: &str = r#"
backend: kubernetes
image: cpppo/scada:latest
network: { subnet: 10.213.0.0/16 }
defaults:
  tags: { SCADA: "DINT[1000]" }
simulators:
  - name: line-{index}
    replicas: 2
    ipStart: 10.213.1.1
    identity: { serial: auto }
"#;

fn fleet(spec: &str) -> SimulatorFleet {
    let mut sf = SimulatorFleet::new("plant", serde_yaml::from_str(spec).unwrap());
    sf.metadata.namespace = Some("ot".to_owned());
    sf.metadata.uid = Some("uid-7".to_owned());
    sf.metadata.generation = Some(3);
    sf
}

/// The pods a fleet's simulators want, as the API server would return them.
fn pods(sf: &SimulatorFleet, ready: bool) -> Vec<Value> {
    let f = validate(sf).unwrap();
    f.simulators
        .iter()
        .map(|s| {
            let mut p = pod_for(sf, &f, s);
            let status = if ready { "True" } else { "False" };
            p["status"] =
                json!({"podIP": "10.1.0.9", "conditions": [{"type": "Ready", "status": status}]});
            p
        })
        .collect()
}

fn pod_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
}

struct Server {
    handle: Handle,
}

impl Server {
    /// The next call must be `method path[?query]`; answer `reply` (status 200 unless
    /// given), and return the request body.
    async fn expect(
        &mut self,
        method: &str,
        path: impl AsRef<str>,
        status: u16,
        reply: Value,
    ) -> Value {
        let path = path.as_ref();
        let (req, send) = tokio::time::timeout(Duration::from_secs(5), self.handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no call; expected {method} {path}"))
            .unwrap_or_else(|| panic!("client gone; expected {method} {path}"));
        let got = format!(
            "{} {}",
            req.method(),
            req.uri().path_and_query().unwrap().as_str()
        );
        assert!(
            got.starts_with(&format!("{method} {path}")),
            "got {got}, expected {method} {path}"
        );
        let body = req.into_body().collect_bytes().await.unwrap();
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        body
    }

    /// No call beyond those expected.
    async fn done(mut self) {
        if let Ok(Some((req, _))) =
            tokio::time::timeout(Duration::from_millis(200), self.handle.next_request()).await
        {
            panic!("unexpected call {} {}", req.method(), req.uri());
        }
    }
}

/// A mock API server, and simulators that answer ListIdentity as themselves.
fn setup() -> (Arc<Context>, Server) {
    setup_answering(true)
}

fn setup_answering(answer: bool) -> (Arc<Context>, Server) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let prober: Prober = Arc::new(move |ip, _sim| {
        assert_eq!(
            ip,
            std::net::Ipv4Addr::new(10, 1, 0, 9),
            "probes the pod's IP"
        );
        Box::pin(async move { answer })
    });
    let ctx = Arc::new(Context::with_prober(client, Shared::new().unwrap(), prober));
    (ctx, Server { handle })
}

const PODS: &str = "/api/v1/namespaces/ot/pods";
const STATUS: &str = "/apis/plcfleet.io/v1alpha1/namespaces/ot/simulatorfleets/plant/status";

async fn run(sf: SimulatorFleet, script: impl AsyncFnOnce(&mut Server)) -> Action {
    run_answering(true, sf, script).await
}

async fn run_answering(
    answer: bool,
    sf: SimulatorFleet,
    script: impl AsyncFnOnce(&mut Server),
) -> Action {
    let (ctx, mut server) = setup_answering(answer);
    let both = async { tokio::join!(reconcile(Arc::new(sf), ctx), script(&mut server)) };
    let (action, ()) = tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("reconcile waits on a call the scenario does not expect");
    server.done().await;
    action.unwrap()
}

#[tokio::test]
async fn create_applies_one_pod_per_simulator_then_the_status() {
    let sf = fleet(SPEC);
    let echo = serde_json::to_value(&sf).unwrap();
    let action = run(sf, async |s: &mut Server| {
        let list = s.expect("GET", PODS, 200, pod_list(vec![])).await;
        assert_eq!(list, Value::Null);
        for name in ["plant-line-1", "plant-line-2"] {
            let pod = s
                .expect(
                    "PATCH",
                    &format!("{PODS}/{name}?&force=true&fieldManager=plcfleet"),
                    200,
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}}),
                )
                .await;
            assert_eq!(pod["metadata"]["name"], name);
            assert_eq!(pod["metadata"]["labels"]["plcfleet.io/fleet"], "plant");
            let owner = &pod["metadata"]["ownerReferences"][0];
            assert_eq!(owner["uid"], "uid-7");
            assert_eq!(owner["kind"], "SimulatorFleet");
            assert_eq!(owner["controller"], true);
            let c = &pod["spec"]["containers"][0];
            assert_eq!(c["image"], "cpppo/scada:latest");
            assert_eq!(c["args"][0], "-a");
            assert_eq!(c["args"][1], "0.0.0.0:44818");
            assert!(c["args"]
                .as_array()
                .unwrap()
                .contains(&json!("SCADA=DINT[1000]")));
            assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
            assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
            assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
        }
        let st = s
            .expect(
                "PATCH",
                &format!("{STATUS}?&force=true&fieldManager=plcfleet"),
                200,
                echo,
            )
            .await;
        assert_eq!(st["status"]["desired"], 2);
        assert_eq!(st["status"]["ready"], 0);
        assert_eq!(st["status"]["observedGeneration"], 3);
        assert_eq!(st["status"]["conditions"][0]["type"], "Valid");
        assert_eq!(st["status"]["conditions"][0]["status"], "True");
        assert_eq!(st["status"]["conditions"][1]["type"], "Ready");
        assert_eq!(st["status"]["conditions"][1]["status"], "False");
    })
    .await;
    assert_eq!(action, Action::requeue(SOON));
}

#[tokio::test]
async fn scale_down_prunes_the_pods_no_longer_listed() {
    let big = fleet(SPEC);
    let have = pods(&big, true);
    let small = fleet(&SPEC.replace("replicas: 2", "replicas: 1"));
    let echo = serde_json::to_value(&small).unwrap();
    let action = run(small, async |s: &mut Server| {
        s.expect(
            "GET",
            &format!("{PODS}?&labelSelector=plcfleet.io%2Ffleet%3Dplant"),
            200,
            pod_list(have.clone()),
        )
        .await;
        s.expect(
            "DELETE",
            &format!("{PODS}/plant-line-2"),
            200,
            have[1].clone(),
        )
        .await;
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        assert_eq!(st["status"]["desired"], 1);
        assert_eq!(st["status"]["ready"], 1);
        assert_eq!(st["status"]["conditions"][1]["status"], "True");
    })
    .await;
    assert_eq!(action, Action::requeue(RESYNC));
}

#[tokio::test]
async fn scale_up_creates_only_the_new_pods() {
    let small = fleet(&SPEC.replace("replicas: 2", "replicas: 1"));
    let have = pods(&small, true);
    let big = fleet(SPEC);
    let echo = serde_json::to_value(&big).unwrap();
    run(big, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have.clone())).await;
        let pod = s
            .expect("PATCH", &format!("{PODS}/plant-line-2"), 200, json!({}))
            .await;
        assert_eq!(pod["metadata"]["name"], "plant-line-2");
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        assert_eq!(
            (
                st["status"]["desired"].clone(),
                st["status"]["ready"].clone()
            ),
            (json!(2), json!(1))
        );
    })
    .await;
}

#[tokio::test]
async fn changing_one_simulator_replaces_only_its_pod() {
    let old = fleet(SPEC);
    let mut have = pods(&old, true);
    // line-2's pod was made from another spec.
    have[1]["metadata"]["annotations"][HASH_ANNOTATION] = json!("0000000000000000");
    let sf = fleet(SPEC);
    let echo = serde_json::to_value(&sf).unwrap();
    let action = run(sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have.clone())).await;
        s.expect(
            "DELETE",
            &format!("{PODS}/plant-line-2"),
            200,
            have[1].clone(),
        )
        .await;
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        assert_eq!(st["status"]["ready"], 1);
    })
    .await;
    // Re-created once gone: the pod's deletion (watched) or this requeue brings us back.
    assert_eq!(action, Action::requeue(SOON));
}

#[tokio::test]
async fn a_pod_deleted_behind_our_back_is_recreated() {
    let sf = fleet(SPEC);
    let have = pods(&sf, true);
    let echo = serde_json::to_value(&sf).unwrap();
    run(sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(vec![have[1].clone()]))
            .await;
        s.expect("PATCH", &format!("{PODS}/plant-line-1"), 200, json!({}))
            .await;
        s.expect("PATCH", STATUS, 200, echo).await;
    })
    .await;
}

#[tokio::test]
async fn status_is_patched_when_readiness_changes_and_only_then() {
    let mut sf = fleet(SPEC);
    let have = pods(&sf, true);
    sf.status = Some(SimulatorFleetStatus {
        desired: 2,
        ready: 0,
        ..Default::default()
    });
    let echo = serde_json::to_value(&sf).unwrap();
    let have2 = have.clone();
    let mut written = SimulatorFleetStatus::default();
    run(sf.clone(), async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have2)).await;
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        assert_eq!(st["status"]["ready"], 2);
        assert_eq!(st["status"]["conditions"][1]["status"], "True");
        assert_eq!(st["status"]["conditions"][1]["reason"], "AllReady");
        // Remember what was written, as the API server would.
        written = serde_json::from_value(st["status"].clone()).unwrap();
    })
    .await;
    // The next pass, with that status stored: a list and nothing else.
    sf.status = Some(written);
    let action = run(sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have)).await;
    })
    .await;
    assert_eq!(action, Action::requeue(RESYNC));
}

#[tokio::test]
async fn a_ready_pod_whose_simulator_does_not_answer_as_itself_is_not_ready() {
    let sf = fleet(SPEC);
    let have = pods(&sf, true);
    let echo = serde_json::to_value(&sf).unwrap();
    let action = run_answering(false, sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have)).await;
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        assert_eq!(st["status"]["desired"], 2);
        assert_eq!(st["status"]["ready"], 0);
        assert_eq!(st["status"]["conditions"][1]["reason"], "NotReady");
    })
    .await;
    assert_eq!(action, Action::requeue(SOON));
}

#[tokio::test]
async fn deleting_the_fleet_calls_nothing_owner_references_clean_up() {
    let mut sf = fleet(SPEC);
    sf.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let action = run(sf, async |_: &mut Server| {}).await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn an_invalid_spec_gets_an_event_and_a_condition_and_nothing_else() {
    let sf = fleet(&SPEC.replace("ipStart: 10.213.1.1", "ipStart: 10.214.1.1"));
    let echo = serde_json::to_value(&sf).unwrap();
    let action = run(sf, async |s: &mut Server| {
        let ev = s
            .expect(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/ot/events",
                200,
                json!({}),
            )
            .await;
        assert_eq!(ev["type"], "Warning");
        assert_eq!(ev["reason"], "InvalidSpec");
        assert!(
            ev["note"].as_str().unwrap().contains("spec.simulators[0]"),
            "{ev}"
        );
        assert_eq!(ev["regarding"]["name"], "plant");
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        let c = &st["status"]["conditions"][0];
        assert_eq!(
            (c["type"].clone(), c["status"].clone()),
            (json!("Valid"), json!("False"))
        );
        assert!(c["message"].as_str().unwrap().contains("10.214.1.1"), "{c}");
        assert_eq!(st["status"]["observedGeneration"], 3);
    })
    .await;
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_fleet_for_another_backend_is_invalid_here() {
    let sf = fleet(&SPEC.replace("backend: kubernetes", "backend: docker"));
    let echo = serde_json::to_value(&sf).unwrap();
    run(sf, async |s: &mut Server| {
        let ev = s
            .expect(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/ot/events",
                200,
                json!({}),
            )
            .await;
        assert!(
            ev["note"].as_str().unwrap().contains("backend: kubernetes"),
            "{ev}"
        );
        s.expect("PATCH", STATUS, 200, echo).await;
    })
    .await;
}

#[tokio::test]
async fn an_api_error_fails_the_reconcile_and_requeues_with_backoff() {
    let (ctx, mut server) = setup();
    let sf = Arc::new(fleet(SPEC));
    let (result, _) = tokio::join!(
        reconcile(sf.clone(), ctx.clone()),
        server.expect(
            "GET",
            PODS,
            500,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "message": "etcd is down", "reason": "InternalError", "code": 500}),
        )
    );
    let err = result.unwrap_err();
    assert!(err.to_string().contains("etcd is down"), "{err}");
    assert_eq!(err.metric_label(), "kube");
    server.done().await;
    // Backoff grows per consecutive failure, never a spin.
    assert_eq!(
        error_policy(sf.clone(), &err, ctx.clone()),
        Action::requeue(backoff(1))
    );
    assert_eq!(
        error_policy(sf.clone(), &err, ctx.clone()),
        Action::requeue(backoff(2))
    );
    assert_eq!(backoff(1), Duration::from_secs(5));
    assert_eq!(backoff(2), Duration::from_secs(10));
    assert_eq!(backoff(30), Duration::from_secs(300));
    let text = ctx.shared.metrics.render();
    assert!(
        text.contains("plcfleet_reconcile_errors_total{kind=\"kube\"} 2"),
        "{text}"
    );
}

// `plcfleet plan/apply/status/delete` on a kubernetes manifest: the resource itself.

fn manifest_resource(spec: &str) -> SimulatorFleet {
    let text = format!(
        "kind: Fleet\nmetadata: {{ name: plant }}\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let raw: plcfleet::manifest::RawFleet = serde_yaml::from_str(&text).unwrap();
    plcfleet::k8s::resource(&raw, "ot")
}

const FLEETS: &str = "/apis/plcfleet.io/v1alpha1/namespaces/ot/simulatorfleets";

#[tokio::test]
async fn cli_apply_server_side_applies_the_resource_without_status() {
    let (ctx, mut server) = setup();
    let mut sf = manifest_resource(SPEC);
    sf.status = Some(SimulatorFleetStatus::default());
    let echo = serde_json::to_value(&sf).unwrap();
    let (r, body) = tokio::join!(
        plcfleet::k8s::apply(ctx.client.clone(), &sf),
        server.expect(
            "PATCH",
            format!("{FLEETS}/plant?&force=true&fieldManager=plcfleet-cli"),
            200,
            echo
        )
    );
    r.unwrap();
    assert_eq!(body["apiVersion"], "plcfleet.io/v1alpha1");
    assert_eq!(body["kind"], "SimulatorFleet");
    assert_eq!(body["metadata"]["name"], "plant");
    assert_eq!(body["spec"]["simulators"][0]["replicas"], 2);
    assert!(body.get("status").is_none(), "{body}");
    server.done().await;
}

#[tokio::test]
async fn cli_plan_compares_the_spec_with_the_cluster() {
    use plcfleet::k8s::{plan, Change};
    let (ctx, mut server) = setup();
    let sf = manifest_resource(SPEC);
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "not found", "reason": "NotFound", "code": 404});
    let (r, _) = tokio::join!(
        plcfleet::k8s::get(ctx.client.clone(), "ot", "plant"),
        server.expect("GET", format!("{FLEETS}/plant"), 404, not_found)
    );
    let have = r.unwrap();
    assert!(have.is_none());
    assert_eq!(plan(&sf, have.as_ref()), Change::Create);
    assert_eq!(plan(&sf, Some(&fleet(SPEC))), Change::None);
    let other = fleet(&SPEC.replace("replicas: 2", "replicas: 5"));
    assert_eq!(plan(&sf, Some(&other)), Change::Update);
    server.done().await;
}

#[tokio::test]
async fn cli_delete_deletes_the_resource_and_says_whether_it_existed() {
    let (ctx, mut server) = setup();
    let echo = serde_json::to_value(fleet(SPEC)).unwrap();
    let (r, body) = tokio::join!(
        plcfleet::k8s::delete(ctx.client.clone(), "ot", "plant"),
        server.expect("DELETE", format!("{FLEETS}/plant"), 200, echo)
    );
    assert!(r.unwrap());
    // Foreground: the resource goes once its pods are gone.
    assert_eq!(body["propagationPolicy"], "Foreground");
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "not found", "reason": "NotFound", "code": 404});
    let (r, _) = tokio::join!(
        plcfleet::k8s::delete(ctx.client.clone(), "ot", "plant"),
        server.expect("DELETE", format!("{FLEETS}/plant"), 404, not_found)
    );
    assert!(!r.unwrap());
    server.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_prober_knows_a_simulator_by_serial_not_by_address() {
    use plcfleet::apply::{self, ApplyOptions};
    use plcfleet::local::LocalBackend;
    let yaml = "kind: Fleet\nmetadata: {name: kp}\nspec:\n  backend: local\n  network: {subnet: 127.85.0.0/16}\n  defaults:\n    tags: {SCADA: DINT}\n    identity: {serial: auto}\n  simulators:\n    - name: s-{index}\n      replicas: 2\n      ipStart: 127.85.0.10\n";
    let f = plcfleet::manifest::parse(std::path::Path::new("kp.yaml"), yaml).unwrap();
    let b = LocalBackend::new();
    let opts = ApplyOptions {
        timeout: Duration::from_secs(20),
        ..ApplyOptions::default()
    };
    let r = apply::apply(&b, &f, &opts).await.unwrap();
    assert_eq!(r.healthy, 2, "{:?}", r.failures);
    let probe = plcfleet::kube_controller::list_identity_prober();
    let (one, two) = (f.simulators[0].clone(), f.simulators[1].clone());
    // In a pod the manifest's address is not the pod's: only the identity counts.
    let mut elsewhere = one.clone();
    elsewhere.ip = std::net::Ipv4Addr::new(10, 213, 0, 10);
    assert!(probe(one.ip, elsewhere).await);
    assert!(!probe(one.ip, two.clone()).await, "another serial");
    assert!(
        !probe(std::net::Ipv4Addr::new(127, 85, 9, 9), two).await,
        "nobody there"
    );
    apply::delete(&b, &f).await.unwrap();
}
