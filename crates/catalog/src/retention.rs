//! What applying retention reads and marks: which resources have backups, their policies, and
//! the backups themselves. The decisions belong to `drydock-schedule`; the deletions to jobs.

use crate::Catalog;
use crate::error::{Context, Result};
use crate::images::{SELECT, image_row};
use crate::model::{Image, ResourceType, RetentionSubject, TeamId, json_column};
use crate::sql::params;

impl Catalog {
    /// Every resource with at least one available backup, with the policy of the droplet or
    /// volume if it still exists (whether its backups are on or off).
    pub fn retention_subjects(&self) -> Result<Vec<RetentionSubject>> {
        self.read(|tx| {
            // A droplet's id is matched as text, so that "017" is not droplet 17, and in SQLite
            // also by integer, for the index (PostgreSQL refuses to cast a volume's UUID to an
            // integer, and finds droplets by its text index instead).
            let droplet_id = if tx.is_postgres() {
                "CAST(d.id AS TEXT) = i.resource_id"
            } else {
                "d.id = CAST(i.resource_id AS INTEGER) AND CAST(d.id AS TEXT) = i.resource_id"
            };
            let rows = tx
                .query(
                    &format!(
                        "SELECT i.team_id, i.resource_type, i.resource_id,
                            COALESCE(d.backup_policy, v.backup_policy), d.id IS NOT NULL OR v.id IS NOT NULL
                         FROM (SELECT DISTINCT team_id, resource_type, resource_id FROM images
                               WHERE type = 'backup' AND status = 'available') i
                         LEFT JOIN droplets d ON i.resource_type = 'droplet' AND d.team_id = i.team_id AND {droplet_id}
                         LEFT JOIN volumes v ON i.resource_type = 'volume' AND v.team_id = i.team_id
                             AND v.id = i.resource_id
                         ORDER BY i.team_id, i.resource_type, i.resource_id"
                    ),
                    &[],
                )
                .context("listing resources with backups")?;
            let mut subjects = Vec::new();
            for row in &rows {
                let (resource_type, resource_id): (ResourceType, String) = (row.get(1)?, row.get(2)?);
                let policy: Option<String> = row.get(3)?;
                let what = format!("backup policy of {resource_type} {resource_id}");
                subjects.push(RetentionSubject {
                    team_id: row.get(0)?,
                    resource_type,
                    resource_id,
                    policy: policy.map(|p| json_column(&p, &what)).transpose()?,
                    exists: row.get(4)?,
                });
            }
            Ok(subjects)
        })
    }

    /// A resource's available backups, oldest first.
    pub fn backup_images(&self, team: TeamId, resource_type: ResourceType, resource_id: &str) -> Result<Vec<Image>> {
        self.read(|tx| {
            let rows = tx
                .query(
                    &format!(
                        "{SELECT} WHERE i.team_id = ?1 AND i.resource_type = ?2 AND i.resource_id = ?3
                            AND i.type = 'backup' AND i.status = 'available'
                         ORDER BY i.created_at, i.id"
                    ),
                    params![team, resource_type, resource_id],
                )
                .context("listing backups")?;
            rows.iter().map(image_row).collect()
        })
    }

    /// Gives a resource's available backups that have no expiry date `expires_at` (unix
    /// seconds), and returns how many: the backups of a deleted droplet or volume.
    pub fn expire_backups(
        &self,
        team: TeamId,
        resource_type: ResourceType,
        resource_id: &str,
        expires_at: i64,
    ) -> Result<usize> {
        self.write(|tx| {
            tx.execute(
                "UPDATE images SET expires_at = ?4
                 WHERE team_id = ?1 AND resource_type = ?2 AND resource_id = ?3 AND type = 'backup'
                   AND status = 'available' AND expires_at IS NULL",
                params![team, resource_type, resource_id, expires_at],
            )
            .context("setting the expiry of backups")
            .map(|n| n as usize)
        })
    }
}
