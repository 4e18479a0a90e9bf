//! Getting bytes from a repository: the [`Fetcher`] trait the updater downloads through (tests
//! give it an in-memory repository), and [`HttpFetcher`] for `http(s)://` and `file://` URLs.
//!
//! Over HTTP it asks for gzip (`Accept-Encoding: gzip`) and decodes what comes gzip-encoded (a
//! repository's gzip copies, served by `tuf-client serve` or nginx `gzip_static`).
//!
//! Invariant: never more than the caller's byte limit is read (counted once decoded), and no
//! transfer outlives the configured timeouts or crawls below the minimum speed: a hostile
//! mirror can neither fill memory nor hold an update forever.

use std::future::Future;
use std::path::PathBuf;
use std::time::Instant;

use url::Url;

use super::config::Config;
use super::error::{Error, Result};

/// Where the updater gets its bytes from.
pub trait Fetcher {
    /// The bytes at `url`, or `None` when the repository has no such file (HTTP 404 or 403,
    /// or no such local file). Fails when the file is longer than `max_length`.
    fn fetch(&self, url: &Url, max_length: u64) -> impl Future<Output = Result<Option<Vec<u8>>>>;
}

/// The [`Fetcher`] for `http(s)://` and `file://` URLs, within the limits of a [`Config`].
pub struct HttpFetcher {
    http: reqwest::Client,
    config: Config,
}

/// Parses a base URL; a plain path is taken as a local folder. The result ends in `/`.
pub fn base_url(text: &str) -> Result<Url> {
    let mut url = if text.contains("://") {
        Url::parse(text).map_err(|e| Error::Usage(format!("{text}: not a URL ({e})")))?
    } else {
        let path =
            std::fs::canonicalize(text).map_err(Error::storage("cannot find folder", text))?;
        Url::from_directory_path(&path)
            .map_err(|()| Error::Usage(format!("{text}: not a folder")))?
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Usage(format!(
            "{text}: a base URL with a query or fragment; give the folder's URL alone"
        )));
    }
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// `base` (ending in `/`) and a relative path whose characters are already safe in a URL path.
pub fn join(base: &Url, relative: &str) -> Result<Url> {
    Url::parse(&format!("{base}{relative}"))
        .map_err(|e| Error::Usage(format!("{base}{relative}: not a URL ({e})")))
}

impl HttpFetcher {
    /// A fetcher with `config`'s timeouts and minimum speed.
    pub fn new(config: &Config) -> HttpFetcher {
        HttpFetcher {
            http: reqwest::Client::builder()
                .user_agent(concat!(
                    "package-signing-tuf-client/",
                    env!("CARGO_PKG_VERSION")
                ))
                .connect_timeout(config.connect_timeout)
                .read_timeout(config.read_timeout)
                .build()
                .expect("a default HTTP client"),
            config: config.clone(),
        }
    }

    /// A local file: opened once, only a regular file, never more than `max_length` read
    /// (a file that grows meanwhile, a device or a FIFO cannot get past the limit or block).
    fn fetch_file(&self, url: &Url, max_length: u64) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path: PathBuf = url
            .to_file_path()
            .map_err(|()| Error::Usage(format!("{url}: bad file URL")))?;
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::storage("cannot read", &path)(e)),
        };
        let meta = file
            .metadata()
            .map_err(Error::storage("cannot read", &path))?;
        if !meta.is_file() {
            return Err(failed(url, "not a regular file".into()));
        }
        let mut bytes = Vec::new();
        file.take(max_length + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::storage("cannot read", &path))?;
        if bytes.len() as u64 > max_length {
            return Err(too_long(url, max_length));
        }
        Ok(Some(bytes))
    }
}

fn too_long(url: &Url, max_length: u64) -> Error {
    failed(
        url,
        format!("longer than the {max_length} bytes allowed; refusing it"),
    )
}

impl Fetcher for HttpFetcher {
    async fn fetch(&self, url: &Url, max_length: u64) -> Result<Option<Vec<u8>>> {
        if url.scheme() == "file" {
            return self.fetch_file(url, max_length);
        }
        let Some(response) = self.response_head(url).await? else {
            return Ok(None);
        };
        if response.content_length().is_some_and(|l| l > max_length) {
            return Err(too_long(url, max_length));
        }
        self.read_body(url, response, max_length).await.map(Some)
    }
}

impl HttpFetcher {
    /// The response head, within a connect and a read timeout; `None` for HTTP 404 or 403.
    async fn response_head(&self, url: &Url) -> Result<Option<reqwest::Response>> {
        let deadline = self.config.connect_timeout + self.config.read_timeout;
        let response = tokio::time::timeout(deadline, self.http.get(url.clone()).send())
            .await
            .map_err(|_| failed(url, format!("no response within {} s", deadline.as_secs())))?
            .map_err(|e| failed(url, e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(failed(url, format!("HTTP {status}")));
        }
        Ok(Some(response))
    }

    /// The body, where no read may wait longer than a read timeout and every window of a read
    /// timeout must bring the minimum speed (a trickle of a byte every few seconds is refused,
    /// however much came before), and never more than `max_length` bytes.
    async fn read_body(
        &self,
        url: &Url,
        mut response: reqwest::Response,
        max_length: u64,
    ) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut window = SpeedWindow::new();
        loop {
            let chunk = tokio::time::timeout(self.config.read_timeout, response.chunk())
                .await
                .map_err(|_| {
                    let secs = self.config.read_timeout.as_secs();
                    failed(url, format!("no data for {secs} s"))
                })?
                .map_err(|e| failed(url, e.to_string()))?;
            let Some(chunk) = chunk else {
                return Ok(body);
            };
            if body.len() as u64 + chunk.len() as u64 > max_length {
                return Err(too_long(url, max_length));
            }
            body.extend_from_slice(&chunk);
            window
                .add(chunk.len() as u64, &self.config)
                .map_err(|e| failed(url, e))?;
        }
    }
}

/// The bytes received since a window of a read timeout began.
struct SpeedWindow {
    start: Instant,
    bytes: u64,
}

impl SpeedWindow {
    fn new() -> SpeedWindow {
        SpeedWindow {
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `bytes` received; once the window has lasted a read timeout, fails if it brought
    /// less than the minimum speed, and starts the next.
    fn add(&mut self, bytes: u64, config: &Config) -> std::result::Result<(), String> {
        self.bytes += bytes;
        let elapsed = self.start.elapsed();
        if elapsed < config.read_timeout {
            return Ok(());
        }
        if (self.bytes as f64) < config.min_bytes_per_second as f64 * elapsed.as_secs_f64() {
            return Err(format!(
                "slower than {} bytes/s over {:.0} s; giving up",
                config.min_bytes_per_second,
                elapsed.as_secs_f64()
            ));
        }
        *self = SpeedWindow::new();
        Ok(())
    }
}

/// A download that failed for `reason`.
fn failed(url: &Url, reason: String) -> Error {
    Error::Download {
        url: url.to_string(),
        reason,
    }
}
