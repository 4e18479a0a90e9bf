//! `tuf-client serve`: a small read-only HTTP server for a repository folder, so that a
//! deployment without a web server (DDEV, CI) can offer `metadata/` and `targets/` to
//! clients. GET and HEAD only; paths are decoded and confined to those two folders.
//! `Last-Modified` and `If-Modified-Since` (304), which Composer's TUF plugin sends; a
//! connection closes after the response when the client asks for it (`Connection: close`, or
//! HTTP/1.0 without keep-alive), so clients that read to the end of the stream do not hang.

use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::{Error, Result};

/// Serves `root` on `listen` until the process ends.
pub async fn serve(root: PathBuf, listen: &str) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {listen}: {e}")))?;
    tracing::info!(listen, root = %root.display(), "serving the repository read-only");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let root = root.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &root).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

/// Longest request or header line, and most header lines, we read before giving up on a
/// connection.
const MAX_LINE: u64 = 8 * 1024;
const MAX_HEADERS: usize = 100;

/// What we use of a request.
#[derive(Debug, PartialEq)]
struct Request {
    method: String,
    target: String,
    /// Whether the client wants the connection kept open: HTTP/1.1 unless it sent
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    keep_alive: bool,
    if_modified_since: Option<jiff::Timestamp>,
}

async fn handle(stream: tokio::net::TcpStream, root: &Path) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    while let Some(request) = read_request(&mut reader).await? {
        let response = respond(root, &request).await;
        write.write_all(&response.head(request.keep_alive)).await?;
        if request.method != "HEAD" {
            write.write_all(&response.body).await?;
        }
        if !request.keep_alive {
            break;
        }
    }
    write.shutdown().await
}

/// Reads one request's line and headers; `None` at end of stream. A line longer than
/// [`MAX_LINE`] or more than [`MAX_HEADERS`] headers end the connection.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Request>> {
    let too_big = || std::io::Error::new(std::io::ErrorKind::InvalidData, "request too large");
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = (&mut *reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") {
            return Err(too_big());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // a stray blank line between requests
            }
            break;
        }
        if lines.len() > MAX_HEADERS {
            return Err(too_big());
        }
        lines.push(text);
    }
    let mut parts = lines[0].split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let http10 = parts.next() == Some("HTTP/1.0");
    let header = |name: &str| {
        lines[1..].iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let connection = header("connection")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let keep_alive = if http10 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let if_modified_since = header("if-modified-since").and_then(|v| parse_http_date(&v));
    Ok(Some(Request {
        method,
        target,
        keep_alive,
        if_modified_since,
    }))
}

struct Response {
    status: &'static str,
    last_modified: Option<jiff::Timestamp>,
    body: Vec<u8>,
}

impl Response {
    fn error(status: &'static str, text: &str) -> Response {
        Response {
            status,
            last_modified: None,
            body: text.as_bytes().to_vec(),
        }
    }

    fn head(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nCache-Control: no-cache\r\n",
            self.status,
            self.body.len()
        );
        if let Some(t) = self.last_modified {
            head.push_str(&format!("Last-Modified: {}\r\n", http_date(t)));
        }
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

async fn respond(root: &Path, request: &Request) -> Response {
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return Response::error("405 Method Not Allowed", "GET or HEAD only\n");
    }
    let Some(path) = resolve(root, &request.target) else {
        return Response::error("404 Not Found", "not found\n");
    };
    let modified = tokio::fs::metadata(&path)
        .await
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
        .and_then(|t| jiff::Timestamp::from_second(t.as_second()).ok());
    // RFC 9110 §13.1.3: not modified if the file is older than the date the client has
    // (strictly: a write in the same second as the client's copy must not be hidden). Never
    // for versioned metadata: Composer's plugin sends the date of its stored `snapshot.json`
    // when it asks for `N.snapshot.json`, a file it has never seen, and would take a 304 as
    // "use the old snapshot".
    if let (Some(since), Some(modified)) = (request.if_modified_since, modified) {
        if modified < since && !is_versioned_metadata(&path) {
            return Response {
                status: "304 Not Modified",
                last_modified: Some(modified),
                body: Vec::new(),
            };
        }
    }
    match tokio::fs::read(&path).await {
        Ok(body) => Response {
            status: "200 OK",
            last_modified: modified,
            body,
        },
        Err(_) => Response::error("404 Not Found", "not found\n"),
    }
}

/// Whether `path` is `metadata/N.ROLE.json`: a name given to one content only.
fn is_versioned_metadata(path: &Path) -> bool {
    let in_metadata = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "metadata");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    in_metadata
        && name
            .split_once('.')
            .is_some_and(|(v, _)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// An IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: jiff::Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(text: &str) -> Option<jiff::Timestamp> {
    let with_zone = text.trim().strip_suffix("GMT")?.trim_end().to_string() + " +0000";
    jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S %z", &with_zone)
        .ok()?
        .to_timestamp()
        .ok()
}

/// The file a request path names, or `None` if it would leave `root` or is not a file name.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let relative = Path::new(decoded.trim_start_matches('/'));
    let published = relative.starts_with("metadata") || relative.starts_with("targets");
    if !published
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.contains('\0')).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confines_requests_to_the_folder() {
        let root = Path::new("/srv/repo");
        assert_eq!(
            resolve(root, "/metadata/1.root.json"),
            Some(root.join("metadata/1.root.json"))
        );
        assert_eq!(
            resolve(root, "/targets/pkgs/abc.foo%20bar"),
            Some(root.join("targets/pkgs/abc.foo bar"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/metadata/%2e%2e/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(root, "/metadata/a%00b"), None);
        assert_eq!(resolve(root, "/"), None);
        assert_eq!(resolve(root, "/metadata"), Some(root.join("metadata")));
        assert_eq!(
            resolve(root, "/inbox/job.json"),
            None,
            "only metadata/ and targets/"
        );
        assert_eq!(resolve(root, "/metadata/a%zz"), None);
    }

    async fn parse(text: &str) -> Option<Request> {
        read_request(&mut text.as_bytes()).await.unwrap()
    }

    #[tokio::test]
    async fn keeps_the_connection_only_when_asked() {
        let r = parse("GET /metadata/1.root.json HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.unwrap().keep_alive);
        let r = parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").await;
        assert!(!r.unwrap().keep_alive);
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").await.unwrap().keep_alive);
        let r = parse("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").await;
        assert!(r.unwrap().keep_alive);
        assert_eq!(parse("").await, None);
    }

    #[tokio::test]
    async fn reads_if_modified_since_as_php_writes_it() {
        let r = parse("GET / HTTP/1.1\r\nIf-Modified-Since: Sun, 29 Nov 2026 08:52:06 GMT\r\n\r\n")
            .await
            .unwrap();
        let t = r.if_modified_since.unwrap();
        assert_eq!(t.as_second(), 1_795_942_326);
        assert_eq!(http_date(t), "Sun, 29 Nov 2026 08:52:06 GMT");
    }

    #[test]
    fn only_unversioned_files_are_revalidated() {
        assert!(is_versioned_metadata(Path::new(
            "/r/metadata/3.snapshot.json"
        )));
        assert!(is_versioned_metadata(Path::new(
            "/r/metadata/12.bin-0a.json"
        )));
        assert!(!is_versioned_metadata(Path::new(
            "/r/metadata/timestamp.json"
        )));
        assert!(!is_versioned_metadata(Path::new("/r/metadata/root.json")));
        assert!(!is_versioned_metadata(Path::new("/r/targets/p2/1.json")));
    }

    #[tokio::test]
    async fn refuses_an_endless_line() {
        let long = "GET /".to_string() + &"a".repeat(MAX_LINE as usize) + " HTTP/1.1\r\n\r\n";
        assert!(read_request(&mut long.as_bytes()).await.is_err());
    }
}
