//! The plan and the local backend: converge, re-apply (nothing changes), change one
//! simulator (only it is recreated), drop one (it is deleted), delete all.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use plcfleet::apply::{self, ApplyOptions};
use plcfleet::backend::{Backend, Observed};
use plcfleet::local::LocalBackend;
use plcfleet::manifest::{self, Fleet};
use plcfleet::plan::{plan, Action};

fn fleet(n: u32, extra: &str) -> Fleet {
    let yaml = format!(
        "kind: Fleet\nmetadata: {{name: t}}\nspec:\n  backend: local\n  network: {{subnet: 127.78.0.0/16}}\n  defaults:\n    tags: {{SCADA: \"DINT[10]\"}}\n    identity: {{serial: auto}}\n  simulators:\n    - name: s-{{index:02}}\n      replicas: {n}\n      ipStart: 127.78.0.10\n{extra}"
    );
    manifest::parse(Path::new("t.yaml"), &yaml).unwrap()
}

fn verbs(p: &plcfleet::plan::Plan) -> Vec<(String, String)> {
    p.actions
        .iter()
        .filter(|a| !matches!(a, Action::Unchanged(_)))
        .map(|a| (a.verb().to_owned(), a.name().to_owned()))
        .collect()
}

#[test]
fn plans_match_by_name_and_hash() {
    let f = fleet(3, "");
    let obs = |name: &str, hash: String, running| Observed {
        name: name.into(),
        id: format!("id-{name}"),
        ip: None,
        spec_hash: hash,
        running,
        started: None,
    };
    let h = |i: usize| f.simulators[i].spec_hash(&f.image);
    let observed = vec![
        obs("s-01", h(0), true),
        obs("s-02", "stale".into(), true),
        obs("s-03", h(2), false),
        obs("s-01", h(0), true),
        obs("gone", "x".into(), true),
    ];
    let p = plan(&f, &observed);
    assert_eq!(
        verbs(&p),
        [
            // The duplicate s-01 (an interrupted apply): one kept, one deleted.
            ("delete".into(), "s-01".into()),
            // A changed spec, and a stopped simulator.
            ("update".into(), "s-02".into()),
            ("update".into(), "s-03".into()),
            // No longer in the manifest.
            ("delete".into(), "gone".into()),
        ]
    );
    assert!(plan(&f, &observed[..1]).changes());
    assert_eq!(plan(&f, &[]).count("create"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_fleets_converge_and_reapply_changes_nothing() {
    let b = LocalBackend::new();
    let opts = ApplyOptions {
        timeout: Duration::from_secs(20),
        ..ApplyOptions::default()
    };
    let f = fleet(20, "");
    let r = apply::apply(&b, &f, &opts).await.unwrap();
    assert_eq!(
        (r.plan.count("create"), r.healthy),
        (20, 20),
        "{:?}",
        r.failures
    );
    // Each answers as itself.
    let id = plcfleet::probe::list_identity(f.simulators[4].ip, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(plcfleet::probe::is_itself(&id, &f.simulators[4]));
    assert!(!plcfleet::probe::is_itself(&id, &f.simulators[5]));

    let again = apply::apply(&b, &f, &opts).await.unwrap();
    assert!(!again.plan.changes());
    assert_eq!(again.healthy, 20);

    // One more tag on one simulator: only it is recreated.
    let mut changed = f.clone();
    changed.simulators[7].tags.push("Extra=REAL".into());
    let r = apply::apply(&b, &changed, &opts).await.unwrap();
    assert_eq!(verbs(&r.plan), [("update".to_owned(), "s-08".to_owned())]);
    assert_eq!(r.healthy, 20);

    // Fewer replicas: the rest are deleted.
    let smaller = fleet(15, "");
    let r = apply::apply(&b, &smaller, &opts).await.unwrap();
    assert_eq!(r.plan.count("delete"), 5);
    assert_eq!(b.list("t").await.unwrap().len(), 15);
    assert!(
        plcfleet::probe::list_identity(f.simulators[19].ip, Duration::from_millis(300))
            .await
            .is_err()
    );

    let gone = apply::delete(&b, &smaller).await.unwrap();
    assert_eq!(gone.len(), 15);
    assert!(b.list("t").await.unwrap().is_empty());
}
