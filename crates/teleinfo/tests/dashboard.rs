//! `teleinfo demo` end to end without a browser (the browser test is scripts/test-browser.sh):
//! the dashboard's page and assets are served compressed with the right cache headers, and the
//! demo's two meters have history, energy and injection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    addr: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_demo() -> Demo {
    let child = Command::new(env!("CARGO_BIN_EXE_teleinfo"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--history-days",
            "3",
            "--seconds",
            "120",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start teleinfo demo");
    // Owned by `Demo` from here on, so that its Drop kills and reaps the process on every path.
    let mut demo = Demo {
        child,
        addr: String::new(),
    };
    let mut lines = BufReader::new(demo.child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("http://").nth(1) {
            demo.addr = rest.split('/').next().unwrap().to_string();
            // Keep draining stdout so the demo never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return demo;
        }
    }
    panic!("teleinfo demo did not print its URL");
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A minimal HTTP/1.1 GET (no client library needed for a handful of requests).
fn get(addr: &str, path: &str, extra: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[end + 2 + n + 2..];
    }
}

#[test]
fn demo_serves_the_dashboard_and_its_data() {
    let demo = start_demo();
    let a = demo.addr.as_str();

    // The page: gzipped when asked, revalidated by ETag, no external source allowed.
    let page = get(a, "/", &[("Accept-Encoding", "gzip, deflate, br")]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-encoding"), Some("gzip"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    let etag = page.header("etag").unwrap().to_string();
    assert_eq!(get(a, "/", &[("If-None-Match", &etag)]).status, 304);
    let plain = get(a, "/", &[]);
    assert!(plain.header("content-encoding").is_none());
    let html = String::from_utf8(plain.body).unwrap();
    assert!(html.contains("<html lang=\"fr\">"));

    // Every asset the page names: immutable, and the whole page within 200 KB gzipped.
    let mut total = page.body.len();
    for path in html.split('"').filter(|s| s.starts_with("assets/")) {
        let r = get(a, &format!("/{path}"), &[("Accept-Encoding", "gzip")]);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("cache-control").unwrap().contains("immutable"));
        total += r.body.len();
    }
    assert!(total <= 200 * 1024, "page weighs {total} bytes gzipped");
    assert_eq!(get(a, "/assets/nothing.js", &[]).status, 404);

    // The demo's meters: a historic HC/HP consumer and a standard Tempo producer.
    let meters = get(a, "/api/v1/meters", &[]).json();
    let meters: Vec<String> = meters["meters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["meter"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(meters.len(), 2);
    let mut producers = 0;
    for m in &meters {
        let e = get(
            a,
            &format!("/api/v1/meters/{m}/energy?period=day&from=2d-ago"),
            &[],
        );
        assert_eq!(e.status, 200);
        let e = e.json();
        assert!(e["total_wh"].as_f64().unwrap() > 1000.0, "{e}");
        assert!(e["total_cost"].as_f64().unwrap() > 0.0, "{e}");
        let inj = get(
            a,
            &format!("/api/v1/meters/{m}/injection?period=day&from=2d-ago"),
            &[],
        );
        if inj.status == 200 {
            producers += 1;
            assert!(inj.json()["total_wh"].as_f64().unwrap() >= 0.0);
        } else {
            assert_eq!(inj.status, 404);
        }
        let q = get(a, &format!("/api/v1/query?metric=power.apparent&meter={m}&from=1d-ago&points=100&agg=avg,min,max"), &[]);
        assert_eq!(q.status, 200);
        assert!(q.json()["values"]["avg"].as_array().unwrap().len() > 50);
    }
    assert_eq!(producers, 1);
}
