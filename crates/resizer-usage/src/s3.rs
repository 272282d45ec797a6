//! The archive's object store on an S3-compatible service (AWS S3, Garage,
//! MinIO, R2, …): the same four calls as a local directory, over presigned
//! requests (SigV4 by `rusty-s3`, no SDK) sent by `reqwest`.
//!
//! Every request has a timeout; transient failures (connection errors, 5xx,
//! 429) are retried twice with a short backoff, after which the error goes back
//! to the aggregator, which keeps the batch unacknowledged and tries again later.

use std::io::{Error, ErrorKind};
use std::time::Duration;

use rusty_s3::actions::ListObjectsV2;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::archive::ObjectStore;

/// How long a presigned request stays valid: long enough for one attempt.
const SIGNATURE_TTL: Duration = Duration::from_secs(120);
/// Attempts per call.
const ATTEMPTS: u32 = 3;

/// Where the bucket is and who may write it.
#[derive(Clone)]
pub struct S3Config {
    /// Endpoint URL, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:3900`.
    pub endpoint: String,
    /// Bucket name (it must exist).
    pub bucket: String,
    /// Signing region (`garage` for Garage's default, `us-east-1`, …).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never logged).
    pub secret_access_key: String,
    /// Virtual-host-style URLs (`bucket.host`) instead of path style (`host/bucket`).
    pub virtual_host: bool,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Objects in an S3 bucket.
pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    client: reqwest::Client,
    list_page: usize,
}

impl S3Store {
    /// Builds the client. Does not contact the service.
    pub fn new(config: &S3Config) -> Result<Self, Error> {
        let invalid = |what: String| Error::new(ErrorKind::InvalidInput, what);
        let endpoint: url::Url = config
            .endpoint
            .parse()
            .map_err(|e| invalid(format!("S3 endpoint {:?}: {e}", config.endpoint)))?;
        let style = if config.virtual_host {
            UrlStyle::VirtualHost
        } else {
            UrlStyle::Path
        };
        let bucket = Bucket::new(endpoint, style, config.bucket.clone(), config.region.clone())
            .map_err(|e| invalid(format!("S3 bucket {:?}: {e:?}", config.bucket)))?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| Error::other(format!("S3 client: {e}")))?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(config.access_key_id.clone(), config.secret_access_key.clone()),
            client,
            list_page: 1000,
        })
    }

    /// Lists at most `keys` per request (S3's own limit is 1,000), so tests can
    /// cross page boundaries with a handful of objects.
    pub fn with_list_page(mut self, keys: usize) -> Self {
        self.list_page = keys.clamp(1, 1000);
        self
    }

    /// Sends the request `build` makes (freshly signed per attempt), retrying
    /// transient failures; returns the status and body of the last answer.
    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder + Send + Sync,
    ) -> Result<(u16, bytes::Bytes), Error> {
        {
            let mut last = String::new();
            for attempt in 0..ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                match build().send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.bytes().await;
                        match body {
                            Ok(body) if status < 500 && status != 429 => return Ok((status, body)),
                            Ok(body) => {
                                last = format!("HTTP {status}: {}", excerpt(&body));
                            }
                            Err(e) => last = e.without_url().to_string(),
                        }
                    }
                    // The URL is presigned: its query holds the credential and
                    // signature, which must not reach a log or an error message.
                    Err(e) => last = e.without_url().to_string(),
                }
                tracing::warn!(request = what, attempt, error = %last, "S3 request failed");
            }
            Err(Error::other(format!("S3 {what}: {last}")))
        }
    }
}

/// The start of an error body, for the log line (S3 errors are short XML).
/// One page of a `ListObjectsV2` answer, as [`ObjectStore::list`] uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The keys, then the common prefixes without their trailing `/`.
    pub keys: Vec<String>,
    /// The continuation token, when there is a next page.
    pub next: Option<String>,
}

/// Reads a `ListObjectsV2` XML body: the one thing the store parses from the
/// object service's answers (fuzzed by `resizer-fuzz`).
pub fn parse_list_page(body: &[u8]) -> std::io::Result<ListPage> {
    let text = std::str::from_utf8(body).map_err(|e| Error::new(ErrorKind::InvalidData, e))?;
    let page = ListObjectsV2::parse_response(text)
        .map_err(|e| Error::new(ErrorKind::InvalidData, format!("S3 list response: {e}")))?;
    let mut keys: Vec<String> = page.contents.into_iter().map(|c| c.key).collect();
    keys.extend(
        page.common_prefixes
            .into_iter()
            .map(|p| p.prefix.trim_end_matches('/').to_string()),
    );
    let next = page.next_continuation_token.filter(|t| !t.is_empty());
    Ok(ListPage { keys, next })
}

fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

fn refused(what: &str, key: &str, status: u16, body: &[u8]) -> Error {
    let kind = match status {
        404 => ErrorKind::NotFound,
        401 | 403 => ErrorKind::PermissionDenied,
        _ => ErrorKind::Other,
    };
    Error::new(kind, format!("S3 {what} {key}: HTTP {status}: {}", excerpt(body)))
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: bytes::Bytes) -> std::io::Result<()> {
        // A single PUT is atomic in S3: readers see the old object, none, or all of the new.
        let (status, answer) = self
            .send("put", || {
                let url = self
                    .bucket
                    .put_object(Some(&self.credentials), key)
                    .sign(SIGNATURE_TTL);
                self.client.put(url).body(body.clone())
            })
            .await?;
        match status {
            200..=299 => Ok(()),
            _ => Err(refused("put", key, status, &answer)),
        }
    }

    async fn get(&self, key: &str) -> std::io::Result<bytes::Bytes> {
        let (status, body) = self
            .send("get", || {
                let url = self
                    .bucket
                    .get_object(Some(&self.credentials), key)
                    .sign(SIGNATURE_TTL);
                self.client.get(url)
            })
            .await?;
        match status {
            200..=299 => Ok(body),
            _ => Err(refused("get", key, status, &body)),
        }
    }

    /// The keys and "directories" (common prefixes, without their trailing `/`)
    /// right under `prefix`, like a directory listing.
    async fn list(&self, prefix: &str) -> std::io::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (status, body) = self
                .send("list", || {
                    let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
                    action.with_prefix(prefix);
                    action.with_delimiter("/");
                    action.with_max_keys(self.list_page);
                    if let Some(t) = &token {
                        action.with_continuation_token(t.clone());
                    }
                    self.client.get(action.sign(SIGNATURE_TTL))
                })
                .await?;
            if !(200..=299).contains(&status) {
                return Err(refused("list", prefix, status, &body));
            }
            let page = parse_list_page(&body)?;
            keys.extend(page.keys);
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> std::io::Result<()> {
        let (status, body) = self
            .send("delete", || {
                let url = self
                    .bucket
                    .delete_object(Some(&self.credentials), key)
                    .sign(SIGNATURE_TTL);
                self.client.delete(url)
            })
            .await?;
        match status {
            200..=299 | 404 => Ok(()),
            _ => Err(refused("delete", key, status, &body)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testing::{Garage, free_port};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_s3_store_keeps_the_archive_contract_on_garage() {
        let garage = Garage::start();
        // Two keys a page, so listings cross continuation tokens.
        let store = Arc::new(S3Store::new(&garage.config).unwrap().with_list_page(2));
        let s = store.clone();
        crate::archive::tests::check_archive(s.clone()).await;
        // Object semantics the archive relies on.
        let e = s.get("usage/none.parquet").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        s.delete("usage/none.parquet").await.unwrap();
        for k in ["x/a/1", "x/a/2", "x/b", "x/c", "x/d/e/f"] {
            s.put(k, bytes::Bytes::from(k)).await.unwrap();
        }
        assert_eq!(s.list("x/").await.unwrap(), vec!["x/a", "x/b", "x/c", "x/d"]);
        assert_eq!(s.list("x/a/").await.unwrap(), vec!["x/a/1", "x/a/2"]);
        assert_eq!(s.get("x/d/e/f").await.unwrap(), &b"x/d/e/f"[..]);
        s.put("x/b", bytes::Bytes::from_static(b"new")).await.unwrap();
        assert_eq!(s.get("x/b").await.unwrap(), &b"new"[..]);
        s.delete("x/b").await.unwrap();
        assert_eq!(s.get("x/b").await.unwrap_err().kind(), ErrorKind::NotFound);

        // A wrong secret is refused as such, not retried into a hang.
        let mut wrong = garage.config.clone();
        wrong.secret_access_key = "0".repeat(64);
        let bad = S3Store::new(&wrong).unwrap();
        let e = bad.get("x/c").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        // Debug output never carries the secret.
        assert!(!format!("{:?}", garage.config).contains(&garage.config.secret_access_key));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_s3_store_fails_within_its_timeouts_when_the_service_is_down() {
        let config = S3Config {
            endpoint: format!("http://127.0.0.1:{}", free_port()),
            bucket: "b".into(),
            region: "garage".into(),
            access_key_id: "GK00".into(),
            secret_access_key: "s".into(),
            virtual_host: false,
            timeout: Duration::from_millis(500),
        };
        let store = S3Store::new(&config).unwrap();
        let started = std::time::Instant::now();
        let e = store.put("k", bytes::Bytes::from_static(b"v")).await.unwrap_err();
        assert!(e.to_string().contains("S3 put"), "{e}");
        // A presigned URL is a credential for its lifetime: never in the error text.
        for leak in ["X-Amz-Signature", "X-Amz-Credential", "GK00", "127.0.0.1"] {
            assert!(!e.to_string().contains(leak), "{e}");
        }
        // Three attempts, 400 + 800 ms of backoff, each refused at once.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
