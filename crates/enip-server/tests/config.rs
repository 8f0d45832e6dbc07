//! `--config FILE.yaml`: what a config sets, and how a bad one is refused (with file,
//! line and item; the controller left as it was).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};

use enip_device::{Controller, Literal, RoutePolicy};
use enip_server::config::Config;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/plc.yaml")
}

fn apply(text: &str) -> Result<Controller, String> {
    let mut c = Controller::new();
    Config::parse(Path::new("plc.yaml"), text.to_owned())
        .and_then(|cfg| cfg.apply(&mut c))
        .map_err(|e| e.to_string())?;
    Ok(c)
}

#[test]
fn the_example_config_loads_as_documented() {
    let cfg = Config::load(&example()).unwrap();
    let mut c = Controller::new();
    cfg.apply(&mut c).unwrap();
    assert_eq!(cfg.tag_count(), 8);
    assert!(c.udts.iter().any(|u| u.name == "Motor"));
    let id = &c.identity;
    assert_eq!(id.revision, (32, 11));
    assert_eq!(id.serial, 0x00C0_FFEE);
    assert_eq!(id.controller_name, "Line3_Filler");
    assert_eq!(c.network.host_name, "line3-plc");
    assert_eq!(c.route, RoutePolicy::parse("1/0").unwrap());
    assert_eq!(
        c.values("recipe", 0, 1).unwrap(),
        [Literal::Text("Sourdough".into())]
    );
    assert_eq!(
        c.values("Setpoints", 0, 4).unwrap(),
        [72.5, 68.0, 0.0, -3.25].map(Literal::Float)
    );
    assert_eq!(c.values("Alarms", 0, 1).unwrap(), [Literal::Int(0b1010)]);
    assert_eq!(
        c.values("Volts", 0, 2).unwrap(),
        [Literal::Int(230), Literal::Int(231)]
    );
    assert!(c.tags.find("Program:Main.Step").is_some());
    assert_eq!(c.attribute_tags.len(), 1);
}

#[test]
fn small_configs() {
    let c = apply("").unwrap();
    assert!(c.tags.is_empty());
    let c = apply("tags: [A, B=DINT, C@0x22/1/1=SINT]\nroute_path: false").unwrap();
    assert_eq!(c.tags.len(), 3);
    assert_eq!(c.route, RoutePolicy::Empty);
    let c = apply("route_path: [{port: 1, link: 2}]").unwrap();
    assert_eq!(c.route, RoutePolicy::parse("1/2").unwrap());
    let c = apply("tags:\n  - {name: Big, type: ULINT, value: 18446744073709551615}").unwrap();
    assert_eq!(
        c.values("Big", 0, 1).unwrap(),
        [Literal::Int(u64::MAX.into())]
    );
}

#[test]
fn bad_configs_say_what_and_where() {
    let cases = [
        (
            "identity:\n  vendor: 1\n  colour: red\n",
            "plc.yaml: identity: unknown field `colour`, expected one of `vendor`, `device_type`, `product_code`, `revision`, `status`, `serial`, `product_name`, `state`, `controller_name` at line 3 column 3",
        ),
        (
            "identity:\n  revision: 32.10\n",
            "plc.yaml: identity.revision: write the revision in quotes (`\"32.1\"`): as a number, 32.10 reads as 32.1 at line 2 column 13",
        ),
        (
            "identity:\n  revision: \"32\"\n",
            "plc.yaml: identity.revision: revision `32` is not MAJOR.MINOR (0-255 each) at line 2 column 13",
        ),
        (
            "identity:\n  vendor: 70000\n",
            "plc.yaml: identity.vendor: invalid value: integer `70000`, expected u16 at line 2 column 11",
        ),
        (
            "identity:\n  product_name: 1756-L81E/B LOGIX5581E with a very long name\n",
            "plc.yaml:2: identity.product_name: `1756-L81E/B LOGIX5581E with a very long name` is longer than 32 characters (a SHORT_STRING in ListIdentity)",
        ),
        (
            "route_path: 0/1\n",
            "plc.yaml:1: route_path: bad route path `0/1`: bad port number `0`",
        ),
        (
            "tags:\n  - A=DINT\n  - B=FLOAT[3]\n",
            "plc.yaml:3: tags[1] `B`: unknown type `FLOAT` in tag spec `B=FLOAT[3]` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING SSTRING)",
        ),
        (
            "tags:\n  - name: Speeds\n    type: SINT[2]\n    value: [1, 300]\n",
            "plc.yaml:2: tags[0] `Speeds`: `Speeds[1]`: 300 is not a valid SINT: out of range",
        ),
        (
            "tags:\n  - name: X\n    typo: DINT\n",
            "plc.yaml: tags[0]: unknown field `typo`, expected one of `name`, `type`, `address`, `value` at line 3 column 5",
        ),
        (
            "tags:\n  - A\n  - a=DINT\n",
            "plc.yaml:3: tags[1] `a`: duplicate tag `a`",
        ),
        (
            "udts:\n  - name: Motor\n    members:\n      - {name: Speed, type: FLOAT}\n",
            "plc.yaml:2: udts[0] `Motor`: unknown type `FLOAT` for member `Speed` of structure `Motor` (known: BOOL SINT INT DINT LINT USINT UINT UDINT ULINT REAL LREAL STRING; define a structure before using it)",
        ),
        ("tags: 7\n", "plc.yaml: tags: invalid type: integer `7`, expected a sequence at line 1 column 7"),
    ];
    for (text, msg) in cases {
        assert_eq!(apply(text).unwrap_err(), msg, "{text}");
    }
}

#[test]
fn a_failed_config_changes_nothing() {
    let mut c = Controller::new();
    c.add_tag("Keep=DINT").unwrap();
    let cfg = Config::parse(
        Path::new("plc.yaml"),
        "identity: {controller_name: Changed}\ntags: [New=DINT, Bad=NOPE]\n".into(),
    )
    .unwrap();
    assert!(cfg.apply(&mut c).is_err());
    assert_eq!(c.tags.len(), 1);
    assert!(c.tags.find("New").is_none());
    assert_eq!(c.identity.controller_name, "Simulator");
}
