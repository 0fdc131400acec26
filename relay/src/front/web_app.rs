//! The web app built into the binary (`build.rs` builds it, `rust-embed` embeds it): served
//! from memory with the same paths, types, cache rules and CSP as a web root on disk, strong
//! ETags from the files' SHA-256, and a gzip copy for clients that accept it. A binary built
//! without the app serves a page that says how to get it.

use std::{collections::HashMap, fmt, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use hyper::{Request, Response};
use rust_embed::RustEmbed;
use tracing::debug;

use super::{
    route::{FrontBody, empty_body, full_body, plain},
    statics::{
        CSP, content_type, if_none_match, not_found, redirect_to_dir, sanitize, set_file_headers,
    },
};

/// The app as Vite built it.
#[derive(RustEmbed)]
#[folder = "$OUT_DIR/web-app/files"]
struct Files;

/// Gzip copies of the files that compress (same relative paths).
#[derive(RustEmbed)]
#[folder = "$OUT_DIR/web-app/gzip"]
struct Gzip;

/// One line from the build: where the app came from, or `missing: <why>`.
const BUILD_NOTE: &str = env!("PEER_WEB_APP_BUILD");

/// Whether this binary has the web app built in: `Ok(where it came from)`, or `Err(why not)`
/// (it then serves a page that says how to get the app).
pub fn built_in_web_app() -> Result<&'static str, &'static str> {
    match BUILD_NOTE.strip_prefix("missing: ") {
        Some(why) => Err(why),
        None if Files::get("index.html").is_none() => Err("the build embedded no index.html"),
        None => Ok(BUILD_NOTE),
    }
}

/// One representation of a file.
struct Variant {
    body: Bytes,
    /// Strong: a digest of exactly these bytes.
    etag: HeaderValue,
}

impl Variant {
    fn new(body: Bytes, sha256: &[u8; 32]) -> Self {
        let hex: String = sha256[..16].iter().map(|b| format!("{b:02x}")).collect();
        let etag = HeaderValue::from_str(&format!("\"{hex}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Self { body, etag }
    }
}

struct Asset {
    plain: Variant,
    gzip: Option<Variant>,
}

/// The web app served from memory.
pub(crate) struct EmbeddedApp {
    assets: HashMap<String, Asset>,
    /// Why there is no app (`None` when there is one): shown by the fallback page.
    missing: Option<Bytes>,
    max_age: Duration,
}

impl fmt::Debug for EmbeddedApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedApp")
            .field("files", &self.assets.len())
            .field("built", &self.missing.is_none())
            .finish()
    }
}

fn bytes_of(data: std::borrow::Cow<'static, [u8]>) -> Bytes {
    match data {
        std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
        std::borrow::Cow::Owned(v) => Bytes::from(v),
    }
}

impl EmbeddedApp {
    /// The app built into this binary.
    pub(crate) fn built_in(max_age: Duration) -> Self {
        let files = Files::iter().filter_map(|path| {
            let file = Files::get(&path)?;
            let gzip = Gzip::get(&path).map(|g| (bytes_of(g.data), g.metadata.sha256_hash()));
            Some((
                path.into_owned(),
                bytes_of(file.data),
                file.metadata.sha256_hash(),
                gzip,
            ))
        });
        let why = built_in_web_app().err();
        Self::from_files(files, why, max_age)
    }

    /// An app of the given files: (path, bytes, SHA-256, gzip copy and its SHA-256).
    fn from_files(
        files: impl IntoIterator<Item = (String, Bytes, [u8; 32], Option<(Bytes, [u8; 32])>)>,
        why_missing: Option<&str>,
        max_age: Duration,
    ) -> Self {
        let assets: HashMap<String, Asset> = files
            .into_iter()
            .map(|(path, body, sha, gzip)| {
                let asset = Asset {
                    plain: Variant::new(body, &sha),
                    gzip: gzip.map(|(body, sha)| Variant::new(body, &sha)),
                };
                (path, asset)
            })
            .collect();
        let missing = match (assets.contains_key("index.html"), why_missing) {
            (true, None) => None,
            (_, why) => Some(Bytes::from(missing_page(
                why.unwrap_or("the build embedded no index.html"),
            ))),
        };
        Self {
            assets,
            missing,
            max_age,
        }
    }

    pub(crate) fn serve<B>(&self, request: &Request<B>) -> Response<FrontBody> {
        let path = match sanitize(request.uri().path()) {
            Ok(path) => path,
            Err(err) => {
                debug!(?err, path = request.uri().path(), "refused static path");
                return plain(StatusCode::BAD_REQUEST, "bad path\n");
            }
        };
        if path.is_hidden() {
            return not_found();
        }
        let mut key = path.segments.join("/");
        if path.trailing_slash {
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str("index.html");
        }
        if let Some(asset) = self.assets.get(&key) {
            return self.respond(&key, asset, request);
        }
        if !path.trailing_slash && self.assets.contains_key(&format!("{key}/index.html")) {
            return redirect_to_dir(request);
        }
        // Single-page app: unknown paths without an extension get the app's entry point.
        if path.has_extension() {
            return not_found();
        }
        match (&self.missing, self.assets.get("index.html")) {
            (None, Some(index)) => self.respond("index.html", index, request),
            (Some(page), _) => missing_response(page.clone(), request.method() == Method::HEAD),
            (None, None) => not_found(),
        }
    }

    fn respond<B>(&self, key: &str, asset: &Asset, request: &Request<B>) -> Response<FrontBody> {
        let gzip = asset.gzip.as_ref().filter(|_| accepts_gzip(request));
        let variant = gzip.unwrap_or(&asset.plain);
        let not_modified = if_none_match(request, variant.etag.as_bytes());
        let status = if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        };
        let body = if status == StatusCode::OK && request.method() != Method::HEAD {
            full_body(variant.body.clone())
        } else {
            empty_body()
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let file_name = key.rsplit('/').next().unwrap_or(key);
        let headers = response.headers_mut();
        set_file_headers(
            headers,
            content_type(std::path::Path::new(file_name)),
            file_name,
            &variant.etag,
            self.max_age,
        );
        if status == StatusCode::OK {
            headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(variant.body.len()),
            );
        }
        if asset.gzip.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if gzip.is_some() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    }
}

/// Whether the client takes `Content-Encoding: gzip` (`gzip` or `*` listed without `q=0`).
fn accepts_gzip<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// `503` with the page that says how to get the app; never cached.
fn missing_response(page: Bytes, head: bool) -> Response<FrontBody> {
    let len = page.len();
    let mut response = Response::new(if head { empty_body() } else { full_body(page) });
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page a binary built without the app serves in its place; `{why}` is replaced.
const MISSING_PAGE: &str = include_str!("app_missing.html");

fn missing_page(why: &str) -> String {
    MISSING_PAGE.replace("{why}", &escape_html(why))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        // Distinct per content is all these tests need.
        let mut out = [0u8; 32];
        for (i, b) in data.iter().enumerate() {
            out[i % 32] = out[i % 32].wrapping_mul(31).wrapping_add(*b);
        }
        out[31] = data.len() as u8;
        out
    }

    fn gz(data: &[u8]) -> Option<(Bytes, [u8; 32])> {
        let packed = [b"gz:".as_slice(), data].concat();
        let hash = sha(&packed);
        Some((Bytes::from(packed), hash))
    }

    fn app() -> EmbeddedApp {
        let file = |path: &str, data: &'static [u8], compress: bool| {
            (
                path.to_owned(),
                Bytes::from_static(data),
                sha(data),
                if compress { gz(data) } else { None },
            )
        };
        EmbeddedApp::from_files(
            [
                file("index.html", b"<!doctype html><title>app</title>", true),
                file("assets/index-abc.js", b"console.log('app')", true),
                file("manifest.webmanifest", b"{}", false),
                file("icon-192.png", b"png", false),
                file("sw.js", b"self", false),
                file("docs/index.html", b"<p>docs</p>", false),
            ],
            None,
            Duration::from_secs(300),
        )
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    fn header<'a>(response: &'a Response<FrontBody>, name: &str) -> Option<&'a str> {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    }

    async fn body(response: Response<FrontBody>) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn files_have_types_cache_rules_and_the_csp_on_html() {
        let app = app();
        let index = app.serve(&get("/", &[]));
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(
            header(&index, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&index, "content-security-policy"), Some(CSP));
        assert_eq!(header(&index, "cache-control"), Some("no-cache"));
        assert_eq!(header(&index, "vary"), Some("accept-encoding"));
        assert_eq!(header(&index, "content-encoding"), None);
        assert_eq!(body(index).await, b"<!doctype html><title>app</title>");

        let script = app.serve(&get("/assets/index-abc.js", &[]));
        assert_eq!(
            header(&script, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(
            header(&script, "cache-control"),
            Some("public, max-age=300")
        );
        assert_eq!(header(&script, "content-security-policy"), None);
        assert_eq!(header(&script, "content-length"), Some("18"));

        let manifest = app.serve(&get("/manifest.webmanifest", &[]));
        assert_eq!(
            header(&manifest, "content-type"),
            Some("application/manifest+json")
        );
        assert_eq!(header(&manifest, "cache-control"), Some("no-cache"));
        assert_eq!(header(&manifest, "vary"), None);
        let sw = app.serve(&get("/sw.js", &[]));
        assert_eq!(header(&sw, "cache-control"), Some("no-cache"));
        let png = app.serve(&get("/icon-192.png", &[]));
        assert_eq!(header(&png, "content-type"), Some("image/png"));
    }

    #[tokio::test]
    async fn gzip_when_accepted_with_its_own_etag() {
        let app = app();
        let plain = app.serve(&get("/assets/index-abc.js", &[]));
        let plain_etag = header(&plain, "etag").expect("etag").to_owned();
        let packed = app.serve(&get(
            "/assets/index-abc.js",
            &[("accept-encoding", "br, gzip;q=0.8")],
        ));
        assert_eq!(header(&packed, "content-encoding"), Some("gzip"));
        assert_eq!(
            header(&packed, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        let packed_etag = header(&packed, "etag").expect("etag").to_owned();
        assert_ne!(plain_etag, packed_etag);
        assert_eq!(body(packed).await, b"gz:console.log('app')");
        for refused in ["gzip;q=0", "br", "identity", "gzip; q=0.0"] {
            let r = app.serve(&get(
                "/assets/index-abc.js",
                &[("accept-encoding", refused)],
            ));
            assert_eq!(header(&r, "content-encoding"), None, "{refused}");
        }
        let any = app.serve(&get("/assets/index-abc.js", &[("accept-encoding", "*")]));
        assert_eq!(header(&any, "content-encoding"), Some("gzip"));
        // Files that do not compress are sent as they are.
        let png = app.serve(&get("/icon-192.png", &[("accept-encoding", "gzip")]));
        assert_eq!(header(&png, "content-encoding"), None);
    }

    #[tokio::test]
    async fn etags_revalidate() {
        let app = app();
        let first = app.serve(&get("/assets/index-abc.js", &[]));
        let etag = header(&first, "etag").expect("etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        let again = app.serve(&get("/assets/index-abc.js", &[("if-none-match", &etag)]));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "etag"), Some(etag.as_str()));
        assert!(body(again).await.is_empty());
        let listed = app.serve(&get(
            "/assets/index-abc.js",
            &[("if-none-match", &format!("\"x\", {etag}"))],
        ));
        assert_eq!(listed.status(), StatusCode::NOT_MODIFIED);
        // The gzip copy is another representation: the plain ETag does not match it.
        let other = app.serve(&get(
            "/assets/index-abc.js",
            &[("if-none-match", &etag), ("accept-encoding", "gzip")],
        ));
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn paths_fall_back_redirect_and_refuse_like_a_web_root() {
        let app = app();
        let spa = app.serve(&get("/settings/hosts", &[]));
        assert_eq!(spa.status(), StatusCode::OK);
        assert_eq!(header(&spa, "content-security-policy"), Some(CSP));
        assert_eq!(body(spa).await, b"<!doctype html><title>app</title>");
        assert_eq!(app.serve(&get("/missing.js", &[])).status(), 404);
        let dir = app.serve(&get("/docs?x=1", &[]));
        assert_eq!(dir.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&dir, "location"), Some("/docs/?x=1"));
        assert_eq!(body(app.serve(&get("/docs/", &[]))).await, b"<p>docs</p>");
        assert_eq!(app.serve(&get("/../Cargo.toml", &[])).status(), 400);
        assert_eq!(app.serve(&get("/%2e%2e/x", &[])).status(), 400);
        assert_eq!(app.serve(&get("/.env", &[])).status(), 404);
        let head = app.serve(&Request::head("/").body(()).expect("request"));
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "content-length"), Some("33"));
        assert!(body(head).await.is_empty());
    }

    #[tokio::test]
    async fn without_the_app_a_page_says_how_to_get_it() {
        let app = EmbeddedApp::from_files(
            [],
            Some("Node.js (node, npm) is not installed <here>"),
            Duration::from_secs(300),
        );
        let page = app.serve(&get("/", &[]));
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            header(&page, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&page, "cache-control"), Some("no-store"));
        assert_eq!(header(&page, "content-security-policy"), Some(CSP));
        let text = String::from_utf8(body(page).await).expect("utf-8");
        assert!(text.contains("Node.js (node, npm) is not installed &lt;here&gt;"));
        assert!(text.contains("PEER_WEB_APP=require cargo install --path peer --force"));
        assert!(text.contains("--web-root DIR"));
        assert!(
            !text.contains("<script"),
            "no script: the CSP would block it anyway"
        );
        // Pairing links land on `/`; other app paths get the page too, files a 404.
        assert_eq!(app.serve(&get("/settings", &[])).status(), 503);
        assert_eq!(app.serve(&get("/assets/index.js", &[])).status(), 404);
    }

    #[test]
    fn this_binarys_app_matches_its_build_note() {
        // Either the build embedded an index.html and says where from, or it says why not.
        let app = EmbeddedApp::built_in(Duration::from_secs(1));
        match built_in_web_app() {
            Ok(note) => {
                assert!(app.missing.is_none(), "{note}");
                assert!(app.assets.contains_key("index.html"));
            }
            Err(why) => {
                assert!(app.missing.is_some(), "{why}");
                assert!(!why.is_empty());
            }
        }
    }
}
