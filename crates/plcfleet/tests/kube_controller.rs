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
    backoff, error_policy, pod_for, reconcile, service_for, validate, Context, Prober,
    HASH_ANNOTATION, MULTUS_ANNOTATION, RESYNC, SOON,
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
    setup_probing(Arc::new(move |ip, _sim| {
        assert_eq!(
            ip,
            std::net::Ipv4Addr::new(10, 1, 0, 9),
            "probes the pod's IP"
        );
        Box::pin(async move { answer })
    }))
}

fn setup_probing(prober: Prober) -> (Arc<Context>, Server) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let ctx = Arc::new(Context::with_prober(client, Shared::new().unwrap(), prober));
    (ctx, Server { handle })
}

const PODS: &str = "/api/v1/namespaces/ot/pods";
const SERVICES: &str = "/api/v1/namespaces/ot/services";

fn svc_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceList", "metadata": {}, "items": items})
}
const STATUS: &str = "/apis/plcfleet.io/v1alpha1/namespaces/ot/simulatorfleets/plant/status";

async fn run(sf: SimulatorFleet, script: impl AsyncFnOnce(&mut Server)) -> Action {
    run_answering(true, sf, script).await
}

async fn run_answering(
    answer: bool,
    sf: SimulatorFleet,
    script: impl AsyncFnOnce(&mut Server),
) -> Action {
    run_with(setup_answering(answer), sf, script).await
}

async fn run_with(
    (ctx, mut server): (Arc<Context>, Server),
    sf: SimulatorFleet,
    script: impl AsyncFnOnce(&mut Server),
) -> Action {
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
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

// Services, Multus and replay (the issue's remaining parts).

/// Services as the API server would return them (what we applied).
fn services(sf: &SimulatorFleet) -> Vec<Value> {
    let f = validate(sf).unwrap();
    f.simulators
        .iter()
        .filter_map(|s| service_for(sf, &f, s))
        .collect()
}

#[tokio::test]
async fn services_are_applied_when_missing_and_pruned_when_no_longer_asked_for() {
    let spec = SPEC.replace(
        "identity: { serial: auto }",
        "identity: { serial: auto }\n    web: true\n    service: { type: LoadBalancer, annotations: { metallb.universe.tf/address-pool: plc } }",
    ) + "webTokenFile: web-token\n";
    let sf = fleet(&spec);
    let have = pods(&sf, true);
    let mut svcs = services(&sf);
    assert_eq!(svcs.len(), 2);
    // line-1's Service is as wanted; line-2's is missing; an old one is left over.
    svcs.truncate(1);
    let mut stale = svcs[0].clone();
    stale["metadata"]["name"] = json!("plant-old");
    svcs.push(stale);
    let echo = serde_json::to_value(&sf).unwrap();
    let action = run(sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have)).await;
        s.expect(
            "GET",
            format!("{SERVICES}?&labelSelector=plcfleet.io%2Ffleet%3Dplant"),
            200,
            svc_list(svcs),
        )
        .await;
        let svc = s
            .expect(
                "PATCH",
                format!("{SERVICES}/plant-line-2?&force=true&fieldManager=plcfleet"),
                200,
                json!({}),
            )
            .await;
        assert_eq!(svc["kind"], "Service");
        assert_eq!(svc["metadata"]["labels"]["plcfleet.io/simulator"], "line-2");
        assert_eq!(
            svc["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "plcfleet"
        );
        assert_eq!(
            svc["metadata"]["annotations"]["metallb.universe.tf/address-pool"],
            "plc"
        );
        assert!(svc["metadata"]["annotations"][HASH_ANNOTATION].is_string());
        let owner = &svc["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["uid"].clone(), owner["controller"].clone()),
            (json!("uid-7"), json!(true))
        );
        assert_eq!(svc["spec"]["type"], "LoadBalancer");
        // Exactly that simulator's pod.
        assert_eq!(
            svc["spec"]["selector"],
            json!({"plcfleet.io/fleet": "plant", "plcfleet.io/simulator": "line-2"})
        );
        let ports: Vec<(i64, String)> = svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["port"].as_i64().unwrap(),
                    p["protocol"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                (44818, "TCP".into()),
                (44818, "UDP".into()),
                (8080, "TCP".into())
            ]
        );
        assert!(svc["spec"].get("loadBalancerIP").is_none(), "{svc}");
        s.expect("DELETE", format!("{SERVICES}/plant-old"), 200, json!({}))
            .await;
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        assert_eq!(st["status"]["ready"], 2);
    })
    .await;
    assert_eq!(action, Action::requeue(RESYNC));
}

#[tokio::test]
async fn a_changed_service_is_reapplied_in_place_and_an_unchanged_one_is_left_alone() {
    let spec = SPEC.replace(
        "identity: { serial: auto }",
        "identity: { serial: auto }\n    service: {}",
    );
    let sf = fleet(&spec);
    let have = pods(&sf, true);
    let mut svcs = services(&sf);
    svcs[1]["metadata"]["annotations"][HASH_ANNOTATION] = json!("0000000000000000");
    let echo = serde_json::to_value(&sf).unwrap();
    run(sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have)).await;
        s.expect("GET", SERVICES, 200, svc_list(svcs)).await;
        let svc = s
            .expect("PATCH", format!("{SERVICES}/plant-line-2"), 200, json!({}))
            .await;
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        s.expect("PATCH", STATUS, 200, echo).await;
    })
    .await;
}

#[test]
fn a_load_balancer_service_asks_for_its_address() {
    let spec = "backend: kubernetes\nnetwork: { subnet: 10.213.0.0/16 }\nsimulators:\n  - name: boiler\n    ip: 10.213.0.10\n    tags: { SCADA: DINT }\n    service: { type: LoadBalancer, loadBalancerIP: 192.168.50.10 }\n";
    let sf = fleet(spec);
    let svc = &services(&sf)[0];
    assert_eq!(svc["metadata"]["name"], "plant-boiler");
    assert_eq!(svc["spec"]["loadBalancerIP"], "192.168.50.10");
    let ports = svc["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "no web, no 8080: {svc}");
}

#[tokio::test]
async fn multus_pods_carry_their_static_address_and_are_probed_on_it() {
    let spec = SPEC.replace(
        "identity: { serial: auto }",
        "identity: { serial: auto }\n    multus: { network: ot-net/plant-floor }",
    );
    let sf = fleet(&spec);
    let f = validate(&sf).unwrap();
    let pod = pod_for(&sf, &f, &f.simulators[1]);
    let nets: Value = serde_json::from_str(
        pod["metadata"]["annotations"][MULTUS_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        nets,
        json!([{"name": "plant-floor", "namespace": "ot-net", "ips": ["10.213.1.2/16"]}])
    );
    // The network is part of what the pod is: changing it replaces the pod.
    let plain = fleet(SPEC);
    let pf = validate(&plain).unwrap();
    assert_ne!(
        pod["metadata"]["annotations"][HASH_ANNOTATION],
        pod_for(&plain, &pf, &pf.simulators[1])["metadata"]["annotations"][HASH_ANNOTATION]
    );
    let have = pods(&sf, true);
    let probed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = probed.clone();
    let prober: Prober = Arc::new(move |ip, _sim| {
        seen.lock().unwrap().push(ip);
        Box::pin(async { true })
    });
    let echo = serde_json::to_value(&sf).unwrap();
    run_with(setup_probing(prober), sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(have)).await;
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
        let st = s.expect("PATCH", STATUS, 200, echo).await;
        assert_eq!(st["status"]["ready"], 2);
    })
    .await;
    let mut probed = probed.lock().unwrap().clone();
    probed.sort();
    // Not the pod IP (10.1.0.9): the simulators' own addresses on the Multus network.
    assert_eq!(
        probed,
        [
            std::net::Ipv4Addr::new(10, 213, 1, 1),
            std::net::Ipv4Addr::new(10, 213, 1, 2)
        ]
    );
}

#[tokio::test]
async fn replay_simulators_mount_the_fleets_config_map_and_replay_from_it() {
    let spec = SPEC.replace(
        "identity: { serial: auto }",
        "identity: { serial: auto }\n    replay: { file: histories/boiler.hst, speed: 2, loop: true }",
    );
    let sf = fleet(&spec);
    let echo = serde_json::to_value(&sf).unwrap();
    run(sf, async |s: &mut Server| {
        s.expect("GET", PODS, 200, pod_list(vec![])).await;
        s.expect("GET", SERVICES, 200, svc_list(vec![])).await;
        for name in ["plant-line-1", "plant-line-2"] {
            let pod = s
                .expect("PATCH", format!("{PODS}/{name}"), 200, json!({}))
                .await;
            assert_eq!(
                pod["spec"]["volumes"],
                json!([{"name": "replay", "configMap": {"name": "plant-replay"}}])
            );
            let c = &pod["spec"]["containers"][0];
            assert_eq!(
                c["volumeMounts"],
                json!([{"name": "replay", "mountPath": "/replay", "readOnly": true}])
            );
            let args: Vec<&str> = c["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let at = args.iter().position(|a| *a == "--replay").unwrap();
            // As the Docker backend passes them.
            assert_eq!(
                args[at..at + 5],
                [
                    "--replay",
                    "/replay/histories_boiler.hst",
                    "--speed",
                    "2",
                    "--loop"
                ]
            );
        }
        s.expect("PATCH", STATUS, 200, echo).await;
    })
    .await;
    // A simulator without replay has no volume.
    let plain = fleet(SPEC);
    let f = validate(&plain).unwrap();
    let pod = pod_for(&plain, &f, &f.simulators[0]);
    assert_eq!(pod["spec"]["volumes"], json!([]));
}

// `plcfleet apply` of a kubernetes manifest: the replay ConfigMap, and the wait.

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("plcfleet-kc-{name}-{}", std::process::id()));
    std::fs::create_dir_all(d.join("histories")).unwrap();
    d
}

fn replay_manifest(dir: &std::path::Path, files: &[&str]) -> plcfleet::manifest::Fleet {
    let sims: String = files
        .iter()
        .enumerate()
        .map(|(n, f)| {
            format!(
                "    - {{name: s{n}, ip: 10.213.0.{}, replay: {{file: {f}}}}}\n",
                10 + n
            )
        })
        .collect();
    let yaml = format!(
        "kind: Fleet\nmetadata: {{name: plant}}\nspec:\n  backend: kubernetes\n  network: {{subnet: 10.213.0.0/16}}\n  defaults: {{tags: {{SCADA: DINT}}}}\n  simulators:\n{sims}"
    );
    plcfleet::manifest::parse(&dir.join("fleet.yaml"), &yaml).unwrap()
}

#[test]
fn replay_files_become_one_config_map_owned_by_the_fleet() {
    use plcfleet::k8s::{read_replay_files, replay_config_map, ReplayError, REPLAY_MAX_BYTES};
    let dir = scratch("cm");
    std::fs::write(
        dir.join("histories/boiler.hst"),
        "2026-01-01 00:00:00.000\t[\"SCADA\", [0, 1]]\t{\"write\": [1]}\n",
    )
    .unwrap();
    std::fs::write(dir.join("histories/raw.bin"), [0xff, 0xfe, 0x00]).unwrap();
    // Two simulators replaying the same file carry it once.
    let f = replay_manifest(
        &dir,
        &[
            "histories/boiler.hst",
            "histories/boiler.hst",
            "histories/raw.bin",
        ],
    );
    let files = read_replay_files(&f).unwrap();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["histories_boiler.hst", "histories_raw.bin"]
    );
    let mut sf = fleet(SPEC);
    sf.metadata.name = Some("plant".into());
    let cm = replay_config_map(&sf, &files);
    assert_eq!(cm.metadata.name.as_deref(), Some("plant-replay"));
    assert_eq!(cm.metadata.namespace.as_deref(), Some("ot"));
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("SimulatorFleet", "uid-7")
    );
    assert_eq!(
        cm.metadata.labels.as_ref().unwrap()["plcfleet.io/fleet"],
        "plant"
    );
    assert!(cm.data.as_ref().unwrap()["histories_boiler.hst"].contains("SCADA"));
    assert_eq!(
        cm.binary_data.as_ref().unwrap()["histories_raw.bin"].0,
        [0xff, 0xfe, 0x00]
    );
    // Too big for a ConfigMap: refused, naming the file and the limit.
    let big = dir.join("histories/big.hst");
    std::fs::write(&big, vec![b'x'; REPLAY_MAX_BYTES as usize + 1]).unwrap();
    let f = replay_manifest(&dir, &["histories/big.hst"]);
    let err = read_replay_files(&f).unwrap_err();
    assert!(matches!(err, ReplayError::TooBig { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("histories/big.hst") && msg.contains("921600 bytes (900 KiB)"),
        "{msg}"
    );
    // Files that fit alone but not together.
    let half = vec![b'y'; REPLAY_MAX_BYTES as usize / 2 + 1];
    std::fs::write(dir.join("histories/a.hst"), &half).unwrap();
    std::fs::write(dir.join("histories/b.hst"), &half).unwrap();
    let f = replay_manifest(&dir, &["histories/a.hst", "histories/b.hst"]);
    assert!(matches!(
        read_replay_files(&f),
        Err(ReplayError::TooMuch { .. })
    ));
    // Two paths that would share a key.
    std::fs::write(dir.join("histories_a.hst"), "x").unwrap();
    let f = replay_manifest(&dir, &["histories/a.hst", "histories_a.hst"]);
    assert!(matches!(
        read_replay_files(&f),
        Err(ReplayError::SameKey { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

const CONFIGMAPS: &str = "/api/v1/namespaces/ot/configmaps";

#[tokio::test]
async fn cli_apply_writes_the_replay_config_map_and_removes_it_when_replay_goes() {
    let (ctx, mut server) = setup();
    let sf = fleet(SPEC);
    let files = std::collections::BTreeMap::from([("h.hst".to_owned(), b"x\n".to_vec())]);
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "not found", "reason": "NotFound", "code": 404});
    let script = async {
        server
            .expect(
                "GET",
                format!("{CONFIGMAPS}/plant-replay"),
                404,
                not_found.clone(),
            )
            .await;
        server
            .expect(
                "PATCH",
                format!("{CONFIGMAPS}/plant-replay?&force=true&fieldManager=plcfleet-cli"),
                200,
                json!({}),
            )
            .await
    };
    let (r, body) = tokio::join!(
        plcfleet::k8s::apply_replay(ctx.client.clone(), &sf, &files),
        script
    );
    r.unwrap();
    assert_eq!(
        (body["apiVersion"].clone(), body["kind"].clone()),
        (json!("v1"), json!("ConfigMap"))
    );
    assert_eq!(body["data"]["h.hst"], "x\n");
    assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-7");
    let ours = serde_json::to_value(plcfleet::k8s::replay_config_map(&sf, &files)).unwrap();
    // No replay any more: the ConfigMap an earlier apply left goes.
    let script = async {
        server
            .expect(
                "GET",
                format!("{CONFIGMAPS}/plant-replay"),
                200,
                ours.clone(),
            )
            .await;
        server
            .expect(
                "DELETE",
                format!("{CONFIGMAPS}/plant-replay"),
                200,
                ours.clone(),
            )
            .await;
    };
    let none = std::collections::BTreeMap::new();
    let (r, ()) = tokio::join!(
        plcfleet::k8s::apply_replay(ctx.client.clone(), &sf, &none),
        script
    );
    r.unwrap();
    // Someone else's ConfigMap of that name is never overwritten.
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "plant-replay", "namespace": "ot"}});
    let (r, _) = tokio::join!(
        plcfleet::k8s::apply_replay(ctx.client.clone(), &sf, &files),
        server.expect("GET", format!("{CONFIGMAPS}/plant-replay"), 200, theirs)
    );
    let err = r.unwrap_err().to_string();
    assert!(err.contains("not this fleet's"), "{err}");
    server.done().await;
}

fn with_status(generation: i64, observed: i64, ready: u32, valid: bool) -> Value {
    let mut sf = fleet(SPEC);
    sf.metadata.generation = Some(generation);
    sf.status = Some(SimulatorFleetStatus {
        desired: 2,
        ready,
        observed_generation: Some(observed),
        conditions: vec![plcfleet::k8s::Condition {
            type_: "Valid".into(),
            status: if valid { "True" } else { "False" }.into(),
            reason: if valid { "Valid" } else { "InvalidSpec" }.into(),
            message: if valid {
                ""
            } else {
                "spec.simulators[0].ip: no"
            }
            .into(),
            last_transition_time: None,
            observed_generation: Some(observed),
        }],
    });
    serde_json::to_value(&sf).unwrap()
}

#[tokio::test]
async fn cli_apply_waits_until_the_controller_has_seen_the_spec_and_all_are_ready() {
    use plcfleet::k8s::{wait_ready, Wait};
    let (ctx, mut server) = setup();
    let mut seen = Vec::new();
    let script = async {
        // The controller still describes the previous generation, all ready: not yet.
        server
            .expect(
                "GET",
                format!("{FLEETS}/plant"),
                200,
                with_status(4, 3, 2, true),
            )
            .await;
        server
            .expect(
                "GET",
                format!("{FLEETS}/plant"),
                200,
                with_status(4, 4, 2, true),
            )
            .await;
    };
    let (r, ()) = tokio::join!(
        wait_ready(
            ctx.client.clone(),
            "ot",
            "plant",
            Duration::from_secs(5),
            Duration::from_millis(10),
            |st| seen.push((st.ready, st.observed_generation)),
        ),
        script
    );
    match r.unwrap() {
        Wait::Ready(st) => assert_eq!((st.ready, st.desired), (2, 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen,
        [(2, Some(3))],
        "one progress report, for the first poll"
    );
    // A spec the controller refuses ends the wait with its reason.
    let (r, _) = tokio::join!(
        wait_ready(
            ctx.client.clone(),
            "ot",
            "plant",
            Duration::from_secs(5),
            Duration::from_millis(10),
            |_| {}
        ),
        server.expect(
            "GET",
            format!("{FLEETS}/plant"),
            200,
            with_status(4, 4, 0, false)
        )
    );
    assert_eq!(
        r.unwrap(),
        Wait::Invalid("spec.simulators[0].ip: no".into())
    );
    server.done().await;
}

#[tokio::test]
async fn cli_apply_wait_times_out_with_the_last_status() {
    use plcfleet::k8s::{wait_ready, Wait};
    let (ctx, mut server) = setup();
    let started = std::time::Instant::now();
    let wait = wait_ready(
        ctx.client.clone(),
        "ot",
        "plant",
        Duration::from_millis(300),
        Duration::from_millis(50),
        |_| {},
    );
    // Answer every poll with one simulator of two ready, until the wait gives up.
    let answer = async {
        let mut polls = 0;
        loop {
            server
                .expect(
                    "GET",
                    format!("{FLEETS}/plant"),
                    200,
                    with_status(4, 4, 1, true),
                )
                .await;
            polls += 1;
            if polls > 100 {
                break polls;
            }
        }
    };
    let r = tokio::select! {
        r = wait => r,
        n = answer => panic!("still polling after {n} polls"),
    };
    match r.unwrap() {
        Wait::TimedOut(Some(st)) => assert_eq!((st.ready, st.desired), (1, 2)),
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn web_simulators_take_their_token_from_the_fleets_secret() {
    let web = SPEC.replace(
        "identity: { serial: auto }",
        "identity: { serial: auto }\n    web: true",
    );
    // Without a token file the spec is refused, saying what to add.
    let e = validate(&fleet(&web)).unwrap_err().to_string();
    assert!(
        e.contains("spec.simulators[0].web") || e.contains("needs a token"),
        "{e}"
    );
    assert!(e.contains("webTokenFile"), "{e}");
    let sf = fleet(&(web + "webTokenFile: web-token\n"));
    let f = validate(&sf).unwrap();
    let pod = plcfleet::kube_controller::pod_for(&sf, &f, &f.simulators[0]);
    assert_eq!(
        pod["spec"]["containers"][0]["env"],
        json!([{"name": "ENIP_WEB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "plant-web-token", "key": "token"}}}])
    );
    // The Secret `plcfleet apply` writes: owned by the fleet, the token under `token`.
    let s = serde_json::to_value(plcfleet::k8s::web_token_secret(&sf, "t0ken")).unwrap();
    assert_eq!(s["metadata"]["name"], "plant-web-token");
    assert_eq!(s["metadata"]["namespace"], "ot");
    assert_eq!(
        s["metadata"]["ownerReferences"][0]["kind"],
        "SimulatorFleet"
    );
    assert_eq!(s["metadata"]["ownerReferences"][0]["uid"], "uid-7");
    assert_eq!(s["metadata"]["labels"]["plcfleet.io/fleet"], "plant");
    assert_eq!(s["data"]["token"], "dDBrZW4=");
    // A simulator without web gets no token at all.
    let plain = fleet(SPEC);
    let f = validate(&plain).unwrap();
    let pod = plcfleet::kube_controller::pod_for(&plain, &f, &f.simulators[0]);
    assert_eq!(pod["spec"]["containers"][0]["env"], json!([]));
}
