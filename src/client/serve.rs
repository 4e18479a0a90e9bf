//! `tuf-client serve`: a small read-only HTTP server for a repository folder, so that a
//! deployment without a web server (DDEV, CI) can offer `metadata/` and `targets/` to
//! clients. GET and HEAD only; paths are decoded and confined to those two folders.

use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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

async fn handle(stream: tokio::net::TcpStream, root: &Path) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(request) = lines.next_line().await? {
        // Skip the headers; we need none of them.
        while let Some(h) = lines.next_line().await? {
            if h.is_empty() {
                break;
            }
        }
        let mut parts = request.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let (status, body) = match (method, resolve(root, target)) {
            ("GET" | "HEAD", Some(path)) => match tokio::fs::read(&path).await {
                Ok(bytes) => ("200 OK", bytes),
                Err(_) => ("404 Not Found", b"not found\n".to_vec()),
            },
            ("GET" | "HEAD", None) => ("404 Not Found", b"not found\n".to_vec()),
            _ => ("405 Method Not Allowed", b"GET or HEAD only\n".to_vec()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nCache-Control: no-cache\r\n\r\n",
            body.len()
        );
        write.write_all(head.as_bytes()).await?;
        if method != "HEAD" {
            write.write_all(&body).await?;
        }
    }
    Ok(())
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
}
