//! Persistence: the directory, signing keys, and every single-use or revocable
//! handle (codes, refresh tokens, device codes, sign-in flows, sessions, assertion
//! ids), with atomic statements so that several nodes on one database behave as one.
//!
//! SQLite (WAL) is the embedded default. The SQL is kept portable (UPDATE … RETURNING,
//! ON CONFLICT) so the PostgreSQL implementation shares it.

use std::path::Path;
use std::str::FromStr;

use gatehouse_jose::KeyMaterial;
use gatehouse_model::Directory;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One stored handle (code, refresh token, flow, session, device code, jti).
#[derive(Debug, Clone)]
pub struct Handle {
    pub body: String,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub revoked: bool,
    pub family: Option<String>,
}

/// Result of consuming a single-use handle.
#[derive(Debug, Clone)]
pub enum Consumed {
    /// This call consumed it.
    First(Handle),
    /// It had been consumed before (replay).
    Again(Handle),
    Missing,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS directory (tenant_id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT PRIMARY KEY, pkcs8 BLOB NOT NULL, cert BLOB NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS handles (kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, expires_at INTEGER NOT NULL, consumed_at INTEGER, revoked INTEGER NOT NULL DEFAULT 0, family TEXT, PRIMARY KEY (kind, key))",
    "CREATE INDEX IF NOT EXISTS handles_family ON handles (family)",
    "CREATE INDEX IF NOT EXISTS handles_expiry ON handles (expires_at)",
    "CREATE TABLE IF NOT EXISTS sign_in_failures (user_id TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked_until INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS denials (trace_id TEXT PRIMARY KEY, at INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS denials_at ON denials (at)",
];

impl Store {
    /// Open (creating if needed) the SQLite database at `path`, in WAL mode.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        Self::migrate(&pool).await?;
        Ok(Store { pool })
    }

    /// An in-memory database, for tests.
    pub async fn open_memory() -> Result<Store> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        Self::migrate(&pool).await?;
        Ok(Store { pool })
    }

    async fn migrate(pool: &SqlitePool) -> Result<()> {
        for stmt in SCHEMA {
            sqlx::query(*stmt).execute(pool).await?;
        }
        Ok(())
    }

    pub async fn journal_mode(&self) -> Result<String> {
        Ok(sqlx::query("PRAGMA journal_mode")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    pub async fn meta(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query("SELECT value FROM meta WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    /// Set `name` only if unset; returns the value in force (ours or the earlier one).
    pub async fn meta_init(&self, name: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.meta(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("meta {name} vanished")))
    }

    pub async fn load_directory(&self) -> Result<Option<(Directory, i64)>> {
        let row = sqlx::query("SELECT body, version FROM directory LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let body: String = row.try_get(0)?;
        let version: i64 = row.try_get(1)?;
        let dir = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some((dir, version)))
    }

    /// Write the directory; the version counter lets other nodes notice the change.
    pub async fn save_directory(&self, dir: &Directory) -> Result<i64> {
        let body = serde_json::to_string(dir).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = sqlx::query(
            "INSERT INTO directory (tenant_id, body, version) VALUES (?, ?, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET body = excluded.body, version = directory.version + 1 \
             RETURNING version",
        )
        .bind(dir.tenant.id.to_string())
        .bind(body)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn directory_version(&self) -> Result<Option<i64>> {
        Ok(sqlx::query("SELECT version FROM directory LIMIT 1")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    pub async fn signing_keys(&self) -> Result<Vec<KeyMaterial>> {
        let rows = sqlx::query("SELECT kid, pkcs8, cert, created_at FROM signing_keys")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(KeyMaterial {
                    kid: r.try_get(0)?,
                    pkcs8_der: r.try_get(1)?,
                    cert_der: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub async fn insert_signing_key(&self, k: &KeyMaterial) -> Result<()> {
        sqlx::query("INSERT INTO signing_keys (kid, pkcs8, cert, created_at) VALUES (?, ?, ?, ?)")
            .bind(&k.kid)
            .bind(&k.pkcs8_der)
            .bind(&k.cert_der)
            .bind(k.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn put_handle(
        &self,
        kind: &str,
        key: &str,
        body: &str,
        expires_at: i64,
        family: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO handles (kind, key, body, expires_at, family) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at, family = excluded.family",
        )
        .bind(kind)
        .bind(key)
        .bind(body)
        .bind(expires_at)
        .bind(family)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Insert only if absent (assertion `jti` replay); true when this call inserted it.
    pub async fn insert_unique(&self, kind: &str, key: &str, expires_at: i64) -> Result<bool> {
        let done = sqlx::query("INSERT INTO handles (kind, key, body, expires_at) VALUES (?, ?, '', ?) ON CONFLICT (kind, key) DO NOTHING")
            .bind(kind)
            .bind(key)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get_handle(&self, kind: &str, key: &str) -> Result<Option<Handle>> {
        let row = sqlx::query("SELECT body, expires_at, consumed_at, revoked, family FROM handles WHERE kind = ? AND key = ?")
            .bind(kind)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| to_handle(&r)).transpose()
    }

    /// Mark a single-use handle consumed, atomically: exactly one caller gets `First`.
    pub async fn consume_handle(&self, kind: &str, key: &str, now: i64) -> Result<Consumed> {
        let row = sqlx::query(
            "UPDATE handles SET consumed_at = ? WHERE kind = ? AND key = ? AND consumed_at IS NULL \
             RETURNING body, expires_at, consumed_at, revoked, family",
        )
        .bind(now)
        .bind(kind)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = row {
            return Ok(Consumed::First(to_handle(&r)?));
        }
        Ok(match self.get_handle(kind, key).await? {
            Some(h) => Consumed::Again(h),
            None => Consumed::Missing,
        })
    }

    pub async fn update_handle_body(&self, kind: &str, key: &str, body: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE handles SET body = ? WHERE kind = ? AND key = ?")
            .bind(body)
            .bind(kind)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_handle(&self, kind: &str, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM handles WHERE kind = ? AND key = ?")
            .bind(kind)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revoke every handle of a family (a refresh-token chain, the grants of a code).
    pub async fn revoke_family(&self, family: &str) -> Result<u64> {
        let done = sqlx::query("UPDATE handles SET revoked = 1 WHERE family = ?")
            .bind(family)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn purge_expired(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM handles WHERE expires_at < ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let old = sqlx::query("DELETE FROM denials WHERE at < ?")
            .bind(now - 7 * 86_400)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() + old.rows_affected())
    }

    /// Is the user locked out now?
    pub async fn locked_until(&self, user_id: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT locked_until FROM sign_in_failures WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(0),
        )
    }

    /// Count a wrong password; at `threshold` failures lock until `now + lock_seconds`.
    pub async fn record_sign_in_failure(
        &self,
        user_id: &str,
        now: i64,
        threshold: i64,
        lock_seconds: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO sign_in_failures (user_id, failures, locked_until) VALUES (?, 1, 0) \
             ON CONFLICT (user_id) DO UPDATE SET failures = sign_in_failures.failures + 1 \
             RETURNING failures",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        let failures: i64 = row.try_get(0)?;
        if failures >= threshold {
            sqlx::query(
                "UPDATE sign_in_failures SET failures = 0, locked_until = ? WHERE user_id = ?",
            )
            .bind(now + lock_seconds)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        }
        Ok(failures)
    }

    pub async fn clear_sign_in_failures(&self, user_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn record_denial(&self, trace_id: &str, at: i64, body: &str) -> Result<()> {
        sqlx::query("INSERT INTO denials (trace_id, at, body) VALUES (?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET body = excluded.body")
            .bind(trace_id)
            .bind(at)
            .bind(body)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn denial(&self, trace_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query("SELECT body FROM denials WHERE trace_id = ?")
            .bind(trace_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
    }
}

fn to_handle(r: &sqlx::sqlite::SqliteRow) -> Result<Handle> {
    Ok(Handle {
        body: r.try_get(0)?,
        expires_at: r.try_get(1)?,
        consumed_at: r.try_get(2)?,
        revoked: r.try_get::<i64, _>(3)? != 0,
        family: r.try_get(4)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn consume_is_single_use_and_families_revoke() {
        let s = Store::open_memory().await.unwrap();
        s.put_handle("code", "k", "{}", 100, Some("fam"))
            .await
            .unwrap();
        assert!(matches!(
            s.consume_handle("code", "k", 5).await.unwrap(),
            Consumed::First(_)
        ));
        assert!(
            matches!(s.consume_handle("code", "k", 6).await.unwrap(), Consumed::Again(h) if h.consumed_at == Some(5))
        );
        assert!(matches!(
            s.consume_handle("code", "nope", 6).await.unwrap(),
            Consumed::Missing
        ));
        s.put_handle("rt", "r1", "{}", 100, Some("fam"))
            .await
            .unwrap();
        assert_eq!(s.revoke_family("fam").await.unwrap(), 2);
        assert!(s.get_handle("rt", "r1").await.unwrap().unwrap().revoked);
        assert!(s.insert_unique("jti", "a", 10).await.unwrap());
        assert!(!s.insert_unique("jti", "a", 10).await.unwrap());
    }

    #[tokio::test]
    async fn lockout_counts() {
        let s = Store::open_memory().await.unwrap();
        for i in 1..10 {
            assert_eq!(s.record_sign_in_failure("u", 0, 10, 60).await.unwrap(), i);
        }
        assert_eq!(s.locked_until("u").await.unwrap(), 0);
        s.record_sign_in_failure("u", 1000, 10, 60).await.unwrap();
        assert_eq!(s.locked_until("u").await.unwrap(), 1060);
    }
}
