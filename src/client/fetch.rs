//! Reading metadata and targets from a repository URL (`http(s)://` or `file://`), never more
//! than the caller's byte limit: a hostile mirror cannot fill the disk or memory.

use std::path::PathBuf;

use url::Url;

use crate::{Error, Result};

pub struct Fetcher {
    http: reqwest::Client,
}

/// Parses a base URL; a plain path is taken as a local folder.
pub fn base_url(text: &str) -> Result<Url> {
    let url = if text.contains("://") {
        Url::parse(text).map_err(|e| Error::Usage(format!("{text}: not a URL ({e})")))?
    } else {
        let path = std::fs::canonicalize(text).map_err(Error::io("cannot find folder", text))?;
        Url::from_directory_path(&path)
            .map_err(|_| Error::Usage(format!("{text}: not a folder")))?
    };
    let mut url = url;
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetcher {
    pub fn new() -> Fetcher {
        Fetcher {
            http: reqwest::Client::builder()
                .user_agent(concat!(
                    "package-signing-tuf-client/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()
                .expect("a default HTTP client"),
        }
    }

    /// The bytes at `base/relative`, or `None` when there is no such file (HTTP 404/403, or
    /// no file). Fails when the file is longer than `max_len`.
    pub async fn get(&self, base: &Url, relative: &str, max_len: u64) -> Result<Option<Vec<u8>>> {
        let url = join(base, relative)?;
        let too_long = |url: &Url| Error::Download {
            url: url.to_string(),
            reason: format!("longer than the {max_len} bytes the metadata allows; refusing it"),
        };
        if url.scheme() == "file" {
            let path: PathBuf = url
                .to_file_path()
                .map_err(|_| Error::Usage(format!("{url}: bad file URL")))?;
            return match std::fs::metadata(&path) {
                Ok(m) if m.len() > max_len => Err(too_long(&url)),
                Ok(_) => Ok(Some(
                    std::fs::read(&path).map_err(Error::io("cannot read", &path))?,
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io("cannot read", &path)(e)),
            };
        }
        let mut response =
            self.http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| Error::Download {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Error::Download {
                url: url.to_string(),
                reason: format!("HTTP {status}"),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Error::Download {
            url: url.to_string(),
            reason: e.to_string(),
        })? {
            if body.len() as u64 + chunk.len() as u64 > max_len {
                return Err(too_long(&url));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}

/// `base` + a relative path whose segments are percent-encoded one by one.
fn join(base: &Url, relative: &str) -> Result<Url> {
    let mut url = base.clone();
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|_| Error::Usage(format!("{base}: cannot be a base URL")))?;
        segments.pop_if_empty();
        for s in relative.split('/') {
            segments.push(s);
        }
    }
    Ok(url)
}
