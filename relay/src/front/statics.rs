//! Static files from a web root: no directory listing, no escaping the root, an SPA fallback to
//! `index.html`, and strict security headers on HTML.

use std::{
    io,
    path::{Path, PathBuf},
    pin::Pin,
    task::{Context, Poll, ready},
    time::{Duration, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::{
    Request, Response,
    body::{Body, Frame, SizeHint},
};
use tokio::fs::File;
use tracing::{debug, warn};

use super::route::{FrontBody, empty_body, plain};

/// The Content-Security-Policy of every HTML (and SVG) response. Styles may be inline because
/// the web app's terminal (xterm.js) sizes and colours its rows with style elements and
/// attributes; scripts may not.
pub const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Why a request path was rejected before touching the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// Not an absolute path (`/…`).
    NotAbsolute,
    /// A broken or forbidden percent escape, or bytes that are not UTF-8.
    BadEncoding,
    /// `.`/`..` segments, empty segments, or separators smuggled into a segment.
    Traversal,
}

/// A request path reduced to plain file-name segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SafePath {
    /// Decoded segments; none is empty, `.`, `..`, or contains `/`, `\`, `:` or NUL.
    pub(crate) segments: Vec<String>,
    /// The path ended with `/`.
    pub(crate) trailing_slash: bool,
}

impl SafePath {
    /// A segment (other than `.well-known`) starts with a dot: never served.
    pub(crate) fn is_hidden(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.starts_with('.') && s != ".well-known")
    }

    /// The last segment has an extension (`app.js`), so no SPA fallback applies.
    pub(crate) fn has_extension(&self) -> bool {
        self.segments
            .last()
            .and_then(|s| s.rsplit_once('.'))
            .is_some_and(|(stem, ext)| !stem.is_empty() && !ext.is_empty())
    }

    fn relative(&self) -> PathBuf {
        self.segments.iter().collect()
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(segment: &str) -> Result<String, PathError> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(PathError::BadEncoding),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::BadEncoding)
}

/// Reduces a request path (as sent, still percent-encoded) to safe segments.
///
/// Rejects rather than normalizes: a browser never sends `..`, `//` or `%2f` in a path it
/// built from a link, so whoever does is probing.
pub(crate) fn sanitize(raw: &str) -> Result<SafePath, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    if rest.is_empty() {
        return Ok(SafePath {
            segments: Vec::new(),
            trailing_slash: true,
        });
    }
    let trailing_slash = rest.ends_with('/');
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments = Vec::new();
    for raw_segment in rest.split('/') {
        let segment = percent_decode(raw_segment)?;
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(PathError::Traversal);
        }
        if segment.contains(['/', '\\', ':', '\0']) {
            return Err(PathError::Traversal);
        }
        if segment.chars().any(char::is_control) {
            return Err(PathError::BadEncoding);
        }
        segments.push(segment);
    }
    Ok(SafePath {
        segments,
        trailing_slash,
    })
}

/// The Content-Type for a file name.
pub(crate) fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Static files under one directory.
#[derive(Debug, Clone)]
pub(crate) struct StaticFiles {
    /// Canonical path of the web root.
    root: PathBuf,
    /// `Cache-Control: max-age` for everything but HTML, manifests and service workers.
    max_age: Duration,
}

impl StaticFiles {
    /// `root` must be canonical (see `tokio::fs::canonicalize`).
    pub(crate) fn new(root: PathBuf, max_age: Duration) -> Self {
        Self { root, max_age }
    }

    pub(crate) async fn serve<B>(&self, request: &Request<B>) -> Response<FrontBody> {
        let head = request.method() == Method::HEAD;
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
        match self.resolve(&path).await {
            Resolved::File(file) => self.file_response(&file, request, head).await,
            Resolved::Redirect => redirect_to_dir(request),
            Resolved::NotFound => not_found(),
        }
    }

    /// Maps a path to a regular file inside the root (following symlinks only within it).
    async fn resolve(&self, path: &SafePath) -> Resolved {
        let candidate = self.root.join(path.relative());
        match self.inside_root(&candidate).await {
            Some((real, meta)) if meta.is_file() => return Resolved::File(real),
            Some((real, meta)) if meta.is_dir() => {
                let index = real.join("index.html");
                if let Some((index, meta)) = self.inside_root(&index).await
                    && meta.is_file()
                {
                    if !path.trailing_slash {
                        return Resolved::Redirect;
                    }
                    return Resolved::File(index);
                }
            }
            _ => {}
        }
        // Single-page app: unknown paths without an extension get the app's entry point.
        if !path.has_extension() {
            let index = self.root.join("index.html");
            if let Some((index, meta)) = self.inside_root(&index).await
                && meta.is_file()
            {
                return Resolved::File(index);
            }
        }
        Resolved::NotFound
    }

    /// The canonical path and metadata of `path`, if it exists and lies inside the root.
    async fn inside_root(&self, path: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
        let real = tokio::fs::canonicalize(path).await.ok()?;
        if !real.starts_with(&self.root) {
            debug!(path = %path.display(), "static path leaves the web root; refused");
            return None;
        }
        let meta = tokio::fs::metadata(&real).await.ok()?;
        Some((real, meta))
    }

    async fn file_response<B>(
        &self,
        path: &Path,
        request: &Request<B>,
        head: bool,
    ) -> Response<FrontBody> {
        let file = match File::open(path).await {
            Ok(file) => file,
            Err(err) => {
                warn!(%err, path = %path.display(), "cannot open static file");
                return not_found();
            }
        };
        let meta = match file.metadata().await {
            Ok(meta) => meta,
            Err(err) => {
                warn!(%err, path = %path.display(), "cannot stat static file");
                return not_found();
            }
        };
        let len = meta.len();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let etag = HeaderValue::from_str(&format!("W/\"{len:x}-{mtime:x}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("W/\"0\""));
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");

        let not_modified = if_none_match(request, etag.as_bytes());
        let (status, body) = if not_modified {
            (StatusCode::NOT_MODIFIED, empty_body())
        } else if head {
            (StatusCode::OK, empty_body())
        } else {
            (StatusCode::OK, FileBody::new(file, len).boxed_unsync())
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        set_file_headers(headers, content_type(path), file_name, &etag, self.max_age);
        if status == StatusCode::OK {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        response
    }
}

/// The headers of a static file, wherever it comes from: its type; `no-cache` for HTML,
/// manifests and service workers (a new build is picked up at once), `max_age` for the rest;
/// its ETag; and the CSP on HTML and SVG.
pub(crate) fn set_file_headers(
    headers: &mut HeaderMap,
    content_type: &'static str,
    file_name: &str,
    etag: &HeaderValue,
    max_age: Duration,
) {
    let html = content_type.starts_with("text/html");
    let revalidate = html
        || content_type == "application/manifest+json"
        || matches!(file_name, "sw.js" | "service-worker.js");
    let cache = if revalidate {
        HeaderValue::from_static("no-cache")
    } else {
        HeaderValue::from_str(&format!("public, max-age={}", max_age.as_secs()))
            .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, cache);
    headers.insert(header::ETAG, etag.clone());
    if html || content_type == "image/svg+xml" {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
}

/// The request's `If-None-Match` lists `etag` (or `*`).
pub(crate) fn if_none_match<B>(request: &Request<B>, etag: &[u8]) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag == etag || tag == b"*")
}

/// What the front serves for paths that are not its own or a route's.
#[derive(Debug)]
pub(crate) enum Statics {
    /// A directory (`--web-root`).
    Dir(StaticFiles),
    /// The web app built into the binary.
    Embedded(super::web_app::EmbeddedApp),
}

impl Statics {
    pub(crate) async fn serve<B>(&self, request: &Request<B>) -> Response<FrontBody> {
        match self {
            Statics::Dir(files) => files.serve(request).await,
            Statics::Embedded(app) => app.serve(request),
        }
    }
}

enum Resolved {
    File(PathBuf),
    /// A directory with an `index.html`, requested without the trailing `/`.
    Redirect,
    NotFound,
}

pub(crate) fn not_found() -> Response<FrontBody> {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// `308` to the same path with a `/` added (a directory asked for without it), query kept.
pub(crate) fn redirect_to_dir<B>(request: &Request<B>) -> Response<FrontBody> {
    let mut location = request.uri().path().to_owned();
    location.push('/');
    if let Some(query) = request.uri().query() {
        location.push('?');
        location.push_str(query);
    }
    let mut response = plain(StatusCode::PERMANENT_REDIRECT, "");
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Streams a file in chunks (reads run on Tokio's blocking pool).
struct FileBody {
    file: File,
    remaining: u64,
    buf: BytesMut,
}

const CHUNK: usize = 64 * 1024;

impl FileBody {
    fn new(file: File, len: u64) -> Self {
        Self {
            file,
            remaining: len,
            buf: BytesMut::new(),
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = super::route::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        if this.buf.capacity() < CHUNK {
            this.buf.reserve(CHUNK);
        }
        let read = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut this.file),
            cx,
            &mut this.buf
        ));
        match read {
            Ok(0) => Poll::Ready(Some(Err(Box::new(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being served",
            ))))),
            Ok(_) => {
                let mut chunk = this.buf.split();
                let len = chunk.len() as u64;
                if len > this.remaining {
                    // The file grew: send only what Content-Length announced.
                    chunk.truncate(usize::try_from(this.remaining).unwrap_or(usize::MAX));
                }
                this.remaining = this.remaining.saturating_sub(len);
                Poll::Ready(Some(Ok(Frame::data(chunk.freeze()))))
            }
            Err(err) => Poll::Ready(Some(Err(Box::new(err)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        sanitize(path).expect("safe").segments
    }

    #[test]
    fn plain_paths_pass() {
        assert_eq!(segments("/"), Vec::<String>::new());
        assert_eq!(segments("/app.js"), vec!["app.js"]);
        assert_eq!(segments("/assets/icon.svg"), vec!["assets", "icon.svg"]);
        assert_eq!(segments("/a%20b.txt"), vec!["a b.txt"]);
        assert_eq!(segments("/caf%C3%A9"), vec!["café"]);
        let dir = sanitize("/docs/").expect("safe");
        assert!(dir.trailing_slash);
        assert_eq!(dir.segments, vec!["docs"]);
    }

    #[test]
    fn traversal_is_rejected() {
        for path in [
            "/../Cargo.toml",
            "/a/../../etc/passwd",
            "/%2e%2e/Cargo.toml",
            "/%2E%2E/%2E%2E/etc/passwd",
            "/.%2e/x",
            "/a/./b",
            "/..",
            "//etc/passwd",
            "/a//b",
            "/a%2fb",
            "/..%2fCargo.toml",
            "/%2e%2e%2fCargo.toml",
            "/a%5c..%5cb",
            "/..\\Cargo.toml",
            "/C:/Windows",
            "/a%00b",
        ] {
            assert!(sanitize(path).is_err(), "{path} must be rejected");
        }
    }

    #[test]
    fn bad_encoding_and_relative_paths_are_rejected() {
        assert_eq!(sanitize("/%zz"), Err(PathError::BadEncoding));
        assert_eq!(sanitize("/%2"), Err(PathError::BadEncoding));
        assert_eq!(sanitize("/%ff%fe"), Err(PathError::BadEncoding));
        assert_eq!(sanitize("/a%0ab"), Err(PathError::BadEncoding));
        assert_eq!(sanitize("etc/passwd"), Err(PathError::NotAbsolute));
        assert_eq!(sanitize("*"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn hidden_files_and_extensions() {
        assert!(sanitize("/.git/config").expect("safe").is_hidden());
        assert!(sanitize("/a/.env").expect("safe").is_hidden());
        assert!(!sanitize("/.well-known/x").expect("safe").is_hidden());
        assert!(sanitize("/app.js").expect("safe").has_extension());
        assert!(!sanitize("/settings").expect("safe").has_extension());
        assert!(!sanitize("/").expect("safe").has_extension());
    }

    #[test]
    fn content_types() {
        for (name, expected) in [
            ("index.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("data.json", "application/json"),
            ("icon.svg", "image/svg+xml"),
            ("icon.PNG", "image/png"),
            ("app.webmanifest", "application/manifest+json"),
            ("core.wasm", "application/wasm"),
            ("blob", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }
}
