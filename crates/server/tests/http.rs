//! The server over real HTTP and telnet on 127.0.0.1: uplink, device tokens, OpenTSDB put,
//! JSON and OpenTSDB reads, bad input.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn count_points(c: &mut server::client::Client, metric: &str, meter: &str) -> u64 {
    let r = c.get(&format!("/api/v1/query?metric={metric}&meter={meter}&from=1700000000000&to=1900000000000&agg=count&width=3000d")).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["values"]["count"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap() as u64)
        .sum()
}

#[test]
fn uplink_is_authenticated_idempotent_and_acked() {
    let s = TestServer::start(|_| {});
    let token = s.add_device("linky-01");
    let (meter, frames) = sim_frames(12, 7);
    let raws: Vec<&[u8]> = frames.iter().map(|f| &f.bytes[..]).collect();
    let mut c = s.client();

    let r = post_batch(&mut c, &token, &batch("linky-01", 9, 0, &raws[..6]));
    assert_eq!(ack_seq(&r), Some(5));
    assert_eq!(count_points(&mut c, "SINSTS", &meter), 6);
    // A retry of the same batch, and an overlapping one: nothing stored twice.
    assert_eq!(
        ack_seq(&post_batch(
            &mut c,
            &token,
            &batch("linky-01", 9, 0, &raws[..6])
        )),
        Some(5)
    );
    assert_eq!(
        ack_seq(&post_batch(
            &mut c,
            &token,
            &batch("linky-01", 9, 3, &raws[3..12])
        )),
        Some(11)
    );
    assert_eq!(count_points(&mut c, "SINSTS", &meter), 12);
    assert_eq!(count_points(&mut c, "power.apparent", &meter), 12);
    // An empty batch asks where to resume.
    assert_eq!(
        ack_seq(&post_batch(&mut c, &token, &batch("linky-01", 9, 12, &[]))),
        Some(11)
    );
    assert_eq!(
        ack_seq(&post_batch(&mut c, &token, &batch("linky-01", 10, 0, &[]))),
        None
    );

    // Raw frames are archived, in order, byte for byte.
    let r = c
        .get("/api/v1/devices/linky-01/frames?from=1700000000000&to=1900000000000")
        .unwrap();
    let fr = r.json();
    assert_eq!(fr["count"], 12, "{}", r.text());
    let first: String = frames[0].bytes.iter().map(|&b| b as char).collect();
    assert_eq!(fr["frames"][0]["raw"], first);

    // Latest: every field plus the decoded status.
    let l = c
        .get(&format!("/api/v1/meters/{meter}/latest"))
        .unwrap()
        .json();
    assert_eq!(l["meter"], meter.as_str());
    assert_eq!(l["time_source"], "meter");
    assert!(l["frame"]["fields"]["SINSTS"]["number"].is_u64(), "{l}");
    assert!(l["frame"]["decoded"]["stge"]["raw"].is_string(), "{l}");
    let meters = c.get("/api/v1/meters").unwrap().json();
    assert_eq!(meters["meters"][0]["meter"], meter.as_str());
    let dev = c.get("/api/v1/devices").unwrap().json();
    let d = &dev["devices"][0];
    assert_eq!(d["device"], "linky-01");
    assert_eq!(d["frames"], 12);
    assert_eq!(d["telemetry"]["rssi_dbm"], -60);
    assert_eq!(d["telemetry"]["buffer_fill"], 0.25);
    assert!(d["clock_drift_s"].is_number());

    // Wrong, missing and revoked tokens; another device's id; bad bodies.
    let e = post_batch(&mut c, "tid_wrong", &batch("linky-01", 9, 12, &raws[..1]));
    assert_eq!(e.status, 401);
    assert!(e.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("device add"));
    let e = c
        .request(
            "POST",
            "/api/v1/uplink",
            &[],
            &batch("linky-01", 9, 12, &raws[..1]),
        )
        .unwrap();
    assert_eq!(e.status, 401);
    let other = s.add_device("linky-02");
    assert_eq!(
        post_batch(&mut c, &other, &batch("linky-01", 9, 12, &raws[..1])).status,
        403
    );
    assert_eq!(post_batch(&mut c, &token, b"not a batch").status, 400);
    let auth = format!("Bearer {token}");
    let r = c
        .request(
            "POST",
            "/api/v1/uplink",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &batch("linky-01", 9, 12, &raws[..1]),
        )
        .unwrap();
    assert_eq!(r.status, 415, "{}", r.text());
    let good = batch("linky-01", 9, 12, &raws[..2]);
    let e = post_batch(&mut c, &token, &good[..good.len() - 5]);
    assert_eq!(e.status, 400);
    assert!(
        e.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{}",
        e.text()
    );
    assert_eq!(post_batch(&mut c, &token, &vec![0u8; 40_000]).status, 413);
    assert_eq!(
        count_points(&mut c, "SINSTS", &meter),
        12,
        "nothing stored by refused requests"
    );
    server::devices::Devices::open(s.dir.path())
        .revoke("linky-01")
        .unwrap();
    assert_eq!(
        post_batch(&mut c, &token, &batch("linky-01", 9, 12, &raws[..1])).status,
        401
    );
    assert_eq!(c.get("/api/v1/health").unwrap().status, 200);

    let m = c.get("/metrics").unwrap().text();
    assert!(m.contains("teleinfo_uplink_batches_total 5"), "{m}");
    assert!(m.contains("teleinfo_meter_value{meter="), "{m}");
    let spec = c.get("/api/v1/openapi.json").unwrap().json();
    assert_eq!(spec["openapi"], "3.1.0");
    s.stop();
}

#[test]
fn data_survives_a_restart() {
    let s = TestServer::start(|_| {});
    let token = s.add_device("d1");
    let (meter, frames) = sim_frames(5, 3);
    let raws: Vec<&[u8]> = frames.iter().map(|f| &f.bytes[..]).collect();
    let mut c = s.client();
    assert_eq!(
        ack_seq(&post_batch(&mut c, &token, &batch("d1", 1, 0, &raws))),
        Some(4)
    );
    let latest_path = format!("/api/v1/meters/{meter}/latest");
    let before = c.get(&latest_path).unwrap().json();
    assert!(before.get("restored").is_none(), "{before}");
    let dir = s.stop();
    let dir_path = dir.path().to_path_buf();
    let s2 = TestServer::start(|c| c.data_dir = dir_path.clone());
    let mut c = s2.client();
    assert_eq!(count_points(&mut c, "SINSTS", &meter), 5);
    // The latest reading is back, every decoded field of it, from the raw-frame archive (it is
    // restored in the background, so give it a moment).
    let t0 = std::time::Instant::now();
    let after = loop {
        let r = c.get(&latest_path).unwrap();
        if r.status == 200 {
            break r.json();
        }
        assert!(
            t0.elapsed().as_secs() < 20,
            "latest not restored: {}",
            r.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(after["restored"], true, "{after}");
    for k in ["meter", "device", "mode", "ts_ms", "time_source", "frame"] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(
        ack_seq(&post_batch(&mut c, &token, &batch("d1", 1, 0, &raws))),
        Some(4)
    );
    assert_eq!(count_points(&mut c, "SINSTS", &meter), 5);
    s2.stop();
    drop(dir);
}

#[test]
fn opentsdb_put_semantics() {
    let s = TestServer::start(|_| {});
    let mut c = s.client();
    let one =
        r#"{"metric":"sys.cpu.nice","timestamp":1346846400,"value":18,"tags":{"host":"web01"}}"#;
    let r = c.post_json("/api/put", one).unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let mixed = r#"[{"metric":"sys.cpu.nice","timestamp":1346846401,"value":"19","tags":{"host":"web01"}},
                    {"metric":"sys.cpu.nice","timestamp":1346846402,"value":"abc","tags":{"host":"web01"}},
                    {"metric":"","timestamp":1346846402,"value":1,"tags":{"host":"web01"}},
                    {"metric":"sys.cpu.nice","timestamp":1346846403,"value":1}]"#;
    let r = c.post_json("/api/put", mixed).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "One or more data points had errors"
    );
    let r = c.post_json("/api/put?summary", mixed).unwrap();
    assert_eq!(
        (r.status, r.json()),
        (400, json!({"success": 1, "failed": 3}))
    );
    let r = c.post_json("/api/put?details", mixed).unwrap();
    let d = r.json();
    assert_eq!(d["success"], 1);
    let errs: Vec<&str> = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errs,
        [
            "Unable to parse value to a number",
            "Metric name was empty",
            "Missing tags"
        ]
    );
    assert_eq!(d["errors"][0]["datapoint"]["value"], "abc");
    let r = c.post_json("/api/put?summary", one).unwrap();
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"success": 1, "failed": 0}))
    );
    assert_eq!(c.post_json("/api/put/", one).unwrap().status, 204);
    assert_eq!(c.post_json("/api/v1/put", one).unwrap().status, 204);
    assert_eq!(
        c.post_json("/api/put", "[]").unwrap().json()["error"]["message"],
        "No datapoints found in content"
    );
    assert_eq!(c.post_json("/api/put", "{\"metric\":").unwrap().status, 400);
    assert_eq!(c.post_json("/api/put", "42").unwrap().status, 400);

    // gzip bodies, and a gzip bomb stopped at the decoded-size limit.
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let big: Vec<Value> = (0..5000)
        .map(|i| json!({"metric":"gz.m","timestamp":1_700_000_000 + i,"value":i,"tags":{"h":"a"}}))
        .collect();
    let body = gz(serde_json::to_string(&big).unwrap().as_bytes());
    let r = c
        .request(
            "POST",
            "/api/put?summary",
            &[("Content-Encoding", "gzip")],
            &body,
        )
        .unwrap();
    assert_eq!(r.json()["success"], 5000, "{}", r.text());
    let bomb = gz(&vec![b' '; 200 << 20]);
    let r = c
        .request("POST", "/api/put", &[("Content-Encoding", "gzip")], &bomb)
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("inflates"));

    // Read back through the OpenTSDB query API.
    let q = json!({"start": 1346846000, "end": 1346847000, "queries": [{"metric":"sys.cpu.nice","aggregator":"sum","tags":{"host":"*"}}]});
    let r = c.post_json("/api/query", &q.to_string()).unwrap();
    let v = r.json();
    assert_eq!(v[0]["tags"]["host"], "web01", "{v}");
    assert_eq!(v[0]["dps"]["1346846400"], 18);
    assert_eq!(v[0]["dps"]["1346846401"], 19);
    assert_eq!(c.get("/api/v1/health").unwrap().status, 200);
    s.stop();
}

#[test]
fn opentsdb_put_needs_an_allowed_address_or_token() {
    let s = TestServer::start(|c| {
        c.put_allow = vec!["10.0.0.0/8".into()];
        c.write_token = Some("w-secret".into());
    });
    let mut c = s.client();
    let one = r#"{"metric":"m","timestamp":1346846400,"value":1,"tags":{"h":"a"}}"#;
    let r = c.post_json("/api/put", one).unwrap();
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("put_allow"));
    let r = c
        .request(
            "POST",
            "/api/put",
            &[("Authorization", "Bearer w-secret")],
            one.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 204);
    // Telnet has no authentication: the allow-list refuses the connection.
    let mut t = TcpStream::connect(s.telnet.unwrap()).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut line = String::new();
    BufReader::new(&mut t).read_line(&mut line).unwrap();
    assert!(line.contains("not allowed"), "{line}");
    s.stop();
}

#[test]
fn telnet_put() {
    let s = TestServer::start(|_| {});
    let mut t = TcpStream::connect(s.telnet.unwrap()).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let lines = "put tel.m 1356998400 42.5 host=a cpu=0\n\
                 put tel.m 1356998401123 43 host=a cpu=0\n\
                 put tel.m 1356998402 x host=a cpu=0\n\
                 put tel.m 1356998403 1\n\
                 version\n";
    t.write_all(lines.as_bytes()).unwrap();
    let mut r = BufReader::new(t.try_clone().unwrap());
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        replies.push(l);
    }
    assert!(replies[0].starts_with("put: invalid value"), "{replies:?}");
    assert!(replies[1].contains("not enough arguments"), "{replies:?}");
    assert!(replies[2].starts_with("teleinfo"), "{replies:?}");
    t.write_all(b"exit\n").unwrap();
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    let mut c = s.client();
    let q = json!({"start": 1356998000, "end": 1356999000, "msResolution": true, "queries": [{"metric":"tel.m","aggregator":"sum"}]});
    let v = c.post_json("/api/query", &q.to_string()).unwrap().json();
    assert_eq!(v[0]["dps"]["1356998400000"], 42.5, "{v}");
    assert_eq!(v[0]["dps"]["1356998401123"], 43);
    s.stop();
}

#[test]
fn opentsdb_reads_for_grafana() {
    let s = TestServer::start(|_| {});
    let mut c = s.client();
    let mut pts = Vec::new();
    for i in 0..600 {
        for (meter, base) in [("021861348497", 1000.0), ("021861348498", 2000.0)] {
            pts.push(json!({"metric":"linky.papp","timestamp":1_796_311_200 + i,"value": base + i as f64,"tags":{"meter":meter,"phase":"1"}}));
            pts.push(json!({"metric":"linky.east","timestamp":1_796_311_200 + i,"value": base * 1000.0 + 2.0 * i as f64,"tags":{"meter":meter}}));
        }
    }
    assert_eq!(
        c.post_json("/api/put", &serde_json::to_string(&pts).unwrap())
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        c.get("/api/suggest?q=cpu&type=metrics").unwrap().status,
        200
    );
    assert_eq!(
        c.get("/api/suggest?type=metrics&q=linky&max=1000")
            .unwrap()
            .json(),
        json!(["linky.east", "linky.papp"])
    );
    assert_eq!(
        c.get("/api/suggest?type=tagk&q=").unwrap().json(),
        json!(["meter", "phase"])
    );
    assert_eq!(
        c.get("/api/suggest?type=tagv&q=0218&max=1").unwrap().json(),
        json!(["021861348497"])
    );
    assert_eq!(c.get("/api/suggest?q=x").unwrap().status, 400);
    let aggs = c.get("/api/aggregators").unwrap().json();
    assert!(aggs.as_array().unwrap().contains(&json!("zimsum")));
    let f = c.get("/api/config/filters").unwrap().json();
    assert!(f["literal_or"].is_object() && f["regexp"].is_object());
    let l = c
        .get("/api/search/lookup?m=linky.papp%7Bmeter=*%7D&limit=0")
        .unwrap()
        .json();
    assert_eq!(l["results"].as_array().unwrap().len(), 2, "{l}");
    assert_eq!(l["results"][0]["tags"]["meter"], "021861348497");
    assert_eq!(c.get("/api/version").unwrap().json()["version"], "2.4.0");

    // Current Grafana backend body: seconds, filters, downsample.
    let q = json!({"start": 1796311000, "end": 1796312000, "queries": [{
        "metric": "linky.papp", "aggregator": "sum", "downsample": "5m-avg",
        "filters": [{"type": "literal_or", "tagk": "meter", "filter": "021861348497|021861348498", "groupBy": true}]}]});
    let v = c.post_json("/api/query", &q.to_string()).unwrap().json();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v[0]["tags"], json!({"meter": "021861348497", "phase": "1"}));
    assert_eq!(v[0]["aggregateTags"], json!([]));
    // 5-minute buckets aligned on the epoch: 1796311200 is one.
    assert_eq!(v[0]["dps"]["1796311200"], 1000.0 + 149.5);
    // Aggregated across meters (no group-by): sum of the two.
    let q = json!({"start": 1796311000, "end": 1796312000, "queries": [{"metric": "linky.papp", "aggregator": "sum", "downsample": "5m-avg"}]});
    let v = c
        .post_json("/api/query?arrays=true", &q.to_string())
        .unwrap()
        .json();
    assert_eq!(v[0]["aggregateTags"], json!(["meter"]));
    assert_eq!(v[0]["dps"][0][0], 1796311200);
    assert_eq!(v[0]["dps"][0][1].as_f64(), Some(3000.0 + 2.0 * 149.5));
    // Rate of a counter: 2 Wh per second.
    let q = json!({"start": "1796311000", "end": 1796312000000_i64, "queries": [{"metric": "linky.east", "aggregator": "avg",
        "downsample": "1m-last", "rate": true, "rateOptions": {"counter": true, "dropResets": true},
        "tags": {"meter": "021861348497"}}]});
    let v = c.post_json("/api/query", &q.to_string()).unwrap().json();
    let dps = v[0]["dps"].as_object().unwrap();
    assert!(
        !dps.is_empty()
            && dps
                .values()
                .all(|x| (x.as_f64().unwrap() - 2.0).abs() < 1e-9),
        "{v}"
    );
    // Legacy body: ms, tags with a regexp function, fill zero; URI form.
    let q = json!({"start": 1796311000000_i64, "end": 1796313000000_i64, "msResolution": false, "showQuery": true,
        "queries": [{"metric": "linky.papp", "aggregator": "avg", "downsample": "10m-max-zero", "tags": {"meter": "regexp(.*97$)"}}]});
    let v = c.post_json("/api/query", &q.to_string()).unwrap().json();
    assert_eq!(v[0]["query"]["index"], 0);
    let dps = v[0]["dps"].as_object().unwrap();
    assert!(!dps.contains_key("1796313000"));
    assert_eq!(dps["1796311200"].as_f64(), Some(1599.0));
    assert_eq!(dps["1796312400"], 0, "fill zero emits empty buckets: {v}");
    let v = c
        .get("/api/query?start=1796311000&end=1796312000&m=sum:0all-count:linky.papp%7Bmeter=*%7D")
        .unwrap()
        .json();
    assert_eq!(v[0]["dps"]["1796311000"], 600, "{v}");
    // Errors in OpenTSDB's shape.
    let q = json!({"start": 1796311000, "queries": [{"metric": "nope", "aggregator": "sum"}]});
    let r = c.post_json("/api/query", &q.to_string()).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "No such name for 'metrics': 'nope'"
    );
    let q = json!({"start": 0, "end": 4102444800000_i64, "queries": [{"metric": "linky.papp", "aggregator": "sum", "downsample": "1s-avg"}]});
    assert_eq!(
        c.post_json("/api/query", &q.to_string()).unwrap().status,
        400
    );
    let q =
        json!({"start": "1y-ago", "queries": [{"metric": "linky.papp", "aggregator": "bogus"}]});
    assert_eq!(
        c.post_json("/api/query", &q.to_string()).unwrap().status,
        400
    );
    let r = c.get("/api/v1/query?metric=linky.papp&meter=021861348497&tags=phase:1&from=0&to=99999999999999").unwrap();
    assert_eq!(r.status, 400, "absurd range: {}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_query_days"));
    s.stop();
}

#[test]
fn energy_per_local_day_with_dst() {
    let s = TestServer::start(|c| {
        c.pricing.per_kwh.insert("EASF01".into(), 0.2);
        c.pricing.subscription_per_day = 0.5;
    });
    let mut c = s.client();
    // Hourly index readings through 2026-03-29, the 23-hour day in Paris: +1 kWh per hour.
    let start = 1_774_652_400_i64; // 2026-03-28T00:00:00+01:00
    let pts: Vec<Value> = (0..=72)
        .map(|h| json!({"metric":"EASF01","timestamp": start + h * 3600,"value": 1_000_000 + h * 1000,"tags":{"meter":"041776199277"}}))
        .collect();
    assert_eq!(
        c.post_json("/api/put", &serde_json::to_string(&pts).unwrap())
            .unwrap()
            .status,
        204
    );
    let r = c
        .get(&format!(
            "/api/v1/meters/041776199277/energy?period=day&from={}&to={}",
            start * 1000,
            (start + 72 * 3600) * 1000
        ))
        .unwrap();
    let v = r.json();
    assert_eq!(r.status, 200, "{v}");
    let days = v["periods"].as_array().unwrap();
    assert_eq!(days[0]["start_local"], "2026-03-28T00:00:00+01:00");
    assert_eq!(days[1]["hours"], 23.0);
    assert_eq!(days[1]["energy_wh"]["EASF01"], 23_000.0);
    assert_eq!(days[2]["energy_wh"]["EASF01"], 24_000.0);
    assert!(
        (days[1]["total_cost"].as_f64().unwrap() - (23.0 * 0.2 + 0.5)).abs() < 1e-9,
        "{v}"
    );
    assert_eq!(
        c.get("/api/v1/meters/041776199277/energy?period=fortnight")
            .unwrap()
            .status,
        400
    );
    assert_eq!(c.get("/api/v1/meters/unknown/energy").unwrap().status, 404);
    s.stop();
}

#[test]
fn reads_can_require_a_token_and_live_stream_works() {
    let s = TestServer::start(|c| c.read_token = Some("r-secret".into()));
    let mut c = s.client();
    let r = c.get("/api/v1/meters").unwrap();
    assert_eq!(r.status, 401);
    // A browser asks for the password on this challenge (the dashboard's login).
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"teleinfo\", charset=\"UTF-8\"")
    );
    assert_eq!(c.get("/api/query").unwrap().status, 401);
    assert_eq!(c.get("/").unwrap().status, 401);
    let page = c
        .request(
            "GET",
            "/",
            &[("Authorization", "Basic dXNlcjpyLXNlY3JldA==")],
            b"",
        )
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "{}", page.text());
    assert_eq!(c.get("/api/v1/health").unwrap().status, 200);
    assert_eq!(
        c.request(
            "GET",
            "/api/v1/meters",
            &[("Authorization", "Bearer nope")],
            b""
        )
        .unwrap()
        .status,
        401
    );
    assert_eq!(
        c.request(
            "GET",
            "/api/v1/meters",
            &[("Authorization", "Bearer r-secret")],
            b""
        )
        .unwrap()
        .status,
        200
    );
    assert_eq!(
        c.request(
            "GET",
            "/api/v1/meters",
            &[("Authorization", "Basic Z3JhZmFuYTpyLXNlY3JldA==")],
            b""
        )
        .unwrap()
        .status,
        200
    );

    // Live stream: subscribe, then send a frame through the uplink.
    let mut sse = TcpStream::connect(s.http).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sse.write_all(
        b"GET /api/v1/meters/*/live HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer r-secret\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(sse);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.contains("200"), "{status}");
    let token = s.add_device("dev");
    let (meter, frames) = sim_frames(1, 5);
    assert_eq!(
        ack_seq(&post_batch(
            &mut c,
            &token,
            &batch("dev", 1, 0, &[&frames[0].bytes])
        )),
        Some(0)
    );
    let mut got = String::new();
    for _ in 0..200 {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap() == 0 {
            break;
        }
        if l.starts_with("data:") {
            got = l;
            break;
        }
    }
    let v: Value = serde_json::from_str(got.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(v["meter"], meter.as_str());
    assert!(v["frame"]["fields"]["EAST"].is_object());
    s.stop();
}
