//! Value generators: the expressions, their values over time, and their errors.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use enip_device::{Controller, Literal};
use enip_server::generate::{Binding, Generator};

#[test]
fn expressions_give_values_over_time() {
    let ramp = Generator::parse("ramp 0..3 every 1s").unwrap();
    let got: Vec<Literal> = [0.0, 0.9, 1.0, 2.5, 3.0, 4.0, 5.2]
        .iter()
        .map(|&t| ramp.value_at(t))
        .collect();
    assert_eq!(got, [0, 0, 1, 2, 3, 0, 1].map(Literal::Int).to_vec());
    let sine = Generator::parse("sine 50 +/- 25 period 60s").unwrap();
    let at = |t| match sine.value_at(t) {
        Literal::Float(x) => (x * 1000.0).round() / 1000.0,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        [at(0.0), at(15.0), at(30.0), at(45.0)],
        [50.0, 75.0, 50.0, 25.0]
    );
    let sq = Generator::parse("square 0..1 period 500ms").unwrap();
    assert_eq!(
        [sq.value_at(0.1), sq.value_at(0.3), sq.value_at(0.6)],
        [
            Literal::Float(0.0),
            Literal::Float(1.0),
            Literal::Float(0.0)
        ]
    );
    let rnd = Generator::parse("random 10..20 every 2m").unwrap();
    for t in [0.0, 100.0, 1000.0, 1e6] {
        let Literal::Float(x) = rnd.value_at(t) else {
            panic!()
        };
        assert!((10.0..20.0).contains(&x), "{x}");
    }
    // The same step draws the same value; the next step another.
    assert_eq!(rnd.value_at(1.0), rnd.value_at(119.0));
    assert_ne!(rnd.value_at(1.0), rnd.value_at(121.0));
}

#[test]
fn bad_expressions_point_at_the_character() {
    let cases = [
        (
            "SCADA[0]=ramp 0..10 every",
            "expected a duration such as 500ms, 1s, 5m, found the end at character 25",
        ),
        (
            "SCADA[0]=ramp 0..10 each 1s",
            "expected `every`, found `each` at character 20",
        ),
        (
            "SCADA[0]=ramp 10..0 every 1s",
            "a ramp runs between whole numbers, low..high at character 14",
        ),
        (
            "SCADA[0]=sine 50 +- 25 period 1s",
            "expected `+/-`, found `+-` at character 17",
        ),
        (
            "SCADA[0]=sine 50 +/- 25 period 1y",
            "expected a duration such as 500ms, 1s, 5m, found `1y` at character 32",
        ),
        (
            "SCADA[0]=wobble 1",
            "unknown generator `wobble` (ramp, sine, random or square) at character 9",
        ),
        (
            "SCADA[0]=ramp 0..x every 1s",
            "expected a number, found `x` at character 17",
        ),
        (
            "SCADA[0]=ramp 0..1 every 1s now",
            "unexpected `now` after the expression at character 28",
        ),
        (
            "SCADA[x]=ramp 0..1 every 1s",
            "bad target `SCADA[x]`: expected Tag or Tag[index] at character 0",
        ),
        (
            "SCADA",
            "expected TAG=EXPRESSION, e.g. SCADA[0]=ramp 0..100 every 1s at character 5",
        ),
    ];
    for (text, msg) in cases {
        let e = Binding::parse(text).unwrap_err();
        let shown = format!("{} at character {}", e.message, e.offset);
        assert_eq!(shown, msg, "{text}");
        // The caret sits under the named character.
        let p = e.pointer();
        let caret = p.lines().nth(1).unwrap().len() - 1;
        assert_eq!(caret, e.offset);
    }
}

#[tokio::test(start_paused = true)]
async fn generators_drive_tags_and_round_for_integers() {
    let mut c = Controller::new();
    c.add_tag("SCADA=DINT[2]").unwrap();
    c.add_tag("Temp=REAL").unwrap();
    let ctrl = Arc::new(Mutex::new(c));
    let bindings = vec![
        Binding::parse("SCADA[1]=ramp 5..9 every 1s").unwrap(),
        Binding::parse("SCADA[0]=sine 10 +/- 5 period 4s").unwrap(),
        Binding::parse("Temp=square 1.5..2.5 period 2s").unwrap(),
    ];
    tokio::spawn(enip_server::generate::run(ctrl.clone(), bindings));
    tokio::time::sleep(Duration::from_millis(1_550)).await;
    let c = enip_server::lock(&ctrl);
    assert_eq!(c.values("SCADA", 1, 1).unwrap(), [Literal::Int(6)]);
    // 10 + 5·sin(2π·1.5/4) = 13.5355 → 14 on a DINT.
    assert_eq!(c.values("SCADA", 0, 1).unwrap(), [Literal::Int(14)]);
    assert_eq!(c.values("Temp", 0, 1).unwrap(), [Literal::Float(2.5)]);
}
