//! A fresh PostgreSQL database per test, on the cluster named by DRYDOCK_TEST_POSTGRES_URL
//! (`scripts/test` starts one; alone, `eval $(scripts/pg-test-server start /tmp/pg)`).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use drydock_catalog::Catalog;

/// A database made for one test, dropped (with any connection left to it) afterwards.
pub struct TestDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub fn new() -> TestDatabase {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let admin_url = std::env::var("DRYDOCK_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "DRYDOCK_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts PostgreSQL, \
                 or start one with `eval $(scripts/pg-test-server start /tmp/pg)`"
            )
        });
        let name = format!("catalog_test_{}_{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        TestDatabase { admin_url, name }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> String {
        let (server, _) = self.admin_url.rsplit_once('/').expect("a URL ending in /database");
        format!("{server}/{}", self.name)
    }

    pub fn connect(&self) -> Catalog {
        Catalog::connect(&self.url()).expect("connecting to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(url: &str, sql: &str) {
    let output =
        Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]).output().expect("running psql");
    assert!(output.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&output.stderr));
}
