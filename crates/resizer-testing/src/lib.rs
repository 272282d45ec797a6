//! Test support shared by the workspace's tests (a dev-dependency only): a
//! fresh database on the throwaway PostgreSQL that `scripts/test.sh` starts
//! (one helper, so every PostgreSQL test skips or fails for the same reason),
//! a counting allocator for tests that bound memory ([`alloc`]), a real
//! nats-server on loopback ([`nats`]) and the photo corpus.

pub mod alloc;
pub mod nats;

/// Creates a database with a random name on the server at
/// `RESIZER_TEST_DATABASE_URL` and returns its URL.
///
/// Without that variable the caller skips (`None`), so `cargo test` runs on a
/// machine without PostgreSQL; in CI (`CI` set) a missing server is a failure,
/// never a silent skip.
pub async fn fresh_database(prefix: &str) -> Option<String> {
    let Ok(base) = std::env::var("RESIZER_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "RESIZER_TEST_DATABASE_URL must be set in CI (scripts/test.sh starts PostgreSQL)"
        );
        eprintln!("skipped: RESIZER_TEST_DATABASE_URL is not set; run scripts/test.sh");
        return None;
    };
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test PostgreSQL");
    let connection = tokio::spawn(connection);
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).expect("random bytes");
    let name = format!(
        "{prefix}_{}",
        suffix.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("creating a test database");
    drop(client);
    let _ = connection.await;
    let (server, _) = base
        .rsplit_once('/')
        .expect("RESIZER_TEST_DATABASE_URL ends in /<database>");
    Some(format!("{server}/{name}"))
}

/// A file of the shared photo corpus (`RESIZER_CORPUS`, or `../shared/bench/imaging/corpus`
/// beside the repository), by its path inside the corpus.
pub fn corpus(rel: &str) -> std::path::PathBuf {
    let base = std::env::var_os("RESIZER_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/imaging/corpus")
        });
    base.join(rel)
}

/// The bytes of a corpus file; panics with the path when it is missing.
pub fn read_corpus(rel: &str) -> Vec<u8> {
    let path = corpus(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading corpus file {}: {e}", path.display()))
}
