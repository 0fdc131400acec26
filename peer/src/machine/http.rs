//! A minimal HTTP/1.1 `GET` for probing model servers: plain `http://` only (model servers on
//! the host's own machine or its LAN speak it), one request per connection, a bounded body.
//! The response parser is sans-IO ([`parse_response`]).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest response read, bytes (a model list is a few KiB).
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (80 when the URL names none).
    pub port: u16,
    /// Path, starting with `/`, without a trailing `/` unless it is the root.
    pub path: String,
}

impl HttpUrl {
    /// Parses `url`; only `http://` URLs without user info, query or fragment.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: only http:// URLs (a model server on this machine or the LAN)")
        })?;
        if rest.contains(['?', '#', '@', ' ']) || rest.chars().any(char::is_control) {
            return Err(format!("{url:?}: no user, query, fragment or spaces"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: bad IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{url:?}: bad address")),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
            None => 80,
        };
        let path = path.trim_end_matches('/');
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }

    /// `host:port` as the `Host` header and `connect` want it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses a whole HTTP/1.x response: its status and body (de-chunked).
pub fn parse_response(bytes: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "headers are not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split(' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(format!("not an HTTP response: {:?}", truncate(status_line)));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {:?}", truncate(status_line)))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse::<usize>().map_err(|_| "bad content-length")?);
        }
    }
    let body = &bytes[end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n)
            .ok_or("body shorter than its content-length")?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let i = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size = std::str::from_utf8(&b[..i])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .ok_or("bad chunk size")?;
        b = &b[i + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("chunk cut short")?);
        b = b.get(size + 2..).ok_or("chunk cut short")?;
    }
}

/// `GET url`; the status and body. The caller bounds the time.
pub async fn get(url: &HttpUrl, bearer: Option<&str>) -> Result<(u16, Vec<u8>), String> {
    let mut s = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "nothing listens there".to_string(),
            _ => e.to_string(),
        })?;
    let auth = bearer
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: peer\r\n{auth}Connection: close\r\n\r\n",
        url.path,
        url.authority()
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    (&mut s)
        .take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if buf.len() > MAX_RESPONSE {
        return Err(format!("answer larger than {MAX_RESPONSE} bytes"));
    }
    parse_response(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:11434/v1/").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 11434, "/v1")
        );
        let u = HttpUrl::parse("http://[::1]:8080/v1").expect("url");
        assert_eq!(
            (u.host.as_str(), u.authority().as_str()),
            ("::1", "[::1]:8080")
        );
        let u = HttpUrl::parse("http://gpu-box").expect("url");
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        for bad in [
            "https://x/v1",
            "http://:80/v1",
            "http://x:port/v1",
            "http://u@x/v1",
            "http://x/v1?a",
            "ftp://x",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing";
        assert_eq!(parse_response(r), Ok((200, b"{}".to_vec())));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(r), Ok((200, b"{\"a\":1}".to_vec())));
        let r = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(r), Ok((404, b"nope".to_vec())));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }
}
