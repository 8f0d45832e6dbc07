//! The Docker backend against the real engine: real networks and containers, each
//! simulator probed at its own address. Every test makes its own uniquely named fleet,
//! network and subnet (10.252.X.0/24), and a guard removes them even when it fails.
//!
//! Without a reachable engine the tests say why and pass, except under `CI=true`, where
//! they fail. The image: `PLCFLEET_TEST_IMAGE` if set (e.g. `cpppo/scada:latest` after
//! `docker/build.sh`); otherwise a static `enip-server` is built into
//! `target/plcfleet-docker-test` and wrapped `FROM scratch` (no registry is needed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use plcfleet::apply::{self, ApplyOptions};
use plcfleet::backend::{Backend, BackendError};
use plcfleet::docker::{DockerBackend, LABEL_FLEET};
use plcfleet::manifest::{self, Subnet};
use plcfleet::Fleet;

// ---- fixtures ------------------------------------------------------------------------

/// The engine, or `None` (with the reason printed) when there is none outside CI.
async fn engine(test: &str) -> Option<DockerBackend> {
    match DockerBackend::connect(None).await {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "{test}: CI=true and Docker is unreachable: {e} ({:?})",
                e.hint()
            )
        }
        Err(e) => {
            eprintln!("skipping {test}: Docker is unreachable: {e}");
            None
        }
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn docker_out(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The simulator image, built once per run unless `PLCFLEET_TEST_IMAGE` names one.
fn image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if let Ok(i) = std::env::var("PLCFLEET_TEST_IMAGE") {
                return i;
            }
            build_image()
        })
        .clone()
}

fn build_image() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("plcfleet-docker-test");
    let triple = "x86_64-unknown-linux-gnu";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let status = Command::new(cargo)
        .current_dir(&root)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--release",
            "-p",
            "enip-server",
            "--target",
            triple,
        ])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "building the static enip-server failed");
    let bin = target.join(triple).join("release/enip-server");
    let bytes = std::fs::read(&bin).unwrap();
    // The tag names the binary, so a rebuilt server gets a new image and an unchanged
    // one reuses it.
    let mut h = std::hash::DefaultHasher::new();
    h.write(&bytes);
    let tag = format!("plcfleet-test/scada:{:016x}", h.finish());
    if !docker_ok(&["image", "inspect", &tag]) {
        let dir = tempdir("image");
        let copy = dir.join("enip-server");
        std::fs::write(&copy, &bytes).unwrap();
        // The image runs it as a non-root user: it must be executable by all.
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            "FROM scratch\nCOPY enip-server /enip-server\nENTRYPOINT [\"/enip-server\"]\n",
        )
        .unwrap();
        docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("image {tag} ready in {:?}", started.elapsed());
    tag
}

fn tempdir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plcfleet-docker-{what}-{}", unique()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn unique() -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}

/// A /24 under 10.252.0.0/16 that no network on the engine overlaps, different for
/// every test of this run.
fn free_subnet() -> u8 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, unique() % 256, Ordering::SeqCst, Ordering::SeqCst);
    let mut used = Vec::new();
    for id in docker(&["network", "ls", "-q"]).lines() {
        let fmt = "{{range .IPAM.Config}}{{.Subnet}} {{end}}";
        let Some(subnets) = docker_out(&["network", "inspect", "--format", fmt, id]) else {
            continue; // removed meanwhile
        };
        used.extend(
            subnets
                .split_whitespace()
                .filter_map(|s| Subnet::parse(s).ok()),
        );
    }
    for _ in 0..256 {
        let x = (NEXT.fetch_add(1, Ordering::SeqCst) % 256) as u8;
        let mine = Subnet::parse(&format!("10.252.{x}.0/24")).unwrap();
        if !used
            .iter()
            .any(|s| s.contains(mine.base) || mine.contains(s.base))
        {
            return x;
        }
    }
    panic!("no free /24 left in 10.252.0.0/16")
}

/// Removes whatever a test made, even when it fails: containers of its fleet (by label),
/// and the containers and networks it names.
struct Cleanup {
    fleet: String,
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let label = format!("label={LABEL_FLEET}={}", self.fleet);
        let ours = docker_out(&["ps", "-aq", "--filter", &label]).unwrap_or_default();
        for id in ours
            .lines()
            .chain(self.containers.iter().map(String::as_str))
        {
            let _ = docker_ok(&["rm", "-f", id]);
        }
        for n in &self.networks {
            let _ = docker_ok(&["network", "rm", n]);
        }
    }
}

/// A fleet name and network name of its own, a free /24 for it, and a guard that removes
/// whatever the test leaves of them.
struct Scratch {
    name: String,
    net: String,
    x: u8,
    _guard: Cleanup,
}

fn scratch(prefix: &str) -> Scratch {
    let u = unique();
    let (name, net) = (format!("{prefix}-{u:08x}"), format!("{prefix}-{u:08x}-net"));
    Scratch {
        _guard: Cleanup {
            fleet: name.clone(),
            containers: vec![],
            networks: vec![net.clone()],
        },
        name,
        net,
        x: free_subnet(),
    }
}

struct Sim<'a> {
    name: &'a str,
    host: u8,
    tags: &'a str,
}

/// A fleet manifest for `sims` at 10.252.`x`.host, each with its own serial.
fn manifest_text(name: &str, net: &str, x: u8, image: &str, sims: &[Sim<'_>]) -> String {
    let mut t = format!(
        "kind: Fleet\nmetadata: {{ name: {name} }}\nspec:\n  backend: docker\n  image: \
         \"{image}\"\n  network: {{ name: {net}, driver: bridge, subnet: 10.252.{x}.0/24, \
         gateway: 10.252.{x}.1 }}\n  defaults:\n    tags: {{ SCADA: \"DINT[10]\" }}\n  \
         simulators:\n"
    );
    for s in sims {
        t.push_str(&format!(
            "    - {{ name: {}, ip: 10.252.{x}.{}, identity: {{ serial: {} }}, tags: {{ {} }} }}\n",
            s.name,
            s.host,
            0x5000 + u32::from(s.host),
            s.tags
        ));
    }
    t
}

fn fleet(text: &str) -> Fleet {
    manifest::parse(Path::new("test.yaml"), text).unwrap()
}

/// Container ids of a fleet by simulator, as the engine has them (not through plcfleet).
fn containers(fleet: &str) -> BTreeMap<String, Vec<String>> {
    let out = docker(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &format!("label={LABEL_FLEET}={fleet}"),
        "--format",
        "{{.Label \"plcfleet.simulator\"}} {{.ID}}",
    ]);
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in out.lines() {
        let (sim, id) = l.split_once(' ').unwrap();
        m.entry(sim.to_owned()).or_default().push(id.to_owned());
    }
    m
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        parallel: 8,
        timeout: Duration::from_secs(30),
        ..ApplyOptions::default()
    }
}

fn exists(kind: &str, name: &str) -> bool {
    docker_ok(&[kind, "inspect", name])
}

// ---- tests ---------------------------------------------------------------------------

#[tokio::test]
async fn a_fleet_applies_reapplies_changes_prunes_and_deletes_only_its_own() {
    let Some(b) = engine("lifecycle").await else {
        return;
    };
    let t0 = Instant::now();
    let image = image();
    let u = unique();
    let (name, net) = (format!("pft-{u:08x}"), format!("pft-{u:08x}-net"));
    let (x, y) = (free_subnet(), free_subnet());
    let other_net = format!("pft-{u:08x}-unrelated");
    let other_c = format!("pft-{u:08x}-unrelated-c");
    let other_fleet_c = format!("pft-{u:08x}-other-fleet");
    let _guard = Cleanup {
        fleet: name.clone(),
        containers: vec![other_c.clone(), other_fleet_c.clone()],
        networks: vec![net.clone(), other_net.clone()],
    };
    // Things that are not this fleet's: an unlabelled network and container, and a
    // container of another fleet.
    docker(&[
        "network",
        "create",
        "--subnet",
        &format!("10.252.{y}.0/24"),
        &other_net,
    ]);
    let (ip, addr) = (format!("10.252.{y}.5"), format!("10.252.{y}.5:44818"));
    docker(&[
        "run",
        "-d",
        "--name",
        &other_c,
        "--network",
        &other_net,
        "--ip",
        &ip,
        &image,
        "-a",
        &addr,
        "X=INT",
    ]);
    docker(&[
        "create",
        "--name",
        &other_fleet_c,
        "--label",
        "plcfleet.managed-by=plcfleet",
        "--label",
        &format!("{LABEL_FLEET}={name}-other"),
        "--label",
        "plcfleet.simulator=sim-1",
        &image,
    ]);

    let sims = |c_tags: &'static str| {
        vec![
            Sim {
                name: "sim-a",
                host: 10,
                tags: "",
            },
            Sim {
                name: "sim-b",
                host: 11,
                tags: "",
            },
            Sim {
                name: "sim-c",
                host: 12,
                tags: c_tags,
            },
            Sim {
                name: "sim-d",
                host: 13,
                tags: "",
            },
            Sim {
                name: "sim-e",
                host: 14,
                tags: "",
            },
        ]
    };
    let f1 = fleet(&manifest_text(&name, &net, x, &image, &sims("")));
    let r = apply::apply(&b, &f1, &opts()).await.unwrap();
    assert_eq!(r.failures, Vec::<String>::new());
    assert_eq!((r.plan.count("create"), r.healthy), (5, 5), "{}", r.plan);
    eprintln!("5 created and answering in {:?}", r.elapsed);
    let first = containers(&name);
    assert_eq!(first.len(), 5);
    assert!(first.values().all(|ids| ids.len() == 1));

    // Each container: hardened, limited, labelled, at its manifest address.
    let id_c = &first["sim-c"][0];
    let fmt = "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.HostConfig.CapDrop}} \
               {{.HostConfig.SecurityOpt}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} \
               {{.HostConfig.RestartPolicy.Name}} {{.Name}} {{json .Config.Cmd}} \
               {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
    let args = serde_json::to_string(&f1.simulators[2].args()).unwrap();
    assert_eq!(
        docker(&["inspect", "--format", fmt, id_c]),
        format!(
            "true 65532:65532 [ALL] [no-new-privileges:true] 67108864 500000000 \
             unless-stopped /{name}-sim-c {args} 10.252.{x}.12"
        )
    );
    // The network: labelled, with the dynamic range in a /28 no simulator uses.
    let fmt = "{{.Labels}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}}";
    assert_eq!(
        docker(&["network", "inspect", "--format", fmt, &net]),
        format!(
            "map[plcfleet.fleet:{name} plcfleet.managed-by:plcfleet] 10.252.{x}.0/24 \
             10.252.{x}.1 10.252.{x}.240/28"
        )
    );

    // Unchanged: nothing to do, nothing recreated.
    let r = apply::apply(&b, &f1, &opts()).await.unwrap();
    assert!(!r.plan.changes(), "{}", r.plan);
    assert_eq!((r.healthy, r.failures.len()), (5, 0));
    assert_eq!(containers(&name), first);

    // One simulator's tags change: only it is recreated.
    let f2 = fleet(&manifest_text(&name, &net, x, &image, &sims("Extra: REAL")));
    let r = apply::apply(&b, &f2, &opts()).await.unwrap();
    assert_eq!(r.failures, Vec::<String>::new());
    assert_eq!((r.plan.count("update"), r.plan.count("unchanged")), (1, 4));
    assert_eq!(r.healthy, 5);
    let second = containers(&name);
    for (sim, ids) in &second {
        assert_eq!(ids.len(), 1);
        assert_eq!(ids == &first[sim], sim != "sim-c", "{sim}");
    }

    // One simulator leaves the manifest: it is deleted, the others stay.
    let mut pruned = sims("Extra: REAL");
    pruned.retain(|s| s.name != "sim-e");
    let f3 = fleet(&manifest_text(&name, &net, x, &image, &pruned));
    let r = apply::apply(&b, &f3, &opts()).await.unwrap();
    assert_eq!((r.plan.count("delete"), r.healthy), (1, 4), "{}", r.plan);
    let mut expected = second.clone();
    expected.remove("sim-e");
    assert_eq!(containers(&name), expected);

    // Delete: nothing of the fleet left, nothing else touched.
    let removed = apply::delete(&b, &f3).await.unwrap();
    assert_eq!(removed.len(), 4);
    assert!(containers(&name).is_empty());
    assert!(!exists("network", &net), "the fleet's network is gone");
    assert!(b.list(&name).await.unwrap().is_empty());
    assert_eq!(
        docker(&["inspect", "--format", "{{.State.Running}}", &other_c]),
        "true"
    );
    assert!(exists("network", &other_net));
    assert!(exists("container", &other_fleet_c));
    eprintln!("lifecycle took {:?}", t0.elapsed());
}

#[tokio::test]
async fn what_is_not_ours_is_a_conflict_and_is_left_alone() {
    let Some(b) = engine("conflicts").await else {
        return;
    };
    let image = image();
    let u = unique();
    let (name, net) = (format!("pfc-{u:08x}"), format!("pfc-{u:08x}-net"));
    let (x, y) = (free_subnet(), free_subnet());
    let squatter = format!("{name}-sim-a");
    let holder = format!("{name}-holder");
    let overlap = format!("{name}-overlap");
    let _guard = Cleanup {
        fleet: name.clone(),
        containers: vec![squatter.clone(), holder.clone()],
        networks: vec![net.clone(), overlap.clone()],
    };
    let sims = [
        Sim {
            name: "sim-a",
            host: 10,
            tags: "",
        },
        Sim {
            name: "sim-b",
            host: 11,
            tags: "",
        },
    ];
    let f = fleet(&manifest_text(&name, &net, x, &image, &sims));

    // A network of that name with another subnet: refused, untouched, nothing created.
    let id = docker(&[
        "network",
        "create",
        "--subnet",
        &format!("10.252.{y}.0/24"),
        &net,
    ]);
    let e = apply::apply(&b, &f, &opts()).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, BackendError::Conflict(_)), "{e:?}");
    assert!(
        msg.contains(&format!(
            "network `{net}` exists with subnet 10.252.{y}.0/24 (driver bridge), but the fleet \
             wants subnet 10.252.{x}.0/24"
        )),
        "{msg}"
    );
    assert!(msg.contains(&format!("docker network rm {net}")), "{msg}");
    let fmt = "{{.ID}} {{range .IPAM.Config}}{{.Subnet}}{{end}}";
    assert_eq!(
        docker(&["network", "inspect", "--format", fmt, &net]),
        format!("{id} 10.252.{y}.0/24")
    );
    assert!(containers(&name).is_empty());
    // Same for a network of that name that another fleet owns.
    docker(&["network", "rm", &net]);
    docker(&[
        "network",
        "create",
        "--subnet",
        &format!("10.252.{x}.0/24"),
        "--gateway",
        &format!("10.252.{x}.1"),
        "--label",
        "plcfleet.managed-by=plcfleet",
        "--label",
        &format!("{LABEL_FLEET}=someone-else"),
        &net,
    ]);
    let e = apply::apply(&b, &f, &opts()).await.unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("network `{net}` belongs to fleet `someone-else`")),
        "{e}"
    );
    docker(&["network", "rm", &net]);
    // A network of another name whose subnet overlaps: named, and nothing made.
    docker(&[
        "network",
        "create",
        "--subnet",
        &format!("10.252.{x}.128/25"),
        &overlap,
    ]);
    let e = apply::apply(&b, &f, &opts()).await.unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "subnet 10.252.{x}.0/24 overlaps network(s) `{overlap}`"
        )),
        "{e}"
    );
    assert!(!exists("network", &net));
    docker(&["network", "rm", &overlap]);

    // A container that is not ours holds a simulator's name: that simulator fails with a
    // conflict naming the fix, the squatter keeps running, the other simulator is fine.
    let squatter_id = docker(&[
        "run",
        "-d",
        "--name",
        &squatter,
        "--network",
        "none",
        &image,
        "X=INT",
    ]);
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert!(
        r.failures[0].contains(&format!(
            "a container named `{squatter}` exists and plcfleet does not own it"
        )) && r.failures[0].contains(&format!("docker rm -f {squatter}")),
        "{:?}",
        r.failures
    );
    let fmt = "{{.Id}} {{.State.Running}}";
    assert_eq!(
        docker(&["inspect", "--format", fmt, &squatter]),
        format!("{squatter_id} true")
    );
    assert_eq!(containers(&name).keys().collect::<Vec<_>>(), ["sim-b"]);

    // A container that is not ours holds a simulator's address on the fleet's network:
    // that simulator fails naming the holder, and leaves no half-made container.
    let ip = format!("10.252.{x}.12");
    docker(&[
        "run",
        "-d",
        "--name",
        &holder,
        "--network",
        &net,
        "--ip",
        &ip,
        &image,
        "X=INT",
    ]);
    let more = [
        Sim {
            name: "sim-b",
            host: 11,
            tags: "",
        },
        Sim {
            name: "sim-c",
            host: 12,
            tags: "",
        },
    ];
    let f2 = fleet(&manifest_text(&name, &net, x, &image, &more));
    let r = apply::apply(&b, &f2, &opts()).await.unwrap();
    assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
    assert!(
        r.failures[0].contains(&format!(
            "address {ip} is already in use on network `{net}` by `{holder}`"
        )),
        "{:?}",
        r.failures
    );
    assert_eq!(containers(&name).keys().collect::<Vec<_>>(), ["sim-b"]);

    // Delete removes the fleet's containers but keeps a network others still use.
    let e = apply::delete(&b, &f2).await.unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "network `{net}` still has containers plcfleet did not remove: `{holder}`"
        )),
        "{e}"
    );
    assert!(containers(&name).is_empty());
    assert!(exists("network", &net));
    docker(&["rm", "-f", &holder]);
    apply::delete(&b, &f2).await.unwrap();
    assert!(!exists("network", &net));
    assert_eq!(
        docker(&["inspect", "--format", fmt, &squatter]),
        format!("{squatter_id} true")
    );
}

#[tokio::test]
async fn a_missing_image_is_a_clear_error_and_changes_nothing() {
    let Some(b) = engine("missing image").await else {
        return;
    };
    let u = unique();
    let (name, net) = (format!("pfi-{u:08x}"), format!("pfi-{u:08x}-net"));
    let x = free_subnet();
    let _guard = Cleanup {
        fleet: name.clone(),
        containers: vec![],
        networks: vec![net.clone()],
    };
    let missing = format!("plcfleet-test/missing:{u:08x}");
    let sims = [Sim {
        name: "sim-a",
        host: 10,
        tags: "",
    }];
    let f = fleet(&manifest_text(&name, &net, x, &missing, &sims));
    let e = apply::apply(&b, &f, &opts()).await.unwrap_err();
    assert_eq!(e.metric_label(), "unavailable");
    assert!(
        e.to_string()
            .contains(&format!("image `{missing}` is not on the Docker engine")),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("docker/build.sh"), "{e:?}");
    assert!(!exists("network", &net), "nothing was created");
    assert!(containers(&name).is_empty());
    // Creating a simulator directly says the same.
    let e = b
        .create(&f, &f.simulators[0], "h")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not on the Docker engine"), "{e}");
}

#[tokio::test]
async fn an_unreachable_engine_is_a_clear_error() {
    let e = DockerBackend::connect(Some("unix:///nonexistent/docker.sock"))
        .await
        .unwrap_err();
    assert_eq!(e.metric_label(), "unavailable");
    assert!(
        e.to_string()
            .contains("cannot reach Docker at `unix:///nonexistent/docker.sock`"),
        "{e}"
    );
    assert!(
        e.hint()
            .unwrap()
            .starts_with("is dockerd running? DOCKER_HOST=unix:///nonexistent/docker.sock"),
        "{e:?}"
    );
    // Nothing listens on port 1 of loopback.
    let e = DockerBackend::connect(Some("tcp://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert_eq!(e.metric_label(), "unavailable", "{e:?}");
    assert!(e.hint().unwrap().contains("DOCKER_HOST=tcp://127.0.0.1:1"));
    let e = DockerBackend::connect(Some("ssh://box")).await.unwrap_err();
    assert!(e.hint().unwrap().contains("tcp://HOST:2375"), "{e:?}");
}

/// Run by `an_interrupted_apply_converges_without_duplicates_or_orphans` in a child
/// process, which it kills with SIGKILL halfway; does nothing on its own.
#[tokio::test]
async fn kill9_child() {
    let Ok(path) = std::env::var("PLCFLEET_KILL9_MANIFEST") else {
        return;
    };
    let f = manifest::load(Path::new(&path)).unwrap();
    let b = DockerBackend::connect(None).await.unwrap();
    let slow = ApplyOptions {
        parallel: 1,
        ..opts()
    };
    let _ = apply::apply(&b, &f, &slow).await;
    // Never get here in peace: the parent kills us first.
    std::thread::sleep(Duration::from_secs(60));
}

#[tokio::test]
async fn an_interrupted_apply_converges_without_duplicates_or_orphans() {
    let Some(b) = engine("kill -9").await else {
        return;
    };
    let image = image();
    let Scratch {
        name,
        net,
        x,
        _guard,
    } = scratch("pfk");
    let names: Vec<String> = (1..=10).map(|i| format!("sim-{i:02}")).collect();
    let sims: Vec<Sim<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| Sim {
            name: n,
            host: 10 + i as u8,
            tags: "",
        })
        .collect();
    let text = manifest_text(&name, &net, x, &image, &sims);
    let dir = tempdir("kill9");
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, &text).unwrap();

    // `plcfleet apply`, killed with SIGKILL once a few containers exist.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["kill9_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("PLCFLEET_KILL9_MANIFEST", &path)
        .env("PLCFLEET_TEST_IMAGE", &image)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers(&name).len() < 3 {
        assert!(Instant::now() < deadline, "the child made no containers");
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let left = containers(&name);
    eprintln!("killed with {} of 10 containers made", left.len());
    assert!(
        left.len() < 10,
        "the kill came too late to interrupt anything"
    );

    // More debris an interrupted run could leave: a duplicate of a simulator carrying
    // our labels (created, never started), and one of a simulator the fleet no longer has.
    let a_sim = left.keys().next().unwrap().clone();
    let labels = docker(&[
        "inspect",
        "--format",
        "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}",
        &left[&a_sim][0],
    ]);
    let mut dup = vec!["create".to_owned(), "--network".into(), "none".into()];
    let mut orphan = dup.clone();
    for l in labels.lines() {
        dup.extend(["--label".to_owned(), l.to_owned()]);
        let l = if l.starts_with("plcfleet.simulator=") {
            "plcfleet.simulator=sim-99"
        } else {
            l
        };
        orphan.extend(["--label".to_owned(), l.to_owned()]);
    }
    dup.extend([
        "--name".into(),
        format!("{name}-{a_sim}-dup"),
        image.clone(),
    ]);
    orphan.extend(["--name".into(), format!("{name}-sim-99"), image.clone()]);
    docker(&dup.iter().map(String::as_str).collect::<Vec<_>>());
    docker(&orphan.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(containers(&name)[&a_sim].len(), 2);

    let f = fleet(&text);
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert_eq!(r.failures, Vec::<String>::new());
    assert_eq!(r.healthy, 10, "{}", r.plan);
    assert_eq!(r.plan.count("delete"), 2, "{}", r.plan);
    let after = containers(&name);
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), names);
    assert!(after.values().all(|ids| ids.len() == 1), "{after:?}");
    // The one kept is the one with the simulator's own name.
    let kept = docker(&["inspect", "--format", "{{.Name}}", &after[&a_sim][0]]);
    assert_eq!(kept, format!("/{name}-{a_sim}"));
    // And now it is settled.
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert!(!r.plan.changes(), "{}", r.plan);
    apply::delete(&b, &f).await.unwrap();
    assert!(containers(&name).is_empty() && !exists("network", &net));
}

/// Runs `ip ARGS`; false (with the reason printed) when it cannot.
fn ip(args: &[&str]) -> bool {
    match Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("ip {args:?}: {}", String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            eprintln!("ip {args:?}: {e}");
            false
        }
    }
}

/// Deletes a test's veth pair (and the macvlan interfaces on it).
struct Link(String);

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

#[tokio::test]
async fn a_macvlan_fleet_answers_on_a_parent_the_test_made() {
    let Some(b) = engine("macvlan").await else {
        return;
    };
    let image = image();
    let u = unique();
    let (name, net) = (format!("pfm-{u:08x}"), format!("pfm-{u:08x}-net"));
    let x = free_subnet();
    // The parent: one end of a veth pair (this kernel may lack `dummy`); the host reaches
    // the containers through its own macvlan on the same parent, in bridge mode.
    let (parent, peer, host) = (
        format!("pfp{u:08x}"),
        format!("pfq{u:08x}"),
        format!("pfh{u:08x}"),
    );
    let made = ip(&[
        "link", "add", &parent, "type", "veth", "peer", "name", &peer,
    ]);
    let _link = Link(parent.clone());
    let host_ip = format!("10.252.{x}.254/24");
    let ready = made
        && ip(&["link", "set", &parent, "up"])
        && ip(&["link", "set", &peer, "up"])
        && ip(&[
            "link", "add", &host, "link", &parent, "type", "macvlan", "mode", "bridge",
        ])
        && ip(&["addr", "add", &host_ip, "dev", &host])
        && ip(&["link", "set", &host, "up"]);
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and the test cannot make network interfaces (needs root)"
        );
        eprintln!("skipping macvlan: cannot make network interfaces (needs root)");
        return;
    }
    let _guard = Cleanup {
        fleet: name.clone(),
        containers: vec![],
        networks: vec![net.clone()],
    };
    let sims = [
        Sim {
            name: "sim-a",
            host: 10,
            tags: "",
        },
        Sim {
            name: "sim-b",
            host: 11,
            tags: "",
        },
    ];
    let text = manifest_text(&name, &net, x, &image, &sims).replace(
        "driver: bridge,",
        &format!("driver: macvlan, parent: {parent},"),
    );
    let f = fleet(&text);
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert_eq!(r.failures, Vec::<String>::new());
    assert_eq!(r.healthy, 2);
    let fmt = "{{.Driver}} {{.Options.parent}} {{range .IPAM.Config}}{{.IPRange}}{{end}}";
    assert_eq!(
        docker(&["network", "inspect", "--format", fmt, &net]),
        format!("macvlan {parent} 10.252.{x}.240/28")
    );
    // The same name on another parent is someone else's network.
    let other = f.clone();
    let mut other = other;
    other.network.parent = Some(peer.clone());
    let e = b.ensure_network(&other).await.unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "has parent interface {parent}, but the fleet wants {peer}"
        )),
        "{e}"
    );
    apply::delete(&b, &f).await.unwrap();
    assert!(containers(&name).is_empty() && !exists("network", &net));
}

#[tokio::test]
async fn a_rebuilt_image_recreates_its_simulators() {
    let Some(b) = engine("rebuilt image").await else {
        return;
    };
    let base = image();
    let u = unique();
    let (name, net) = (format!("pfr-{u:08x}"), format!("pfr-{u:08x}-net"));
    let x = free_subnet();
    let tag = format!("plcfleet-test/rebuilt-{u:08x}:latest");
    struct Untag(String);
    impl Drop for Untag {
        fn drop(&mut self) {
            let _ = docker_out(&["rmi", &self.0]);
        }
    }
    let _guard = Cleanup {
        fleet: name.clone(),
        containers: vec![],
        networks: vec![net.clone()],
    };
    docker(&["tag", &base, &tag]);
    let _untag = Untag(tag.clone());
    let sims = [
        Sim {
            name: "sim-a",
            host: 10,
            tags: "",
        },
        Sim {
            name: "sim-b",
            host: 11,
            tags: "",
        },
    ];
    let f = fleet(&manifest_text(&name, &net, x, &tag, &sims));
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert_eq!((r.healthy, r.failures.len()), (2, 0), "{:?}", r.failures);
    let before = containers(&name);

    // Same name, new build (as `docker/build.sh` again): the manifest is unchanged, the
    // containers are not what it now means.
    let dir = tempdir("rebuild");
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nLABEL rebuilt={u}\n"),
    )
    .unwrap();
    docker(&["build", "-q", "-t", &tag, dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert_eq!((r.plan.count("update"), r.healthy), (2, 2), "{}", r.plan);
    let after = containers(&name);
    assert!(before.keys().all(|s| before[s] != after[s]));
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert!(!r.plan.changes(), "{}", r.plan);
    apply::delete(&b, &f).await.unwrap();
}

/// `plcfleet status NAME` and `delete NAME` with no manifest and no controller: the
/// engine's labels say what the fleet is.
#[tokio::test]
async fn a_fleet_by_name_is_shown_and_deleted_by_its_labels() {
    let Some(b) = engine("by-name").await else {
        return;
    };
    let image = image();
    let Scratch {
        name,
        net,
        x,
        _guard,
    } = scratch("pfn");
    let sims = [
        Sim {
            name: "a",
            host: 10,
            tags: "T: INT",
        },
        Sim {
            name: "b",
            host: 11,
            tags: "T: INT",
        },
    ];
    // web: true on Docker listens on the simulator's own address: it takes a token.
    let dir = tempdir("web-token");
    let token_file = dir.join("web-token");
    std::fs::write(&token_file, "docker-test-token\n").unwrap();
    let text = manifest_text(&name, &net, x, &image, &sims).replace(
        "  defaults:\n",
        &format!(
            "  webTokenFile: {}\n  defaults:\n    web: true\n",
            token_file.display()
        ),
    );
    let f = fleet(&text);
    let r = apply::apply(&b, &f, &opts()).await.unwrap();
    assert_eq!(r.healthy, 2, "{:?}", r.failures);
    let c = format!("{name}-a");
    let env = docker(&["inspect", "--format", "{{json .Config.Env}}", &c]);
    assert!(
        env.contains("\"ENIP_WEB_TOKEN=docker-test-token\""),
        "{env}"
    );
    let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", &c]);
    assert!(!labels.contains("docker-test-token"), "{labels}");
    // Hardened as README says: non-root, read-only, no capabilities, and no shell to
    // exec into (the image is FROM scratch around one static binary).
    assert_eq!(
        docker(&[
            "inspect",
            "--format",
            "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.CapDrop}}",
            &c
        ]),
        "65532:65532 true [\"ALL\"]"
    );
    assert!(
        !docker_ok(&["exec", &c, "sh", "-c", "true"]),
        "a shell in {c}"
    );
    assert!(
        !docker_ok(&["exec", &c, "/bin/sh", "-c", "true"]),
        "a shell in {c}"
    );
    // A new token is a new spec: the containers are recreated to take it.
    std::fs::write(&token_file, "docker-test-token-2\n").unwrap();
    let f2 = fleet(&text);
    assert_ne!(
        f.simulators[0].spec_hash(&f.image),
        f2.simulators[0].spec_hash(&f2.image)
    );
    let r = apply::apply(&b, &f2, &opts()).await.unwrap();
    assert_eq!(r.healthy, 2, "{:?}", r.failures);
    let env = docker(&["inspect", "--format", "{{json .Config.Env}}", &c]);
    assert!(
        env.contains("\"ENIP_WEB_TOKEN=docker-test-token-2\""),
        "{env}"
    );

    let bin = env!("CARGO_BIN_EXE_plcfleet");
    // Port 9 on loopback: no controller there, so the engine is asked.
    let run = |args: &[&str]| {
        let o = Command::new(bin)
            .args(args)
            .args(["--controller", "127.0.0.1:9"])
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["status", &name, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = v["simulators"].as_array().unwrap();
    assert_eq!(s.len(), 2, "{out}");
    assert_eq!(s[1]["ip"], format!("10.252.{x}.11"));
    assert!(
        s.iter()
            .all(|s| s["healthy"] == true && s["state"] == "running"),
        "{out}"
    );
    assert!(
        s.iter()
            .all(|s| s["requests"].is_u64() && s["uptime"].is_f64()),
        "{out}"
    );

    let (code, out, err) = run(&["delete", &name]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!("fleet `{name}`: removed 2 simulator(s) and 1 network(s)")
    );
    assert!(containers(&name).is_empty());
    assert!(!exists("network", &net));
    let (code, _, err) = run(&["delete", &name]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("no fleet `{name}`")), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
}

/// A TCP front for the local engine's socket, so the same engine is also "another host"
/// (`tcp://127.0.0.1:PORT`); counts the connections made through it.
async fn engine_over_tcp() -> (String, std::sync::Arc<AtomicU32>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(AtomicU32::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect("/var/run/docker.sock").await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    (format!("tcp://127.0.0.1:{port}"), seen)
}

/// One controller, fleets on several engines: each goes to its own `dockerHost`, and an
/// unreachable one fails only its own fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_controller_drives_fleets_on_several_engines() {
    use plcfleet::backend::Timed;
    use plcfleet::controller::Controller;
    use plcfleet::engines::Engines;
    use plcfleet::manifest::BackendKind;
    if engine("several engines").await.is_none() {
        return;
    }
    let image = image();
    let u = unique();
    let names: Vec<String> = ["tcp", "default", "down"]
        .iter()
        .map(|k| format!("pfe-{u:08x}-{k}"))
        .collect();
    let _guards: Vec<Cleanup> = names
        .iter()
        .map(|n| Cleanup {
            fleet: n.clone(),
            containers: vec![],
            networks: vec![format!("{n}-net")],
        })
        .collect();
    let (remote, through) = engine_over_tcp().await;
    let dir = tempdir("engines");
    let hosts = [Some(remote.as_str()), None, Some("tcp://127.0.0.1:9")];
    for (n, host) in names.iter().zip(hosts) {
        let x = free_subnet();
        let sims = [Sim {
            name: "a",
            host: 10,
            tags: "T: INT",
        }];
        let mut text = manifest_text(n, &format!("{n}-net"), x, &image, &sims);
        if let Some(h) = host {
            text = text.replace(
                "  backend: docker\n",
                &format!("  backend: docker\n  dockerHost: \"{h}\"\n"),
            );
        }
        std::fs::write(dir.join(format!("{n}.yaml")), text).unwrap();
    }
    let shared = plcfleet::api::Shared::new().unwrap();
    let engines = Engines::new();
    let mut c = Controller::new(
        &dir,
        Timed::new(engines.clone(), "docker", shared.metrics.clone()),
        BackendKind::Docker,
        shared.clone(),
        opts(),
    );
    let mut two = names[..2].to_vec();
    two.sort();
    let pass = c.reconcile().await;
    assert_eq!(pass.applied, two, "{pass:?}");
    assert!(
        through.load(Ordering::SeqCst) > 0,
        "the tcp fleet did not go through its host"
    );
    for n in &names[..2] {
        assert_eq!(containers(n).len(), 1, "{n}");
    }
    assert!(containers(&names[2]).is_empty());
    let mut want = vec![remote.clone(), plcfleet::docker::default_host()];
    want.sort();
    assert_eq!(engines.hosts().await, want);
    let m = shared.metrics.render();
    assert!(
        m.contains("plcfleet_reconcile_errors_total{kind=\"unavailable\"} 1"),
        "{m}"
    );
    // Removing the files removes each fleet from its own engine.
    for n in &names {
        std::fs::remove_file(dir.join(format!("{n}.yaml"))).unwrap();
    }
    let pass = c.reconcile().await;
    let mut deleted = pass.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, two, "{pass:?}");
    for n in &names[..2] {
        assert!(containers(n).is_empty(), "{n}");
        assert!(!exists("network", &format!("{n}-net")));
    }
}

/// Every simulator of `f` exactly once, as the manifest says, answering as itself, and
/// nothing else of the fleet on the engine.
async fn converged(b: &DockerBackend, f: &Fleet) -> Result<(), String> {
    let want: Vec<String> = f.simulators.iter().map(|s| s.name.clone()).collect();
    let have = containers(&f.name);
    if have.keys().cloned().collect::<Vec<_>>() != want {
        return Err(format!("containers {have:?}, want {want:?}"));
    }
    if let Some((s, ids)) = have.iter().find(|(_, ids)| ids.len() != 1) {
        return Err(format!("{s} has {} containers", ids.len()));
    }
    let observed = b.list(&f.name).await.map_err(|e| e.to_string())?;
    let p = plcfleet::plan::plan(f, &observed);
    if p.changes() {
        return Err(format!("still to do: {p}"));
    }
    let mut failures = Vec::new();
    let quick = ApplyOptions {
        timeout: Duration::from_secs(20),
        ..opts()
    };
    let ok = apply::wait_healthy(&f.simulators, &quick, &mut failures).await;
    if ok != f.simulators.len() {
        return Err(format!("not healthy: {failures:?}"));
    }
    Ok(())
}

/// `plcfleet controller` killed with SIGKILL at 20 pseudo-random points of an apply
/// (each trial changes the manifest, so there is always work in flight); after each, a
/// fresh controller converges with no duplicate and no orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_killed_at_random_points_of_an_apply_converges() {
    use plcfleet::controller::Controller;
    use plcfleet::manifest::BackendKind;
    let Some(b) = engine("controller kill -9").await else {
        return;
    };
    let image = image();
    let Scratch {
        name,
        net,
        x,
        _guard,
    } = scratch("pfx");
    let names = ["a", "b", "c", "d", "e", "f"];
    // Two versions: six INT simulators, or four DINT ones (all recreated, two pruned).
    let version = |v: usize| {
        let (n, tags) = if v == 0 {
            (6, "T: INT")
        } else {
            (4, "T: DINT")
        };
        let sims: Vec<Sim<'_>> = names[..n]
            .iter()
            .enumerate()
            .map(|(i, s)| Sim {
                name: s,
                host: 10 + i as u8,
                tags,
            })
            .collect();
        manifest_text(&name, &net, x, &image, &sims)
    };
    let dir = tempdir("ctl-kill9");
    let file = dir.join("fleet.yaml");
    let bin = env!("CARGO_BIN_EXE_plcfleet");
    let trials: u64 = std::env::var("PLCFLEET_KILL_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(20);
    // A fixed seed, so a failing trial can be run again (PLCFLEET_KILL_SEED to vary it).
    let mut seed: u64 = std::env::var("PLCFLEET_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut report = Vec::new();
    for trial in 0..trials {
        let text = version(trial as usize % 2);
        std::fs::write(&file, &text).unwrap();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let delay = Duration::from_millis(100 + (seed >> 33) % 2400);
        let mut child = Command::new(bin)
            .args(["controller", "--manifests"])
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0", "--resync", "0.5"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        let at_kill = containers(&name).values().map(Vec::len).sum::<usize>();
        // A new controller (a fresh process's state), one pass, then it must hold.
        let f = fleet(&text);
        let mut c = Controller::new(
            &dir,
            b.clone(),
            BackendKind::Docker,
            plcfleet::api::Shared::new().unwrap(),
            opts(),
        );
        let pass = c.reconcile().await;
        assert!(pass.invalid.is_empty(), "{pass:?}");
        if let Err(why) = converged(&b, &f).await {
            panic!(
                "trial {trial} (killed after {delay:?} with {at_kill} containers): {why}; \
                 the pass's failures: {:?}",
                pass.failures
            );
        }
        report.push(format!("{}ms/{at_kill}", delay.as_millis()));
    }
    eprintln!(
        "kill -9 trials (delay/containers at the kill): {}",
        report.join(" ")
    );
    let f = fleet(&version((trials as usize + 1) % 2));
    match apply::delete(&b, &f).await {
        Ok(_) => assert!(!exists("network", &net)),
        // Killing the controller mid-start can make the engine leak an endpoint on the
        // network (a Docker fault; a dockerd restart clears it): delete must say so and
        // keep the network, having removed every container.
        Err(BackendError::Conflict(why)) if why.contains("stale endpoints") => {
            eprintln!("the engine leaked an endpoint on {net}: {why}");
            assert!(exists("network", &net));
        }
        Err(e) => panic!("delete: {e}"),
    }
    assert!(containers(&name).is_empty());
}

/// Damage done by hand — a container killed, one removed, then every container and the
/// network itself removed — is repaired by the next reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_done_by_hand_is_repaired() {
    use plcfleet::controller::Controller;
    use plcfleet::manifest::BackendKind;
    let Some(b) = engine("damage by hand").await else {
        return;
    };
    let image = image();
    let Scratch {
        name,
        net,
        x,
        _guard,
    } = scratch("pfd");
    let sims: Vec<Sim<'_>> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, s)| Sim {
            name: s,
            host: 10 + i as u8,
            tags: "T: INT",
        })
        .collect();
    let text = manifest_text(&name, &net, x, &image, &sims);
    let dir = tempdir("damage");
    std::fs::write(dir.join("fleet.yaml"), &text).unwrap();
    let f = fleet(&text);
    let mut c = Controller::new(
        &dir,
        b.clone(),
        BackendKind::Docker,
        plcfleet::api::Shared::new().unwrap(),
        opts(),
    );
    c.reconcile().await;
    converged(&b, &f).await.unwrap();
    let ids = containers(&name);
    docker(&["kill", &ids["a"][0]]);
    docker(&["rm", "-f", &ids["b"][0]]);
    let pass = c.reconcile().await;
    assert_eq!(pass.repaired, 2, "{pass:?}");
    converged(&b, &f).await.unwrap();
    // Everything gone, the network too.
    for ids in containers(&name).values() {
        docker(&["rm", "-f", &ids[0]]);
    }
    docker(&["network", "rm", &net]);
    let pass = c.reconcile().await;
    assert_eq!(pass.repaired, 3, "{pass:?}");
    assert!(exists("network", &net));
    converged(&b, &f).await.unwrap();
    apply::delete(&b, &f).await.unwrap();
}
