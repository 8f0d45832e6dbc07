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
            "fleet.yaml:8:31: spec.simulators[0]: unknown field `colour`, expected one of `name`, `ip`, `replicas`, `ipStart`, `tags`, `identity`, `web`, `generators`, `replay`\n  hint: run `plcfleet schema` for every field a manifest may have",
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
    ] {
        assert!(s.contains(field), "{field}");
    }
}
