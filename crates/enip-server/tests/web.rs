//! The web API (cpppo's `/api`), the dashboard and `/metrics`: requests through the
//! router without sockets, plus the effects on real EtherNet/IP clients over loopback.
//! The expected JSON was compared with what cpppo 5.2.5 `--web` answers to the same URLs;
//! where it differs on purpose, `src/api.rs` says why. Update with `UPDATE_EXPECT=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use enip_proto::mr::service as svc;
use enip_proto::{Path, Reply};
use enip_server::{Options, Server};
use expect_test::{expect, Expect};
use serde_json::Value as Json;
use support::{read_tag, start, write_int, Client, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt as _;

fn server() -> Server {
    Server::new(support::controller(), Options::default()).unwrap()
}

async fn call(server: &Server, uri: &str, accept: Option<&str>) -> (StatusCode, String, String) {
    let mut req = Request::get(uri);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let resp = enip_server::web::router(server.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .or_else(|| resp.headers().get(header::LOCATION))
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

/// The API's JSON for `uri`, without the time.
async fn api(server: &Server, uri: &str) -> (u16, Json) {
    let (status, ct, body) = call(server, uri, None).await;
    assert_eq!(ct, "application/json", "{uri}");
    let mut v: Json = serde_json::from_str(&body).unwrap();
    let until = v.as_object_mut().unwrap().remove("until").unwrap();
    assert!(until.as_f64().unwrap() > 1.7e9, "{uri}: until {until}");
    (status.as_u16(), v)
}

async fn check(server: &Server, uri: &str, expect: Expect) {
    let (status, v) = api(server, uri).await;
    expect.assert_eq(&format!("{status} {}", serde_json::to_string(&v).unwrap()));
}

#[tokio::test]
async fn api_answers_as_cpppo_does() {
    let s = server();
    check(&s, "/api", expect![[r#"200 {"alarm":[],"command":{},"data":{"options":{"delay":{"value":0.0}},"server":{"control":{"address":null,"address_udp":null,"disable":false,"done":false,"latency":0.1,"timeout":0.2}},"tags":{"Counts":{"attribute":"Counts                         DINT x1    == 0","error":0,"path":null},"Name":{"attribute":"Name                         STRING x1    == ''","error":0,"path":null},"Program:Main.Step":{"attribute":"Program:Main.Step              DINT x1    == 0","error":0,"path":null},"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 0, 0, 0, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[3]=4", expect![[r#"200 {"alarm":[],"command":{"message":"tags.SCADA.attribute[3]='4' (4)","success":true},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 0, 0, 4, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[3]", expect![[r#"200 {"alarm":[],"command":{"message":"tags.SCADA.attribute[3]: 4","success":true},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 0, 0, 4, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SC*", expect![[r#"200 {"alarm":[],"command":{},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 0, 0, 4, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/*/error=3", expect![[r#"200 {"alarm":[],"command":{"message":"tags.SCADA.error='3' (3)","success":true},"data":{"tags":{"Counts":{"attribute":"Counts                         DINT x1    == 0","error":3,"path":null},"Name":{"attribute":"Name                         STRING x1    == ''","error":3,"path":null},"Program:Main.Step":{"attribute":"Program:Main.Step              DINT x1    == 0","error":3,"path":null},"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 0, 0, 4, 0, 0, ...]","error":3,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/scada/error/0", expect![[r#"200 {"alarm":[],"command":{"message":"tags.SCADA.error='0' (0)","success":true},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 0, 0, 4, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[1]=1,2,3", expect![[r#"200 {"alarm":[],"command":{"message":"tags.SCADA.attribute[1]='1,2,3' ([1, 2, 3])","success":true},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute", expect![[r#"200 {"alarm":[],"command":{"message":"tags.SCADA.attribute: [0, 1, 2, 3, 0, 0, 0, 0, 0, 0]","success":true},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/Name/attribute=hello%20world", expect![[r#"200 {"alarm":[],"command":{"message":"tags.Name.attribute='hello world' ('hello world')","success":true},"data":{"tags":{"Name":{"attribute":"Name                         STRING x1    == 'hello world'","error":3,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/Program:Main.Step/attribute=-5", expect![[r#"200 {"alarm":[],"command":{"message":"tags.Program:Main.Step.attribute='-5' (-5)","success":true},"data":{"tags":{"Program:Main.Step":{"attribute":"Program:Main.Step              DINT x1    == -5","error":3,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/options/delay/value=0.5", expect![[r#"200 {"alarm":[],"command":{"message":"options.delay.value='0.5' (0.5)","success":true},"data":{"options":{"delay":{"value":0.5}}},"since":null}"#]]).await;
    check(&s, "/api/options/delay/value/0.25.json", expect![[r#"200 {"alarm":[],"command":{"message":"options.delay.value='0.25' (0.25)","success":true},"data":{"options":{"delay":{"value":0.25}}},"since":null}"#]]).await;
    check(&s, "/api/options/delay/range", expect![[r#"200 {"alarm":[],"command":{"message":"options.delay.range: None","success":true},"data":{"options":{"delay":{"value":0.25}}},"since":null}"#]]).await;
    check(&s, "/api/options/delay/value=0", expect![[r#"200 {"alarm":[],"command":{"message":"options.delay.value='0' (0.0)","success":true},"data":{"options":{"delay":{"value":0.0}}},"since":null}"#]]).await;
    check(&s, "/api/server/control/latency", expect![[r#"200 {"alarm":[],"command":{"message":"server.control.latency: 0.1","success":true},"data":{"server":{"control":{"address":null,"address_udp":null,"disable":false,"done":false,"latency":0.1,"timeout":0.2}}},"since":null}"#]]).await;
    check(&s, "/api/server/control/timeout=0.5", expect![[r#"200 {"alarm":[],"command":{"message":"server.control.timeout='0.5' (0.5)","success":true},"data":{"server":{"control":{"address":null,"address_udp":null,"disable":false,"done":false,"latency":0.1,"timeout":0.5}}},"since":null}"#]]).await;
    check(&s, "/api/server/*/done", expect![[r#"200 {"alarm":[],"command":{"message":"server.control.done: False","success":true},"data":{"server":{"control":{"address":null,"address_udp":null,"disable":false,"done":false,"latency":0.1,"timeout":0.5}}},"since":null}"#]]).await;
    check(
        &s,
        "/api/connections",
        expect![[r#"200 {"alarm":[],"command":null,"data":{},"since":null}"#]],
    )
    .await;
    check(
        &s,
        "/api/connections/*/eof/true",
        expect![[r#"200 {"alarm":[],"command":null,"data":{},"since":null}"#]],
    )
    .await;
    check(&s, "/api?group=tags&match=Counts&since=12.5", expect![[r#"200 {"alarm":[],"command":{},"data":{"tags":{"Counts":{"attribute":"Counts                         DINT x1    == 0","error":3,"path":null}}},"since":12.5}"#]]).await;
    // Errors: a 4xx and the reason, in the same envelope.
    check(&s, "/api/bogus", expect![[r#"404 {"alarm":[],"command":{"message":"no group `bogus` (groups: options, server, tags, connections)","success":false},"data":{},"since":null}"#]]).await;
    check(&s, "/api/tags/Nope", expect![[r#"404 {"alarm":[],"command":{"message":"no tag `Nope` in tags","success":false},"data":{},"since":null}"#]]).await;
    check(&s, "/api/connections/127_0_0_1_9", expect![[r#"404 {"alarm":[],"command":{"message":"no connection `127_0_0_1_9` in connections","success":false},"data":{},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/bogus=1", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.bogus='1' failed: no attribute `bogus` (tags.SCADA has attribute, attribute[i], error, path)","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[99]=1", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.attribute[99]='1' failed: Attempt to access item at key 99 beyond Attribute length 10","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[1]=abc", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.attribute[1]='abc' failed: invalid literal for int() with base 10: 'abc'","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[1]=70000", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.attribute[1]='70000' failed: 70000 is out of range for INT (-32768..=32767)","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[8]=1,2,3", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.attribute[8]='1,2,3' failed: 3 value(s) from element 8 run past the tag's 10 elements","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/attribute[x]", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.attribute[x]=None failed: bad index `[x]`","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/Counts/attribute=2.5", expect![[r#"400 {"alarm":[],"command":{"message":"tags.Counts.attribute='2.5' failed: invalid literal for int() with base 10: '2.5'","success":false},"data":{"tags":{"Counts":{"attribute":"Counts                         DINT x1    == 0","error":3,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/Name/attribute=", expect![[r#"200 {"alarm":[],"command":{"message":"tags.Name.attribute: 'hello world'","success":true},"data":{"tags":{"Name":{"attribute":"Name                         STRING x1    == 'hello world'","error":3,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/error=256", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.error='256' failed: 256 is not a CIP general status (0 to 255)","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/tags/SCADA/path=x", expect![[r#"400 {"alarm":[],"command":{"message":"tags.SCADA.path='x' failed: path is read-only","success":false},"data":{"tags":{"SCADA":{"attribute":"SCADA                           INT[  10] == [0, 1, 2, 3, 0, 0, ...]","error":0,"path":null}}},"since":null}"#]]).await;
    check(&s, "/api/options/delay/value=abc", expect![[r#"400 {"alarm":[],"command":{"message":"options.delay.value='abc' failed: could not convert string to float: 'abc'","success":false},"data":{"options":{"delay":{"value":0.0}}},"since":null}"#]]).await;
    check(&s, "/api/options/delay/value=-1", expect![[r#"400 {"alarm":[],"command":{"message":"options.delay.value='-1' failed: -1.0 seconds is not from 0 to 3600.0","success":false},"data":{"options":{"delay":{"value":0.0}}},"since":null}"#]]).await;
    check(&s, "/api/options/delay/range=2-1", expect![[r#"400 {"alarm":[],"command":{"message":"options.delay.range='2-1' failed: bad delay `2-1`: expected seconds `#.#` or a range `#.#-#.#`, from 0 to 3600","success":false},"data":{"options":{"delay":{"value":0.0}}},"since":null}"#]]).await;
    check(&s, "/api/server/control/disable/maybe", expect![[r#"400 {"alarm":[],"command":{"message":"server.control.disable='maybe' failed: invalid literal for int() with base 10: 'maybe'","success":false},"data":{"server":{"control":{"address":null,"address_udp":null,"disable":false,"done":false,"latency":0.1,"timeout":0.5}}},"since":null}"#]]).await;
    check(&s, "/api/server/control/address=x", expect![[r#"400 {"alarm":[],"command":{"message":"server.control.address='x' failed: address is read-only","success":false},"data":{"server":{"control":{"address":null,"address_udp":null,"disable":false,"done":false,"latency":0.1,"timeout":0.5}}},"since":null}"#]]).await;
    check(&s, "/api?since=yesterday", expect![[r#"400 {"alarm":[],"command":{"message":"since='yesterday' is not a time (seconds since 1970)","success":false},"data":{},"since":null}"#]]).await;
    check(&s, "/api/tags/%ZZ", expect![[r#"400 {"alarm":[],"command":{"message":"bad percent-encoding in `%ZZ`","success":false},"data":{},"since":null}"#]]).await;
    check(&s, "/nothing/here", expect![[r#"404 {"alarm":[],"command":{"message":"no page `/nothing/here`: the API is under /api, metrics at /metrics","success":false},"data":{},"since":null}"#]]).await;
}

#[tokio::test]
async fn delay_range_is_redrawn_within_bounds() {
    let s = server();
    let (status, v) = api(&s, "/api/options/delay/range=0.5-1.5").await;
    assert_eq!(status, 200);
    let d = &v["data"]["options"]["delay"];
    assert_eq!(d["range"], "0.5-1.5");
    let value = d["value"].as_f64().unwrap();
    assert!((0.5..=1.5).contains(&value), "{value}");
    assert_eq!(
        v["command"]["message"],
        "options.delay.range='0.5-1.5' ('0.5-1.5')"
    );
    // value= fixes the delay and drops the range.
    let (_, v) = api(&s, "/api/options/delay/value=0").await;
    assert_eq!(
        v["data"]["options"]["delay"],
        serde_json::json!({"value": 0.0})
    );
}

#[tokio::test]
async fn redirects_encodings_and_headers() {
    let s = server();
    let (st, loc, _) = call(&s, "/", None).await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/api"));
    let (st, loc, _) = call(&s, "/api/tags/?x=1", None).await;
    assert_eq!((st, loc.as_str()), (StatusCode::SEE_OTHER, "/api/tags?x=1"));
    let (st, ct, _) = call(&s, "/api", Some("text/plain")).await;
    assert_eq!((st, ct.as_str()), (StatusCode::OK, "text/plain"));
    let (st, ct, body) = call(&s, "/api", Some("image/png")).await;
    assert_eq!(
        (st, ct.as_str()),
        (StatusCode::NOT_ACCEPTABLE, "application/json")
    );
    assert!(body.contains("Invalid encoding"), "{body}");
    // `.json` wins over a browser's Accept.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (_, ct, _) = call(&s, "/api/tags.json", Some(browser)).await;
    assert_eq!(ct, "application/json");
    let resp = enip_server::web::router(s.clone())
        .oneshot(Request::get("/api").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
    assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn a_browser_gets_the_dashboard() {
    let (s, addr) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    c.rr(&write_int("SCADA[2]", 77)).await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (st, ct, page) = call(&s, "/api", Some(browser)).await;
    assert_eq!((st, ct.as_str()), (StatusCode::OK, "text/html"));
    for want in [
        "<!DOCTYPE html>",
        "http-equiv=\"refresh\"",
        "<h2>Tags</h2>",
        "<code>0, 0, 77, 0, 0, 0, 0, 0, 0, 0</code>",
        "<a href=\"/api/tags/Program:Main.Step\">Program:Main.Step</a>",
        "<h2>Connections</h2>",
        "/eof/true\">close</a>",
        "<tr><th>tag writes</th><td>1</td></tr>",
        "<tr><th>sessions registered</th><td>1</td></tr>",
        "<a href=\"/metrics\">",
    ] {
        assert!(page.contains(want), "missing {want:?} in\n{page}");
    }
    // A page that ran a command shows its outcome and does not refresh (and repeat it).
    let (st, _, page) = call(&s, "/api/tags/Name/attribute=%3Cb%3E", Some(browser)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(!page.contains("http-equiv=\"refresh\""));
    assert!(
        page.contains("class=\"ok\">tags.Name.attribute=&#39;&lt;b&gt;&#39;"),
        "{page}"
    );
    assert!(page.contains("<code>&#39;&lt;b&gt;&#39;</code>"), "{page}");
    let (st, _, page) = call(&s, "/api/tags/Nope", Some(browser)).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        page.contains("class=\"fail\">no tag `Nope` in tags"),
        "{page}"
    );
}

#[tokio::test]
async fn injected_tag_errors_reach_clients_and_clear() {
    let (s, addr) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    let (st, _) = api(&s, "/api/tags/SCADA/error=8").await;
    assert_eq!(st, 200);
    assert_eq!(c.rr(&read_tag("SCADA[1]", 1)).await, [0xCC, 0, 8, 0]);
    assert_eq!(c.rr(&write_int("SCADA[1]", 5)).await, [0xCD, 0, 8, 0]);
    // Other tags are untouched.
    assert_eq!(
        Reply::decode(&c.rr(&read_tag("Counts", 1)).await)
            .unwrap()
            .status
            .0,
        0
    );
    // 0 clears it (cpppo keeps failing).
    api(&s, "/api/tags/SCADA/error=0").await;
    assert_eq!(c.rr(&write_int("SCADA[1]", 5)).await, [0xCD, 0, 0, 0]);
    assert_eq!(
        c.rr(&read_tag("SCADA[1]", 1)).await,
        [0xCC, 0, 0, 0, 0xC3, 0, 5, 0]
    );
    // Values set through the API are what clients read, and the reverse.
    api(&s, "/api/tags/SCADA/attribute[2]=-300").await;
    assert_eq!(
        c.rr(&read_tag("SCADA[2]", 1)).await,
        [0xCC, 0, 0, 0, 0xC3, 0, 0xD4, 0xFE]
    );
    let (_, v) = api(&s, "/api/tags/SCADA/attribute[1]").await;
    assert_eq!(v["command"]["message"], "tags.SCADA.attribute[1]: 5");
}

#[tokio::test]
async fn delay_really_delays_replies() {
    let (s, addr) = start(Options::default()).await;
    let mut c = Client::connect(addr).await;
    c.register().await;
    let r = read_tag("SCADA", 1);
    api(&s, "/api/options/delay/value=0.3").await;
    let t = Instant::now();
    c.rr(&r).await;
    let slow = t.elapsed();
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    api(&s, "/api/options/delay/range=0.2-0.25").await;
    let t = Instant::now();
    c.rr(&r).await;
    let ranged = t.elapsed();
    assert!(ranged >= Duration::from_millis(200), "{ranged:?}");
    api(&s, "/api/options/delay/value=0").await;
    let t = Instant::now();
    c.rr(&r).await;
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn connections_are_listed_and_closed_by_key() {
    let (s, addr) = start(Options::default()).await;
    let mut a = Client::connect(addr).await;
    a.register().await;
    a.rr(&read_tag("SCADA", 1)).await;
    let mut b = Client::connect(addr).await;
    b.register().await;
    let key = |c: &Client| {
        let p = c.s.local_addr().unwrap();
        format!("127_0_0_1_{}", p.port())
    };
    let (ka, kb) = (key(&a), key(&b));
    let (st, v) = api(&s, "/api/connections").await;
    assert_eq!(st, 200);
    let conns = v["data"]["connections"].as_object().unwrap();
    assert_eq!(conns.len(), 2);
    assert_eq!(
        conns[&ka],
        serde_json::json!({
            "eof": false,
            "interface": "127.0.0.1",
            "port": a.s.local_addr().unwrap().port(),
            "received": 28 + a.rr_frame(&read_tag("SCADA", 1)).len(),
            "requests": 2,
        })
    );
    let (st, v) = api(&s, &format!("/api/connections/{ka}/eof/true")).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"]["connections"][&ka]["eof"], true);
    assert_eq!(
        v["command"]["message"],
        format!("connections.{ka}.eof='true' (True)")
    );
    assert!(a.closed().await);
    // The other is untouched, then `*` closes the rest.
    b.rr(&read_tag("SCADA", 1)).await;
    let (_, v) = api(&s, "/api/connections").await;
    assert_eq!(
        v["data"]["connections"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [&kb]
    );
    api(&s, "/api/connections/*/eof/true").await;
    assert!(b.closed().await);
    let (_, v) = api(&s, "/api/connections").await;
    assert_eq!(v["data"], serde_json::json!({}));
}

#[tokio::test]
async fn disable_closes_everything_and_enable_listens_again() {
    let (s, addr) = start(Options::default()).await;
    let mut a = Client::connect(addr).await;
    a.register().await;
    let (st, v) = api(&s, "/api/server/control/disable/true").await;
    assert_eq!(st, 200);
    assert_eq!(v["data"]["server"]["control"]["disable"], true);
    assert!(a.closed().await);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    api(&s, "/api/server/control/disable/false").await;
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "not listening again");
    let mut b = Client::connect(addr).await;
    b.register().await;
    b.rr(&read_tag("SCADA", 1)).await;
}

#[tokio::test]
async fn done_stops_the_server() {
    let s = server();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let run = tokio::spawn({
        let s = s.clone();
        async move { s.run(l, std::future::pending::<()>()).await }
    });
    let mut c = Client::connect(addr).await;
    c.register().await;
    let (st, v) = api(&s, "/api/server/control/done/true").await;
    assert_eq!(st, 200);
    assert_eq!(v["data"]["server"]["control"]["done"], true);
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(c.closed().await);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A minimal HTTP/1.1 GET over a real socket.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8(resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    (status, body.to_owned())
}

#[tokio::test]
async fn web_api_and_metrics_over_real_sockets_pass_promtool() {
    let (s, addr) = start(Options::default()).await;
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let waddr = web.local_addr().unwrap();
    let done = s.clone();
    tokio::spawn(enip_server::web::serve(web, s.clone(), async move {
        done.done().await
    }));
    // Traffic: reads, a write, an error, a Multiple Service Packet, an unknown command.
    let mut c = Client::connect(addr).await;
    c.register().await;
    c.rr(&read_tag("SCADA", 1)).await;
    c.rr(&write_int("SCADA[1]", 9)).await;
    c.rr(&read_tag("Nope", 1)).await;
    let inner = [read_tag("SCADA[1]", 1), read_tag("Counts", 1)];
    let msp = enip_proto::services::Body::to_vec(&enip_proto::services::Multiple {
        messages: inner.iter().map(Vec::as_slice).collect(),
    })
    .unwrap();
    let msp = enip_proto::Request::build(
        svc::MULTIPLE_SERVICE_PACKET,
        &Path::parse("@2/1").unwrap(),
        &msp,
    )
    .unwrap();
    assert_eq!(Reply::decode(&c.rr(&msp).await).unwrap().status.0, 0);
    c.send_raw(&[
        0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ])
    .await;
    assert_eq!(support::header(&c.reply().await).status.code(), 1);

    let (st, body) = http_get(waddr, "/api/tags/SCADA/attribute[1]").await;
    assert_eq!(st, 200);
    let v: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(v["command"]["message"], "tags.SCADA.attribute[1]: 9");
    assert_eq!(
        v["data"]["tags"]["SCADA"]["attribute"],
        "SCADA                           INT[  10] == [0, 9, 0, 0, 0, 0, ...]"
    );
    let (st, text) = http_get(waddr, "/metrics").await;
    assert_eq!(st, 200);
    for line in [
        "enip_tcp_connections 1",
        "enip_sessions 1",
        "enip_cip_connections 0",
        "enip_tags 4",
        "enip_tag_reads_total 4",
        "enip_tag_writes_total 1",
        "enip_cip_requests_total{service=\"Read Tag\",status=\"0x00\"} 3",
        "enip_cip_requests_total{service=\"Read Tag\",status=\"0x04\"} 1",
        "enip_cip_requests_total{service=\"Write Tag\",status=\"0x00\"} 1",
        "enip_cip_requests_total{service=\"Multiple Service Packet\",status=\"0x00\"} 1",
        "enip_encapsulation_requests_total{command=\"SendRRData\"} 4",
        "enip_encapsulation_requests_total{command=\"unknown\"} 1",
        "enip_encapsulation_errors_total{kind=\"invalid_command\"} 1",
        "enip_request_duration_seconds_count{command=\"SendRRData\"} 4",
        "enip_tcp_connections_accepted_total 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    let bytes = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{transport=\"tcp\"}} ")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(bytes("enip_received_bytes_total") > 200);
    assert!(bytes("enip_sent_bytes_total") > 150);
    // No peer addresses or tag names in any label.
    assert!(
        !text.contains("127.0.0.1") && !text.contains("SCADA"),
        "{text}"
    );
    promtool(&text);
    s.set_done();
}

/// `promtool check metrics` on the text; skipped (with the reason) without promtool,
/// a failure under `CI=true`.
fn promtool(text: &str) {
    use std::io::Write as _;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let why = format!("no promtool ({e}): apt-get install prometheus");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("SKIPPED promtool check: {why}");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn guarded(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Json) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (status, h) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
    (status, h, v)
}

#[tokio::test]
async fn a_token_guards_everything_but_metrics() {
    use enip_server::guard::Rate;
    let app = enip_server::web::router_with(
        server(),
        enip_server::web::guard(Some("s3cret".into()), Rate::default()),
    );
    for (uri, auth) in [
        ("/api", None),
        ("/api/server/control/done/true", None),
        ("/", None),
        ("/api", Some("Bearer s3cre")),
        ("/api", Some("Bearer s3cret!")),
        ("/api", Some("Basic s3cret")),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (status, h, v) = guarded(&app, "GET", uri, &headers, vec![]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {auth:?}");
        assert_eq!(h["www-authenticate"], "Bearer");
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        assert_eq!(v["command"]["success"], false, "{v}");
        assert!(
            v["command"]["message"].as_str().unwrap().contains("Bearer"),
            "{v}"
        );
    }
    let (status, _, v) = guarded(
        &app,
        "GET",
        "/api",
        &[("authorization", "Bearer s3cret")],
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["data"]["tags"]["SCADA"].is_object());
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "/metrics is open on purpose");
    // Without a token (a loopback listener), the same router answers as it always has.
    let open = enip_server::web::router(server());
    assert_eq!(
        guarded(&open, "GET", "/api", &[], vec![]).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let app = enip_server::web::router(server());
    let (status, _, v) = guarded(&app, "POST", "/api", &[], vec![b'x'; (64 << 10) + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(
        v["command"]["message"],
        "the body is 65537 bytes; at most 65536"
    );
    let long = format!("/api/tags/{}", "A".repeat(9000));
    let (status, _, v) = guarded(&app, "GET", &long, &[], vec![]).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{v}");
    let big = "b".repeat(17 << 10);
    let (status, _, v) = guarded(&app, "GET", "/api", &[("x-big", &big)], vec![]).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{v}");
    // Within the bounds, a body is simply ignored, as before.
    let (status, _, _) = guarded(&app, "GET", "/api", &[], vec![b'x'; 1000]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_client_address_is_rate_limited() {
    use axum::extract::connect_info::MockConnectInfo;
    use enip_server::guard::Rate;
    let guard = enip_server::web::guard(None, "1/2".parse::<Rate>().unwrap());
    let app = |ip: [u8; 4]| {
        enip_server::web::router_with(server(), guard.clone())
            .layer(MockConnectInfo(std::net::SocketAddr::from((ip, 5000))))
    };
    let (a, b) = (app([10, 0, 0, 1]), app([10, 0, 0, 2]));
    assert_eq!(
        guarded(&a, "GET", "/api", &[], vec![]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        guarded(&a, "GET", "/metrics", &[], vec![]).await.0,
        StatusCode::OK
    );
    let (status, h, v) = guarded(&a, "GET", "/api", &[], vec![]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(h[header::RETRY_AFTER], "1");
    assert_eq!(v["command"]["success"], false);
    // Another address has its own bucket.
    assert_eq!(
        guarded(&b, "GET", "/api", &[], vec![]).await.0,
        StatusCode::OK
    );
}
