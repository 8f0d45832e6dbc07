//! Fleet manifests: the examples load as documented; bad ones are refused with
//! file:line:column and a hint, all problems at once.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use plcfleet::manifest::{self, BackendKind, Driver};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/examples")
        .join(name)
}

#[test]
fn the_issue_example_applies_as_written() {
    let f = manifest::load(&example("plant-a.yaml")).unwrap();
    assert_eq!(
        (f.name.as_str(), f.backend),
        ("plant-a", BackendKind::Docker)
    );
    assert_eq!(f.image, "cpppo/scada:latest");
    assert_eq!(f.docker_host, None);
    assert_eq!(f.network.driver, Driver::Bridge);
    assert_eq!(f.network.gateway, Ipv4Addr::new(10, 213, 0, 1));
    assert_eq!(f.simulators.len(), 201);
    let boiler = &f.simulators[0];
    assert_eq!(boiler.name, "boiler-1");
    assert_eq!(
        boiler.tags,
        [
            "SCADA=DINT[1000]",
            "Temperature=REAL",
            "Setpoints=REAL[16]",
            "Recipe=STRING"
        ]
    );
    assert!(boiler
        .replay
        .as_ref()
        .unwrap()
        .file
        .ends_with("histories/boiler.hst"));
    let l1 = &f.simulators[1];
    let l200 = &f.simulators[200];
    assert_eq!(
        (l1.name.as_str(), l1.ip),
        ("line-001", Ipv4Addr::new(10, 213, 1, 1))
    );
    assert_eq!(
        (l200.name.as_str(), l200.ip),
        ("line-200", Ipv4Addr::new(10, 213, 1, 200))
    );
    // serial: auto is unique per replica (from the address); defaults merge in.
    assert_eq!(l1.identity["serial"], "0x0ad50101");
    assert_eq!(l200.identity["serial"], "0x0ad501c8");
    assert_eq!(l1.identity["revision"], "32.11");
    assert_eq!(
        l1.args(),
        [
            "-a",
            "10.213.1.1:44818",
            "-w",
            "10.213.1.1:8080",
            "--identity",
            "product_name=1756-L81E/B LOGIX5581E",
            "--identity",
            "revision=32.11",
            "--identity",
            "serial=0x0ad50101",
            "-g",
            "SCADA[0]=ramp 0..1000 every 1s",
            "-g",
            "SCADA[1]=sine 50 +/- 25 period 60s",
            "SCADA=DINT[1000]",
        ]
    );
    // The spec hash changes with anything that matters, and only then.
    let h = l1.spec_hash(&f.image);
    assert_eq!(h, l1.clone().spec_hash(&f.image));
    assert_ne!(h, l1.spec_hash("cpppo/scada:other"));
    let mut moved = l1.clone();
    moved.tags.push("X=INT".into());
    assert_ne!(h, moved.spec_hash(&f.image));
}

#[test]
fn the_quickstart_is_a_local_fleet_of_100() {
    let f = manifest::load(&example("quickstart.yaml")).unwrap();
    assert_eq!(f.backend, BackendKind::Local);
    assert_eq!(f.simulators.len(), 100);
    assert_eq!(f.simulators[99].ip, Ipv4Addr::new(127, 77, 0, 109));
}

fn errors(yaml: &str) -> String {
    manifest::parse(Path::new("fleet.yaml"), yaml)
        .unwrap_err()
        .to_string()
}

const HEAD: &str = "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: docker\n  network: {subnet: 10.9.0.0/24}\n  defaults: {tags: {SCADA: DINT}}\n  simulators:\n";

#[test]
fn bad_manifests_say_where_and_what_to_do() {
    let cases = [
        (
            format!("{HEAD}    - {{name: a, ip: 10.9.0.5, colour: red}}\n"),
            "fleet.yaml:8:31: spec.simulators[0]: unknown field `colour`, expected one of `name`, `ip`, `replicas`, `ipStart`, `tags`, `identity`, `web`, `generators`, `replay`, `service`, `multus`\n  hint: run `plcfleet schema` for every field a manifest may have",
        ),
        (
            format!("{HEAD}    - {{name: a, ip: 10.9.0.5}}\n    - {{name: a, ip: 10.9.0.6}}\n"),
            "fleet.yaml:9:8: duplicate simulator name `a` (also in spec.simulators[0])",
        ),
        (
            format!("{HEAD}    - {{name: a, ip: 10.9.0.5}}\n    - {{name: b, ip: 10.9.0.5}}\n"),
            "fleet.yaml:9:17: b: 10.9.0.5 is already `a`'s address\n  hint: every simulator needs its own address",
        ),
        (
            format!("{HEAD}    - name: a\n      ip: 10.9.1.5\n"),
            "fleet.yaml:9:7: a: 10.9.1.5 is outside the subnet 10.9.0.0/24\n  hint: pick addresses inside spec.network.subnet",
        ),
        (
            format!("{HEAD}    - {{name: a, ip: 10.9.0.1}}\n    - {{name: b, ip: 10.9.0.255}}\n"),
            "fleet.yaml:8:17: a: 10.9.0.1 is the gateway\n  hint: start after the gateway, e.g. .10\nfleet.yaml:9:17: b: 10.9.0.255 is the broadcast address\n  hint: start after the gateway, e.g. .10",
        ),
        (
            format!("{HEAD}    - name: a\n      ip: 10.9.0.5\n      tags: {{X: FLOAT}}\n"),
            "fleet.yaml:10:14: unknown type `FLOAT` in tag spec `X=FLOAT` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING SSTRING)\n  hint: TYPE is BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING SSTRING, with [n], [a,b] or [a,b,c]",
        ),
        (
            format!("{HEAD}    - name: a\n      ip: 10.9.0.5\n      tags: {{X: INT}}\n      generators: {{X: \"ramp 0..9 each 1s\"}}\n"),
            "fleet.yaml:11:20: generator `ramp 0..9 each 1s`: expected `every`, found `each`\n  hint: ramp A..B every Ns | sine C +/- A period Ps | random A..B every Ns | square A..B period Ps",
        ),
        (
            format!("{HEAD}    - name: line\n      replicas: 3\n      ipStart: 10.9.0.10\n"),
            "fleet.yaml:8:7: `line` names 3 replicas alike\n  hint: put {index} or {index:03} in the name",
        ),
        (
            format!("{HEAD}    - name: l{{index}}\n      replicas: 1001\n      ipStart: 10.9.0.10\n"),
            "fleet.yaml:10:7: l246: 10.9.0.255 is the broadcast address\n  hint: start after the gateway, e.g. .10",
        ),
        (
            "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: docker\n  network: {subnet: 10.9.0.0/16}\n  defaults: {tags: {S: INT}}\n  simulators:\n    - name: l{index}\n      replicas: 1001\n      ipStart: 10.9.0.10\n".to_owned(),
            "fleet.yaml:7:3: 1001 simulators on one bridge network; a Linux bridge holds about 1000\n  hint: split the fleet into manifests of at most 1000 simulators, each with its own network and subnet, or use driver: macvlan",
        ),
        (
            "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: docker\n  network: {subnet: 10.9.0.0/24, driver: macvlan}\n  simulators: []\n".to_owned(),
            "fleet.yaml:5:34: a macvlan network needs `parent`\n  hint: add parent: <host interface>, e.g. eth1",
        ),
        (
            "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: local\n  network: {subnet: 10.9.0.0/24}\n  simulators: [{name: a, ip: 10.9.0.5, tags: {S: INT}}]\n".to_owned(),
            "fleet.yaml:5:13: the local backend serves on loopback; 10.9.0.0/24 is not in 127.0.0.0/8\n  hint: use e.g. subnet: 127.77.0.0/16",
        ),
        (
            "kind: Flock\nmetadata: {name: Plant_A}\nspec:\n  backend: local\n  simulators: []\n".to_owned(),
            "fleet.yaml:1:1: kind `Flock` is not `Fleet`\n  hint: write `kind: Fleet`\nfleet.yaml:2:12: fleet name `Plant_A`: only lower-case letters, digits and `-`\n  hint: e.g. `plant-a`",
        ),
        (
            format!("{HEAD}    - {{name: a, ip: 10.9.0.5}}\n  dockerHost: ssh://box-2\n"),
            "fleet.yaml:9:3: `ssh://box-2` is not a unix:// or tcp:// address\n  hint: e.g. tcp://box-2:2375, or tunnel ssh with `ssh -L`",
        ),
        (
            "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: podman\n  simulators: []\n".to_owned(),
            "fleet.yaml:4:12: spec.backend: unknown variant `podman`, expected one of `local`, `docker`, `kubernetes`",
        ),
        (
            "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: local\n  simulators: [{name: a, ip: 127.77.0.5}]\n".to_owned(),
            "fleet.yaml:5:16: simulator `a` has no tags\n  hint: give it tags (or spec.defaults.tags), e.g. tags: {SCADA: \"DINT[1000]\"}",
        ),
    ];
    let mut wrong = Vec::new();
    for (yaml, want) in &cases {
        let got = errors(yaml);
        if &got != want {
            wrong.push(format!("--- {yaml}\n got: {got:?}\nwant: {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const K8S: &str = "kind: Fleet\nmetadata: {name: f}\nspec:\n  backend: kubernetes\n  network: {subnet: 10.9.0.0/16}\n  defaults: {tags: {SCADA: DINT}}\n  simulators:\n";

#[test]
fn kubernetes_services_and_multus_resolve_per_simulator() {
    use manifest::{Multus, ServiceType};
    let yaml = format!(
        "{}    - {{name: a, ip: 10.9.0.5, service: {{type: LoadBalancer, loadBalancerIP: 192.168.50.10, annotations: {{x: y}}}}}}\n    - {{name: \"b-{{index}}\", replicas: 2, ipStart: 10.9.1.1, multus: {{network: ot/floor}}}}\n",
        K8S.replace(
            "defaults: {tags: {SCADA: DINT}}",
            "defaults: {tags: {SCADA: DINT}, service: {annotations: {pool: plc}}}"
        )
    );
    let f = manifest::parse(Path::new("fleet.yaml"), &yaml).unwrap();
    let a = f.simulators[0].service.as_ref().unwrap();
    assert_eq!(a.type_, ServiceType::LoadBalancer);
    assert_eq!(a.load_balancer_ip, Some(Ipv4Addr::new(192, 168, 50, 10)));
    // Annotations merge by key: the defaults' and the simulator's own.
    assert_eq!(a.annotations.len(), 2);
    assert_eq!(f.simulators[0].multus, None);
    // Defaults alone: a ClusterIP Service for every simulator.
    let b = f.simulators[2].service.as_ref().unwrap();
    assert_eq!(
        (b.type_, b.load_balancer_ip),
        (ServiceType::ClusterIP, None)
    );
    assert_eq!(
        f.simulators[2].multus,
        Some(Multus {
            namespace: Some("ot".into()),
            name: "floor".into(),
            prefix: 16
        })
    );
}

#[test]
fn bad_service_and_multus_fields_say_where_and_what_to_do() {
    let cases = [
        (
            format!("{HEAD}    - {{name: a, ip: 10.9.0.5, service: {{type: ClusterIP}}}}\n"),
            "fleet.yaml:8:31: `service` is for the kubernetes backend, not docker\n  hint: remove it, or write `backend: kubernetes`",
        ),
        (
            HEAD.replace("defaults: {tags: {SCADA: DINT}}", "defaults: {tags: {SCADA: DINT}, multus: {network: floor}}")
                + "    - {name: a, ip: 10.9.0.5}\n    - {name: b, ip: 10.9.0.6}\n",
            "fleet.yaml:6:35: `multus` is for the kubernetes backend, not docker\n  hint: remove it, or write `backend: kubernetes`",
        ),
        (
            format!("{K8S}    - name: a\n      ip: 10.9.0.5\n      service: {{type: LoadBalancer, loadBalancerIP: 10.9.0.300}}\n"),
            "fleet.yaml:10:37: `10.9.0.300` is not an IPv4 address\n  hint: e.g. loadBalancerIP: 192.168.50.10",
        ),
        (
            format!("{K8S}    - name: a\n      ip: 10.9.0.5\n      service: {{loadBalancerIP: 10.1.0.9}}\n"),
            "fleet.yaml:10:17: loadBalancerIP needs `type: LoadBalancer`, not ClusterIP\n  hint: add type: LoadBalancer, or remove loadBalancerIP",
        ),
        (
            format!("{K8S}    - name: a-{{index}}\n      replicas: 2\n      ipStart: 10.9.0.5\n      service: {{type: LoadBalancer, loadBalancerIP: 10.1.0.9}}\n"),
            "fleet.yaml:11:37: one loadBalancerIP for 2 replicas\n  hint: give each simulator its own entry, or leave loadBalancerIP out and let the load balancer pick",
        ),
        (
            format!("{K8S}    - {{name: a, ip: 10.9.0.5, service: {{type: LoadBalancer, loadBalancerIP: 10.1.0.9}}}}\n    - {{name: b, ip: 10.9.0.6, service: {{type: LoadBalancer, loadBalancerIP: 10.1.0.9}}}}\n"),
            "fleet.yaml:9:61: b: loadBalancerIP 10.1.0.9 is already `a`'s\n  hint: every Service needs its own address",
        ),
        (
            K8S.replace("defaults: {tags: {SCADA: DINT}}", "defaults: {tags: {SCADA: DINT}, service: {type: LoadBalancer, loadBalancerIP: 10.1.0.9}}")
                + "    - {name: a, ip: 10.9.0.5}\n",
            "fleet.yaml:6:65: a loadBalancerIP in defaults would give every simulator the same address\n  hint: set it on each simulator's own `service`",
        ),
        (
            format!("{K8S}    - name: a\n      ip: 10.9.0.5\n      multus: {{network: OT/floor_1}}\n"),
            "fleet.yaml:10:16: `OT/floor_1` is not `name` or `namespace/name` of a NetworkAttachmentDefinition\n  hint: lower-case letters, digits, `-` (and `.` in the name), e.g. network: ot/plant-floor",
        ),
        (
            K8S.replace("name: f}", "name: 9f}")
                + "    - {name: a, ip: 10.9.0.5, service: {}}\n",
            "fleet.yaml:8:31: the Service name `9f-a` is not a DNS label (a letter first, at most 63 characters)\n  hint: shorten the fleet or simulator name; a fleet name must start with a letter",
        ),
        (
            format!("{K8S}    - {{name: a, ip: 10.9.0.5, service: {{type: NodePort}}}}\n"),
            "fleet.yaml:8:47: spec.simulators[0].service.type: unknown variant `NodePort`, expected `ClusterIP` or `LoadBalancer`",
        ),
    ];
    let mut wrong = Vec::new();
    for (yaml, want) in &cases {
        let got = errors(yaml);
        if &got != want {
            wrong.push(format!("--- {yaml}\n got: {got:?}\nwant: {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_schema_names_every_field() {
    let s = manifest::schema();
    for field in [
        "ipStart",
        "replicas",
        "generators",
        "productName",
        "subnet",
        "parent",
        "loadBalancerIP",
        "multus",
    ] {
        assert!(s.contains(field), "{field}");
    }
}

/// `spec.webTokenFile`: needed by `web: true` on docker and kubernetes, read relative to
/// the manifest, hashed into the spec (never the token itself into anything shown).
#[test]
fn web_token_files_are_required_off_loopback_and_checked() {
    let dir = std::env::temp_dir().join(format!("plcfleet-web-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), "s3cret\n").unwrap();
    std::fs::write(dir.join("empty"), "\n").unwrap();
    let text = |backend: &str, token: &str| {
        format!(
            "kind: Fleet\nmetadata: {{name: w}}\nspec:\n  backend: {backend}\n{token}  network: {{subnet: 10.9.0.0/24}}\n  defaults:\n    tags: {{X: INT}}\n    web: true\n  simulators:\n    - {{name: a, ip: 10.9.0.10}}\n"
        )
    };
    let err = |backend: &str, token: &str| {
        manifest::parse(&dir.join("w.yaml"), &text(backend, token))
            .unwrap_err()
            .to_string()
            .replace(&dir.display().to_string(), "DIR")
    };
    assert_eq!(
        err("docker", ""),
        "DIR/w.yaml:8:5: `web: true` on the docker backend serves each simulator's web API on \
         its own address, which needs a token\n  hint: add `webTokenFile: web-token` under spec, \
         a file next to the manifest holding the token (e.g. `head -c 24 /dev/urandom | base64 \
         > web-token`)"
    );
    assert!(err("kubernetes", "").contains("on the kubernetes backend"));
    assert_eq!(
        err("docker", "  webTokenFile: missing\n"),
        "DIR/w.yaml:5:3: cannot read web token file `DIR/missing`: No such file or directory \
         (os error 2)\n  hint: paths are relative to the manifest"
    );
    assert_eq!(
        err("docker", "  webTokenFile: empty\n"),
        "DIR/w.yaml:5:3: web token file `DIR/empty` is empty\n  hint: put the token in it, on one line"
    );
    let local = text("local", "  webTokenFile: token\n").replace("10.9.0.", "127.9.0.");
    let e = manifest::parse(&dir.join("w.yaml"), &local)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("webTokenFile is for the docker and kubernetes backends"),
        "{e}"
    );
    assert!(e.contains("need no token: remove it"), "{e}");
    // Local fleets need none; docker with a token is valid, and the token changes the
    // spec hash without appearing in it or in Debug output.
    let local = text("local", "").replace("10.9.0.", "127.9.0.");
    assert!(manifest::parse(&dir.join("w.yaml"), &local)
        .unwrap()
        .web_token
        .is_none());
    let f = manifest::parse(
        &dir.join("w.yaml"),
        &text("docker", "  webTokenFile: token\n"),
    )
    .unwrap();
    let t = f.web_token.as_ref().unwrap();
    assert_eq!(t.value, "s3cret");
    assert!(!format!("{f:?}").contains("s3cret"));
    let h1 = f.simulators[0].spec_hash(&f.image);
    std::fs::write(dir.join("token"), "other\n").unwrap();
    let f2 = manifest::parse(
        &dir.join("w.yaml"),
        &text("docker", "  webTokenFile: token\n"),
    )
    .unwrap();
    assert_ne!(h1, f2.simulators[0].spec_hash(&f2.image));
    let body = plcfleet::docker::container_body(
        &f2,
        &f2.simulators[0],
        "h",
        "s",
        plcfleet::docker::Limits::default(),
    );
    assert_eq!(body.env, Some(vec!["ENIP_WEB_TOKEN=other".to_owned()]));
    assert!(!format!("{:?}", body.labels).contains("other"));
    let _ = std::fs::remove_dir_all(&dir);
}
