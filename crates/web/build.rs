//! Embeds the dashboard: reads `web/` (our HTML/JS/CSS) and uPlot, writes each asset raw and
//! gzipped into OUT_DIR under a content-hashed name, and generates the table `src/lib.rs`
//! includes.
//!
//! uPlot comes from `web/node_modules/uplot/dist` when `npm install` ran in `web/`; otherwise
//! the tarball pinned in `web/package-lock.json` is fetched from the npm registry once (cached
//! in OUT_DIR), checked against the lockfile's `integrity` (sha512), and the two files are
//! extracted. Nothing else is fetched, and a tarball that does not match is refused.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};

const UPLOT_JS: &str = "dist/uPlot.iife.min.js";
const UPLOT_CSS: &str = "dist/uPlot.min.css";

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let web = manifest.join("../../web");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    for f in ["index.html", "app.js", "style.css", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", web.join(f).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        web.join("node_modules/uplot/dist").display()
    );

    let (uplot_js, uplot_css) = uplot(&web, &out)?;
    let read = |f: &str| std::fs::read(web.join(f)).map_err(|e| format!("web/{f}: {e}"));
    // (name, content type, bytes); index.html goes last because it names the others.
    let assets: Vec<(&str, &str, Vec<u8>)> = vec![
        ("uPlot.min.js", "text/javascript; charset=utf-8", uplot_js),
        ("uPlot.min.css", "text/css; charset=utf-8", uplot_css),
        ("app.js", "text/javascript; charset=utf-8", read("app.js")?),
        ("style.css", "text/css; charset=utf-8", read("style.css")?),
    ];
    let mut html = String::from_utf8(read("index.html")?)?;
    let mut table = String::from("&[\n");
    for (name, ctype, bytes) in &assets {
        let hash = hex8(&Sha256::digest(bytes));
        // Content-hashed names let the browser cache them for a year: a new build has new names.
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let hashed = format!("{stem}.{hash}.{ext}");
        let placeholder = format!("{{{{{name}}}}}");
        if !html.contains(&placeholder) {
            return Err(format!("web/index.html does not reference {placeholder}").into());
        }
        html = html.replace(&placeholder, &format!("assets/{hashed}"));
        write_asset(&out, &hashed, bytes)?;
        writeln!(
            table,
            "    Asset {{ path: \"/assets/{hashed}\", content_type: \"{ctype}\", etag: \"\\\"{hash}\\\"\", immutable: true, body: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{hashed}\")), gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{hashed}.gz\")) }},"
        )?;
    }
    let hash = hex8(&Sha256::digest(html.as_bytes()));
    write_asset(&out, "index.html", html.as_bytes())?;
    writeln!(
        table,
        "    Asset {{ path: \"/\", content_type: \"text/html; charset=utf-8\", etag: \"\\\"{hash}\\\"\", immutable: false, body: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/index.html\")), gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/index.html.gz\")) }},"
    )?;
    table.push_str("]\n");
    std::fs::write(out.join("assets.rs"), table)?;
    Ok(())
}

fn hex8(d: &[u8]) -> String {
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn write_asset(out: &Path, name: &str, bytes: &[u8]) -> Result<(), BoxError> {
    std::fs::write(out.join(name), bytes)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    std::fs::write(out.join(format!("{name}.gz")), gz.finish()?)?;
    Ok(())
}

/// uPlot's script and stylesheet.
fn uplot(web: &Path, out: &Path) -> Result<(Vec<u8>, Vec<u8>), BoxError> {
    let local = web.join("node_modules/uplot");
    if let (Ok(js), Ok(css)) = (
        std::fs::read(local.join(UPLOT_JS)),
        std::fs::read(local.join(UPLOT_CSS)),
    ) {
        return Ok((js, css));
    }
    let lock: serde_json::Value = serde_json::from_slice(
        &std::fs::read(web.join("package-lock.json"))
            .map_err(|e| format!("web/package-lock.json: {e}"))?,
    )?;
    let pkg = &lock["packages"]["node_modules/uplot"];
    let version = pkg["version"]
        .as_str()
        .ok_or("package-lock.json: no uplot version")?;
    let integrity = pkg["integrity"]
        .as_str()
        .ok_or("package-lock.json: no uplot integrity")?;
    // npm may omit `resolved` (omit-lockfile-registry-resolved); the registry layout is fixed.
    let url = pkg["resolved"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://registry.npmjs.org/uplot/-/uplot-{version}.tgz"));
    let cached = out.join(format!("uplot-{version}.tgz"));
    let tgz = match std::fs::read(&cached) {
        Ok(b) if check_integrity(&b, integrity).is_ok() => b,
        _ => {
            println!("cargo:warning=web/node_modules missing: downloading {url} (run `npm install` in web/ to avoid it)");
            let body = match download(&url) {
                Ok(b) => b,
                // Some TLS-intercepting proxies present certificates rustls refuses but the
                // system's TLS stack accepts: try curl before giving up. The integrity check
                // below makes the source irrelevant.
                Err(e) => curl(&url).map_err(|c| format!("downloading {url}: {e}; curl: {c}"))?,
            };
            check_integrity(&body, integrity)?;
            std::fs::write(&cached, &body)?;
            body
        }
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
    let (mut js, mut css) = (None, None);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let slot = match path.strip_prefix("package/") {
            Some(UPLOT_JS) => &mut js,
            Some(UPLOT_CSS) => &mut css,
            _ => continue,
        };
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf)?;
        *slot = Some(buf);
    }
    match (js, css) {
        (Some(j), Some(c)) => Ok((j, c)),
        _ => Err(format!("{url} lacks {UPLOT_JS} or {UPLOT_CSS}").into()),
    }
}

fn download(url: &str) -> Result<Vec<u8>, BoxError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls_config())
        .build()
        .into();
    let mut resp = agent.get(url).call()?;
    Ok(resp
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_vec()?)
}

fn curl(url: &str) -> Result<Vec<u8>, BoxError> {
    let out = std::process::Command::new("curl")
        .args(["-fsSL", "--max-time", "120", url])
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(out.stdout)
}

/// Trust the system's CA bundle when there is one (a company proxy re-signing TLS adds its CA
/// there), else ureq's built-in web roots. The tarball's sha512 is checked either way.
fn tls_config() -> ureq::tls::TlsConfig {
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/cert.pem",
            ]
            .map(PathBuf::from),
        )
        .find_map(|p| std::fs::read(p).ok());
    let certs: Vec<ureq::tls::Certificate<'static>> = bundle
        .iter()
        .flat_map(|b| ureq::tls::parse_pem(b))
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    let roots = if certs.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::new_with_certs(&certs)
    };
    ureq::tls::TlsConfig::builder().root_certs(roots).build()
}

/// Checks a Subresource-Integrity string (`sha512-BASE64`) as npm writes it.
fn check_integrity(bytes: &[u8], integrity: &str) -> Result<(), BoxError> {
    let want = integrity
        .strip_prefix("sha512-")
        .ok_or("uplot integrity is not sha512")?;
    let got = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes));
    if got != want {
        return Err(format!(
            "uplot tarball integrity mismatch: got sha512-{got}, lockfile says {integrity}"
        )
        .into());
    }
    Ok(())
}
