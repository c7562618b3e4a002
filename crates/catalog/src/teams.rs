//! Teams and their API tokens.

use ring::rand::SecureRandom;

use crate::error::{Context, Error, Result};
use crate::model::{Team, TeamId, Token};
use crate::sql::{Row, params};
use crate::{Catalog, now};

/// DigitalOcean's prefix for personal access tokens; clients and secret scanners know it.
const TOKEN_PREFIX: &str = "dop_v1_";
const TOKEN_SECRET_BYTES: usize = 32;

pub struct NewToken {
    pub token: Token,
    /// The secret, shown once: only its hash is stored.
    pub secret: String,
}

impl Catalog {
    /// The team named `name`, created if it does not exist.
    pub fn ensure_team(&self, name: &str) -> Result<Team> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO teams (uuid, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
                params![uuid::Uuid::new_v4().to_string(), name, now()],
            )
            .context("creating a team")?;
            team_row(&tx.query_one("SELECT * FROM teams WHERE name = ?1", params![name]).context("reading a team")?)
        })
    }

    pub fn team(&self, id: TeamId) -> Result<Team> {
        self.read(|tx| {
            let row = tx
                .query_opt("SELECT * FROM teams WHERE id = ?1", params![id])
                .context("reading a team")?
                .ok_or_else(|| Error::not_found(format!("team {id}")))?;
            team_row(&row)
        })
    }

    pub fn create_token(&self, team: TeamId, name: &str, scopes: &[String]) -> Result<NewToken> {
        let mut secret_bytes = [0u8; TOKEN_SECRET_BYTES];
        ring::rand::SystemRandom::new().fill(&mut secret_bytes).expect("the system has randomness");
        let secret = format!("{TOKEN_PREFIX}{}", hex(&secret_bytes));
        let token = self.write(|tx| {
            let row = tx
                .query_one(
                    "INSERT INTO tokens (team_id, name, secret_sha256, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     RETURNING *",
                    params![team, name, secret_hash(&secret), scopes.join(" "), now()],
                )
                .context("storing a token")?;
            token_row(&row)
        })?;
        Ok(NewToken { token, secret })
    }

    /// The team and token a secret belongs to, if it is valid (known, not revoked).
    pub fn authenticate(&self, secret: &str) -> Result<Option<(Team, Token)>> {
        let hash = secret_hash(secret);
        self.read(|tx| {
            let row = tx
                .query_opt("SELECT * FROM tokens WHERE secret_sha256 = ?1 AND revoked_at IS NULL", params![hash])
                .context("looking up a token")?;
            let Some(token) = row.as_ref().map(token_row).transpose()? else { return Ok(None) };
            let team =
                tx.query_one("SELECT * FROM teams WHERE id = ?1", params![token.team_id]).context("reading a team")?;
            Ok(Some((team_row(&team)?, token)))
        })
    }

    /// Valid tokens of all teams: none means the daemon has never been used.
    pub fn token_count(&self) -> Result<u64> {
        self.read(|tx| {
            tx.query_one("SELECT count(*) FROM tokens WHERE revoked_at IS NULL", &[]).context("counting tokens")?.get(0)
        })
    }

    pub fn tokens(&self, team: TeamId) -> Result<Vec<Token>> {
        self.read(|tx| {
            let rows = tx
                .query("SELECT * FROM tokens WHERE team_id = ?1 AND revoked_at IS NULL ORDER BY id", params![team])
                .context("listing tokens")?;
            rows.iter().map(token_row).collect()
        })
    }

    pub fn revoke_token(&self, team: TeamId, id: i64) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE tokens SET revoked_at = ?3 WHERE id = ?1 AND team_id = ?2 AND revoked_at IS NULL",
                    params![id, team, now()],
                )
                .context("revoking a token")?;
            if changed == 0 { Err(Error::not_found(format!("token {id}"))) } else { Ok(()) }
        })
    }
}

fn secret_hash(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn team_row(row: &Row) -> Result<Team> {
    Ok(Team {
        id: row.get("id")?,
        uuid: row.get("uuid")?,
        name: row.get("name")?,
        email: row.get("email")?,
        created_at: row.get("created_at")?,
    })
}

fn token_row(row: &Row) -> Result<Token> {
    let scopes: String = row.get("scopes")?;
    Ok(Token {
        id: row.get("id")?,
        team_id: row.get("team_id")?,
        name: row.get("name")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        revoked_at: row.get("revoked_at")?,
    })
}
