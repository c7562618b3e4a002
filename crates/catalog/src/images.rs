//! Images: snapshots and backups of droplets and volumes, and where their copies are.

use crate::droplets::limit;
use crate::error::{Context, Error, Result};
use crate::model::{Image, ImageCopy, ImageId, ImageType, ResourceType, TeamId, string_list, to_json};
use crate::sql::{self, Row, ToValue, Tx, params};
use crate::{Catalog, Page, now, utc_seconds};

/// The columns `image_row` reads, in its order. It reads them by position: looking each one up
/// by name cost a third of listing a page of images.
pub(crate) const SELECT: &str = "SELECT i.id, i.uuid, i.team_id, i.name, i.type, i.resource_type, i.resource_id,
    i.status, i.description, i.distribution, i.size_bytes, i.stored_bytes, i.tags, i.created_at,
    (SELECT group_concat(c.region || '=' || c.snapshot_id) FROM image_copies c WHERE c.image_id = i.id) AS copies,
    i.expires_at
    FROM images i";

/// What an action creating an image stores before it starts: the image stays pending, and
/// unlisted, until the action finishes it.
#[derive(Clone, Debug)]
pub struct NewImage {
    pub name: String,
    pub kind: ImageType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub size_bytes: u64,
    pub tags: Vec<String>,
    /// When it was taken, RFC 3339 (stored in UTC, to the second); `None` means now. The
    /// scheduler passes its own clock's time, which may run ahead of the wall clock.
    pub created_at: Option<String>,
}

/// Which available images a listing returns.
#[derive(Clone, Debug, Default)]
pub struct ImageFilter {
    pub kind: Option<ImageType>,
    pub resource_type: Option<ResourceType>,
    pub resource_id: Option<String>,
    /// Images carrying this tag.
    pub tag: Option<String>,
}

impl Catalog {
    pub fn image(&self, team: TeamId, id: ImageId) -> Result<Image> {
        self.read(|tx| image_in(tx, team, id))
    }

    /// A volume snapshot by its UUID (or any image by its UUID).
    pub fn image_by_uuid(&self, team: TeamId, uuid: &str) -> Result<Image> {
        self.read(|tx| {
            let row = tx
                .query_opt(
                    &format!("{SELECT} WHERE i.uuid = ?1 AND i.team_id = ?2 AND i.status = 'available'"),
                    params![uuid, team],
                )
                .context("reading an image")?
                .ok_or_else(|| Error::not_found(format!("snapshot {uuid}")))?;
            image_row(&row)
        })
    }

    pub fn images(&self, team: TeamId, filter: &ImageFilter, page: Page) -> Result<(Vec<Image>, u64)> {
        let mut conditions = vec!["i.team_id = ?".to_string(), "i.status = 'available'".to_string()];
        let mut values = vec![team.to_value()];
        if let Some(kind) = filter.kind {
            conditions.push("i.type = ?".into());
            values.push(kind.to_value());
        }
        if let Some(resource_type) = filter.resource_type {
            conditions.push("i.resource_type = ?".into());
            values.push(resource_type.to_value());
        }
        if let Some(resource_id) = &filter.resource_id {
            conditions.push("i.resource_id = ?".into());
            values.push(resource_id.to_value());
        }
        if let Some(tag) = &filter.tag {
            conditions.push("EXISTS (SELECT 1 FROM json_each(i.tags) WHERE json_each.value = ?)".into());
            values.push(tag.to_value());
        }
        let condition = conditions.join(" AND ");
        // The page's ids are chosen first, in a subquery that needs only an index on the
        // condition's columns: the rows skipped by the offset cost index steps, and only the
        // page's rows (and their copies) are read. The offset is a parameter, so the statement
        // stays in the connection's cache whatever the page; the limit is not, because SQLite
        // plans with a bound limit's value and prepares the statement again whenever it is bound.
        let count_sql = format!("SELECT count(*) FROM images i WHERE {condition}");
        let page_sql = format!(
            "{SELECT} WHERE i.id IN (SELECT i.id FROM images i WHERE {condition} ORDER BY i.id LIMIT {} OFFSET ?)
             ORDER BY i.id",
            limit(page)
        );
        let offset = (page.offset.min(i64::MAX as u64) as i64).to_value();
        let page_values = [values.as_slice(), &[offset]].concat();
        self.read(|tx| {
            let total: u64 = tx.query_one(&count_sql, &sql::dynamic(&values)).context("counting images")?.get(0)?;
            let rows = tx.query(&page_sql, &sql::dynamic(&page_values)).context("listing images")?;
            Ok((rows.iter().map(image_row).collect::<Result<Vec<_>>>()?, total))
        })
    }

    /// Every image of every team, pending ones included: for checks against the repositories.
    pub fn all_images(&self) -> Result<Vec<Image>> {
        self.read(|tx| {
            let rows = tx.query(&format!("{SELECT} ORDER BY i.id"), &[]).context("listing images")?;
            rows.iter().map(image_row).collect()
        })
    }

    /// Marks a pending image available, with its first copy.
    pub fn finish_image(&self, id: ImageId, copy: &ImageCopy, size_bytes: u64, stored_bytes: u64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE images SET status = 'available', size_bytes = ?2, stored_bytes = ?3 WHERE id = ?1",
                params![id, size_bytes as i64, stored_bytes as i64],
            )
            .context("finishing an image")?;
            insert_copy(tx, id, copy)
        })
    }

    pub fn add_image_copy(&self, id: ImageId, copy: &ImageCopy) -> Result<()> {
        self.write(|tx| insert_copy(tx, id, copy))
    }

    /// Forgets a pending image whose action failed. An image whose action another daemon took
    /// over stays: that daemon is making it (see `leases`).
    pub fn discard_pending_image(&self, id: ImageId) -> Result<()> {
        let worker = self.worker().map(|w| &w.name);
        self.write(|tx| {
            tx.execute(
                "DELETE FROM images WHERE id = ?1 AND status = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.status = 'in-progress'
                                     AND a.worker IS NOT NULL AND a.worker <> ?2
                                     AND CAST(json_extract(a.params, '$.image_id') AS BIGINT) = ?1)",
                params![id, worker],
            )
            .context("discarding an image")?;
            Ok(())
        })
    }

    /// Removes an image from the catalog and returns it, so the caller can delete its copies
    /// from the repositories. Refused while an action runs on it.
    pub fn delete_image(&self, team: TeamId, id: ImageId) -> Result<Image> {
        self.write(|tx| {
            let image = image_in(tx, team, id)?;
            // Locked by an action on the image (a transfer) or one reading it (a restore, a
            // new droplet or volume made from it).
            let locked: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM actions WHERE status = 'in-progress'
                        AND ((resource_type = 'image' AND resource_id = ?1)
                             OR json_extract(params, '$.image_id') = ?2))",
                    params![id.to_string(), id],
                )
                .context("checking an image's actions")?
                .get(0)?;
            if locked {
                return Err(Error::Conflict(format!("image {id} is locked by a running action")));
            }
            tx.execute("DELETE FROM images WHERE id = ?1", params![id]).context("deleting an image")?;
            Ok(image)
        })
    }

    pub fn update_image(
        &self,
        team: TeamId,
        id: ImageId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Image> {
        self.write(|tx| {
            image_in(tx, team, id)?;
            if let Some(name) = name {
                tx.execute("UPDATE images SET name = ?1 WHERE id = ?2", params![name, id])
                    .context("renaming an image")?;
            }
            if let Some(description) = description {
                tx.execute("UPDATE images SET description = ?1 WHERE id = ?2", params![description, id])
                    .context("describing an image")?;
            }
            image_in(tx, team, id)
        })
    }

    /// Replaces an image's tags.
    pub fn set_image_tags(&self, team: TeamId, id: ImageId, tags: &[String]) -> Result<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE images SET tags = ?1 WHERE id = ?2 AND team_id = ?3",
                    params![to_json(&tags), id, team],
                )
                .context("tagging an image")?;
            if changed == 0 { Err(Error::not_found(format!("image {id}"))) } else { Ok(()) }
        })
    }

    /// Turns a backup into a snapshot: kept until deleted.
    pub fn convert_image(&self, team: TeamId, id: ImageId) -> Result<()> {
        self.write(|tx| {
            image_in(tx, team, id)?;
            tx.execute("UPDATE images SET type = 'snapshot' WHERE id = ?1", params![id])
                .context("converting an image")?;
            Ok(())
        })
    }
}

pub(crate) fn insert_image(tx: &Tx, team: TeamId, new: &NewImage) -> Result<ImageId> {
    // Any RFC 3339 time is stored in the one form, so backups sort by the time they were taken.
    let created_at = match &new.created_at {
        None => now(),
        Some(text) => text
            .parse()
            .map(utc_seconds)
            .map_err(|_| Error::Conflict(format!("image {} has the time {text:?}, which is not RFC 3339", new.name)))?,
    };
    tx.query_one(
        "INSERT INTO images (uuid, team_id, name, type, resource_type, resource_id, status, size_bytes, tags, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9) RETURNING id",
        params![
            uuid::Uuid::new_v4().to_string(),
            team,
            new.name,
            new.kind,
            new.resource_type,
            new.resource_id,
            new.size_bytes as i64,
            to_json(&new.tags),
            created_at
        ],
    )
    .context("storing an image")?
    .get(0)
}

/// Any image of the team, pending or not.
pub(crate) fn image_in(tx: &Tx, team: TeamId, id: ImageId) -> Result<Image> {
    let row = tx
        .query_opt(&format!("{SELECT} WHERE i.id = ?1 AND i.team_id = ?2"), params![id, team])
        .context("reading an image")?
        .ok_or_else(|| Error::not_found(format!("image {id}")))?;
    image_row(&row)
}

fn insert_copy(tx: &Tx, id: ImageId, copy: &ImageCopy) -> Result<()> {
    tx.execute(
        "INSERT INTO image_copies (image_id, region, snapshot_id) VALUES (?1, ?2, ?3)
         ON CONFLICT(image_id, region) DO UPDATE SET snapshot_id = excluded.snapshot_id",
        params![id, copy.region, copy.snapshot_id],
    )
    .context("recording an image copy")?;
    Ok(())
}

pub(crate) fn image_row(row: &Row) -> Result<Image> {
    let id: ImageId = row.get(0)?;
    let tags: String = row.get(12)?;
    let copies: Option<String> = row.get(14)?;
    let mut copies: Vec<ImageCopy> = copies
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(region, snapshot_id)| ImageCopy { region: region.to_string(), snapshot_id: snapshot_id.to_string() })
        .collect();
    copies.sort_by(|a, b| a.region.cmp(&b.region));
    Ok(Image {
        id,
        uuid: row.get(1)?,
        team_id: row.get(2)?,
        name: row.get(3)?,
        kind: row.get(4)?,
        resource_type: row.get(5)?,
        resource_id: row.get(6)?,
        status: row.get(7)?,
        description: row.get(8)?,
        distribution: row.get(9)?,
        size_bytes: row.get(10)?,
        stored_bytes: row.get(11)?,
        tags: string_list(&tags, &format!("tags of image {id}"))?,
        created_at: row.get(13)?,
        expires_at: row.get(15)?,
        copies,
    })
}

/// An image found in a repository but not in the catalog, as its snapshot's tags describe it.
#[derive(Clone, Debug)]
pub struct RecoveredImage {
    pub team_uuid: String,
    pub image_id: ImageId,
    pub image_uuid: String,
    pub name: String,
    pub kind: ImageType,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub size_bytes: u64,
    pub stored_bytes: u64,
    pub created_at: String,
}

impl Catalog {
    /// Puts a repository's image back into the catalog under its old id (or adds a copy if the
    /// image is there). Its team is created, named after its UUID, if it is gone.
    pub fn recover_image(&self, image: &RecoveredImage, copy: &ImageCopy) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO teams (uuid, name, created_at) VALUES (?1, ?1, ?2) ON CONFLICT DO NOTHING",
                params![image.team_uuid, now()],
            )
            .context("recreating a team")?;
            let team: TeamId = tx
                .query_one("SELECT id FROM teams WHERE uuid = ?1", params![image.team_uuid])
                .context("reading a team")?
                .get(0)?;
            tx.execute(
                "INSERT INTO images (id, uuid, team_id, name, type, resource_type, resource_id, status, size_bytes,
                    stored_bytes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'available', ?8, ?9, ?10) ON CONFLICT(id) DO NOTHING",
                params![
                    image.image_id,
                    image.image_uuid,
                    team,
                    image.name,
                    image.kind,
                    image.resource_type,
                    image.resource_id,
                    image.size_bytes as i64,
                    image.stored_bytes as i64,
                    image.created_at
                ],
            )
            .context("recovering an image")?;
            if tx.is_postgres() {
                // An id given explicitly does not advance the identity sequence: move it past
                // the recovered id, as SQLite's AUTOINCREMENT does on its own.
                tx.query_one(
                    "SELECT setval(pg_get_serial_sequence('images', 'id'), (SELECT MAX(id) FROM images))",
                    &[],
                )
                .context("advancing the image ids")?;
            }
            insert_copy(tx, image.image_id, copy)
        })
    }

    /// Drops one copy of an image; an image left with no copy is removed.
    pub fn remove_image_copy(&self, id: ImageId, region: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM image_copies WHERE image_id = ?1 AND region = ?2", params![id, region])
                .context("removing an image copy")?;
            tx.execute(
                "DELETE FROM images WHERE id = ?1 AND status = 'available'
                    AND NOT EXISTS (SELECT 1 FROM image_copies WHERE image_id = ?1)",
                params![id],
            )
            .context("removing an image without copies")?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageStatus, NewAction};

    /// An image taken the way a snapshot action takes it; left pending unless `finish`.
    fn take(catalog: &Catalog, team: TeamId, kind: ImageType, resource: (ResourceType, &str), finish: bool) -> ImageId {
        let (resource_type, resource_id) = (resource.0, resource.1.to_string());
        let action = NewAction {
            kind: "snapshot".into(),
            resource_type,
            resource_id: resource_id.clone(),
            region: "local-1".into(),
            params: serde_json::json!({}),
        };
        let tags = vec!["t".to_string()];
        let name = format!("{resource_id}-image");
        let new = NewImage { name, kind, resource_type, resource_id, size_bytes: 1, tags, created_at: None };
        let (action, image) = catalog.start_action(team, &action, Some(&new)).unwrap();
        let image = image.unwrap();
        if finish {
            let copy = ImageCopy { region: "local-1".into(), snapshot_id: format!("{:064x}", image.id) };
            catalog.finish_image(image.id, &copy, 10, 3).unwrap();
        }
        catalog.finish_action(action.id, Ok(())).unwrap();
        image.id
    }

    fn volumes_filter(filter: &ImageFilter) -> ImageFilter {
        ImageFilter { resource_type: Some(ResourceType::Volume), ..filter.clone() }
    }

    fn ids(images: &[Image]) -> Vec<ImageId> {
        images.iter().map(|i| i.id).collect()
    }

    #[test]
    fn listings_page_through_the_available_images_of_one_team() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite")).unwrap();
        let (a, b) = (catalog.ensure_team("a").unwrap().id, catalog.ensure_team("b").unwrap().id);
        let droplet = (ResourceType::Droplet, "1");
        let volume = (ResourceType::Volume, "9d0c");
        let mut snapshots = Vec::new();
        let mut backups = Vec::new();
        for n in 0..7 {
            snapshots.push(take(&catalog, a, ImageType::Snapshot, droplet, true));
            if n % 2 == 0 {
                backups.push(take(&catalog, a, ImageType::Backup, droplet, true));
            }
        }
        let volume_snapshots = [take(&catalog, a, ImageType::Snapshot, volume, true)];
        snapshots.extend(volume_snapshots);
        take(&catalog, a, ImageType::Snapshot, droplet, false);
        let other_team = [take(&catalog, b, ImageType::Snapshot, droplet, true)];

        let filter = ImageFilter { kind: Some(ImageType::Snapshot), ..ImageFilter::default() };
        let mut paged = Vec::new();
        for n in 0..4 {
            let (images, total) = catalog.images(a, &filter, Page { offset: n * 3, limit: 3 }).unwrap();
            assert_eq!(total, 8, "page {n}");
            assert!(images.iter().all(|i| i.copies.len() == 1 && i.status == ImageStatus::Available));
            paged.extend(ids(&images));
        }
        assert_eq!(paged, snapshots, "every snapshot once, in id order, pending ones left out");

        let (volume_images, _) = catalog.images(a, &volumes_filter(&filter), Page::ALL).unwrap();
        let image = &volume_images[0];
        assert_eq!(
            (image.team_id, image.name.as_str(), image.kind, image.resource_type, image.resource_id.as_str()),
            (a, "9d0c-image", ImageType::Snapshot, ResourceType::Volume, "9d0c")
        );
        assert_eq!(
            (image.size_bytes, image.stored_bytes, image.tags.as_slice()),
            (10, 3, ["t".to_string()].as_slice())
        );
        assert_eq!((image.description.as_str(), image.distribution.as_str()), ("", "Unknown"));
        assert_eq!(image.copies, [ImageCopy { region: "local-1".into(), snapshot_id: format!("{:064x}", image.id) }]);
        assert_eq!(image.uuid.len(), 36);
        assert!(image.created_at.ends_with('Z'));

        let by = |filter: ImageFilter, team: TeamId| ids(&catalog.images(team, &filter, Page::ALL).unwrap().0);
        assert_eq!(by(volumes_filter(&filter), a), volume_snapshots);
        let droplet_backups =
            ImageFilter { kind: Some(ImageType::Backup), resource_id: Some("1".into()), ..ImageFilter::default() };
        assert_eq!(by(droplet_backups, a), backups);
        assert_eq!(by(filter.clone(), b), other_team);
        assert_eq!(by(ImageFilter::default(), a).len(), snapshots.len() + backups.len());
    }
}
