//! Actions: every long operation, with its status, progress and outcome. A unique index allows
//! one running action per resource: that is the lock DigitalOcean clients see as `locked`.

use serde_json::Value;

use crate::droplets::limit;
use crate::error::{Context, Error, Result};
use crate::images::{NewImage, image_in, insert_image};
use crate::model::{Action, ActionId, ActionStatus, Image, ResourceType, TeamId, json_column, to_json};
use crate::sql::{self, Row, ToValue, Tx, params};
use crate::{Catalog, Page, now};

#[derive(Clone, Debug)]
pub struct NewAction {
    pub kind: String,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub region: String,
    pub params: Value,
}

/// Why an action could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{resource_type} {resource_id} is locked by action {action_id} ({kind}) in progress")]
    Locked { resource_type: ResourceType, resource_id: String, action_id: ActionId, kind: String },
    #[error(transparent)]
    Catalog(#[from] Error),
}

impl Catalog {
    /// Records a new in-progress action, with the pending image it will create if any (its id
    /// is added to the parameters as `image_id`). Fails with `Locked` if the resource already
    /// has a running action.
    pub fn start_action(
        &self,
        team: TeamId,
        new: &NewAction,
        image: Option<&NewImage>,
    ) -> Result<(Action, Option<Image>), StartError> {
        self.write(|tx| {
            let running = tx
                .query_opt(
                    "SELECT id, type FROM actions WHERE resource_type = ?1 AND resource_id = ?2 AND status = 'in-progress'",
                    params![new.resource_type, new.resource_id],
                )
                .context("checking running actions")?;
            if let Some(row) = running {
                return Ok(Err(StartError::Locked {
                    resource_type: new.resource_type,
                    resource_id: new.resource_id.clone(),
                    action_id: row.get(0)?,
                    kind: row.get(1)?,
                }));
            }
            let mut params = new.params.clone();
            let image = match image {
                Some(image) => {
                    let id = insert_image(tx, team, image)?;
                    if let Value::Object(map) = &mut params {
                        map.insert("image_id".into(), id.into());
                    }
                    Some(image_in(tx, team, id)?)
                }
                None => None,
            };
            let (worker, lease_secs) = self.worker().map(|w| (&w.name, w.lease_secs)).unzip();
            let id: ActionId = tx
                .query_one(
                    "INSERT INTO actions (team_id, type, status, resource_type, resource_id, region, params, started_at,
                        worker, lease_until)
                     VALUES (?1, ?2, 'in-progress', ?3, ?4, ?5, ?6, ?7, ?8, unixepoch() + CAST(?9 AS BIGINT))
                     RETURNING id",
                    params![
                        team,
                        new.kind,
                        new.resource_type,
                        new.resource_id,
                        new.region,
                        to_json(&params),
                        now(),
                        worker,
                        lease_secs
                    ],
                )
                .context("recording an action")?
                .get(0)?;
            let action =
                action_where(tx, "id = ?1", params![id])?.ok_or_else(|| Error::Corrupt("action just recorded".into()))?;
            Ok(Ok((action, image)))
        })?
    }

    pub fn action(&self, team: TeamId, id: ActionId) -> Result<Action> {
        self.read(|tx| action_where(tx, "id = ?1 AND team_id = ?2", params![id, team]))?
            .ok_or_else(|| Error::not_found(format!("action {id}")))
    }

    /// An action by id whatever its team: for the worker that runs it.
    pub fn action_for_worker(&self, id: ActionId) -> Result<Action> {
        self.read(|tx| action_where(tx, "id = ?1", params![id]))?
            .ok_or_else(|| Error::not_found(format!("action {id}")))
    }

    /// Actions of the team, newest first, optionally those of one resource.
    pub fn actions(
        &self,
        team: TeamId,
        resource: Option<(ResourceType, &str)>,
        page: Page,
    ) -> Result<(Vec<Action>, u64)> {
        let mut condition = "team_id = ?".to_string();
        let mut values = vec![team.to_value()];
        if let Some((resource_type, resource_id)) = resource {
            condition.push_str(" AND resource_type = ? AND resource_id = ?");
            values.push(resource_type.to_value());
            values.push(resource_id.to_value());
        }
        self.read(|tx| {
            let total: u64 = tx
                .query_one(&format!("SELECT count(*) FROM actions WHERE {condition}"), &sql::dynamic(&values))
                .context("counting actions")?
                .get(0)?;
            let sql = format!(
                "SELECT * FROM actions WHERE {condition} ORDER BY id DESC LIMIT {} OFFSET {}",
                limit(page),
                page.offset
            );
            let rows = tx.query(&sql, &sql::dynamic(&values)).context("listing actions")?;
            Ok((rows.iter().map(action_row).collect::<Result<Vec<_>>>()?, total))
        })
    }

    /// Every running action of every team: what a restarted daemon must resume or end.
    pub fn running_actions(&self) -> Result<Vec<Action>> {
        self.read(|tx| {
            let rows = tx
                .query("SELECT * FROM actions WHERE status = 'in-progress' ORDER BY id", &[])
                .context("listing running actions")?;
            rows.iter().map(action_row).collect()
        })
    }

    pub fn set_action_progress(&self, id: ActionId, bytes_done: u64, bytes_total: u64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE actions SET bytes_done = ?2, bytes_total = ?3 WHERE id = ?1 AND status = 'in-progress'",
                params![id, bytes_done as i64, bytes_total as i64],
            )
            .context("recording progress")?;
            Ok(())
        })
    }

    /// Ends a running action: completed, or errored with the reason. Ending an action that
    /// already ended is refused, so a resumed worker and a recovery never both finish it; so is
    /// ending one that another daemon took over.
    pub fn finish_action(&self, id: ActionId, outcome: std::result::Result<(), String>) -> Result<Action> {
        let worker = self.worker().map(|w| &w.name);
        self.write(|tx| {
            let (status, error) = match outcome {
                Ok(()) => (ActionStatus::Completed, None),
                Err(reason) => (ActionStatus::Errored, Some(reason)),
            };
            let changed = tx
                .execute(
                    "UPDATE actions SET status = ?2, error = ?3, completed_at = ?4,
                        bytes_done = CASE WHEN ?2 = 'completed' THEN bytes_total ELSE bytes_done END
                     WHERE id = ?1 AND status = 'in-progress'
                       AND (worker IS NULL OR CAST(?5 AS TEXT) IS NULL OR worker = ?5)",
                    params![id, status, error, now(), worker],
                )
                .context("finishing an action")?;
            if changed == 0 {
                let action = action_where(tx, "id = ?1", params![id])?;
                return Err(match action.and_then(|a| a.worker.filter(|_| a.status == ActionStatus::InProgress)) {
                    Some(other) => Error::Conflict(format!("action {id} was taken over by {other}")),
                    None => Error::Conflict(format!("action {id} is not in progress")),
                });
            }
            action_where(tx, "id = ?1", params![id])?.ok_or_else(|| Error::not_found(format!("action {id}")))
        })
    }
}

fn action_where(tx: &Tx, condition: &str, values: &[&dyn ToValue]) -> Result<Option<Action>> {
    tx.query_opt(&format!("SELECT * FROM actions WHERE {condition}"), values)
        .context("reading an action")?
        .as_ref()
        .map(action_row)
        .transpose()
}

fn action_row(row: &Row) -> Result<Action> {
    let id: ActionId = row.get("id")?;
    let params: String = row.get("params")?;
    Ok(Action {
        id,
        team_id: row.get("team_id")?,
        kind: row.get("type")?,
        status: row.get("status")?,
        resource_type: row.get("resource_type")?,
        resource_id: row.get("resource_id")?,
        region: row.get("region")?,
        params: json_column(&params, &format!("parameters of action {id}"))?,
        bytes_done: row.get("bytes_done")?,
        bytes_total: row.get("bytes_total")?,
        error: row.get("error")?,
        started_at: row.get("started_at")?,
        completed_at: row.get("completed_at")?,
        worker: row.get("worker")?,
    })
}
