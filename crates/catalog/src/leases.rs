//! Leases: how several daemons sharing one catalog share its actions. The daemon that starts an
//! action holds it, for `lease` at a time, and renews its leases while it runs them; an action
//! whose lease ran out was left by a daemon that died, and another daemon takes it over. Times
//! are the database's (`unixepoch()`), so the daemons' clocks need not agree.
//!
//! A take-over is one write, and writes are serialized (see `sql`): two daemons never take the
//! same action. A daemon that finds one of its leases taken (it stalled longer than the lease)
//! must stop running that action; `finish_action` refuses it the action's end.

use std::time::Duration;

use crate::Catalog;
use crate::error::{Context, Error, Result};
use crate::model::{Action, ActionId};
use crate::sql::params;

/// Who this catalog handle runs actions for.
#[derive(Clone, Debug)]
pub(crate) struct Worker {
    pub(crate) name: String,
    pub(crate) lease_secs: i64,
}

impl Catalog {
    /// Makes the actions started through this handle leased to `worker` for `lease` at a time.
    /// Only for a catalog shared by several daemons: without it, actions carry no lease and are
    /// never taken over. Set once.
    pub fn set_worker(&self, worker: &str, lease: Duration) -> Result<()> {
        let lease_secs = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX).max(1);
        self.worker
            .set(Worker { name: worker.to_string(), lease_secs })
            .map_err(|_| Error::Conflict("the catalog's worker is already set".into()))
    }

    pub(crate) fn worker(&self) -> Option<&Worker> {
        self.worker.get()
    }

    /// The worker this handle runs actions for, if set.
    pub fn worker_name(&self) -> Option<&str> {
        self.worker().map(|w| w.name.as_str())
    }

    /// Extends the leases of every running action this worker holds; returns their ids. A
    /// running action missing from the list was taken over by another daemon.
    pub fn renew_leases(&self) -> Result<Vec<ActionId>> {
        let Some(worker) = self.worker() else { return Ok(Vec::new()) };
        self.write(|tx| {
            let rows = tx
                .query(
                    "UPDATE actions SET lease_until = unixepoch() + ?2 WHERE worker = ?1 AND status = 'in-progress'
                     RETURNING id",
                    params![worker.name, worker.lease_secs],
                )
                .context("renewing leases")?;
            rows.iter().map(|row| row.get(0)).collect()
        })
    }

    /// Takes over at most `limit` running actions whose lease ran out, oldest first: they are
    /// leased to this worker from now on, and it must run them again.
    pub fn take_over_actions(&self, limit: usize) -> Result<Vec<Action>> {
        let Some(worker) = self.worker() else { return Ok(Vec::new()) };
        let ids: Vec<ActionId> = self.write(|tx| {
            let rows = tx
                .query(
                    "UPDATE actions SET worker = ?1, lease_until = unixepoch() + ?2
                     WHERE id IN (SELECT id FROM actions WHERE status = 'in-progress' AND lease_until < unixepoch()
                                  ORDER BY id LIMIT ?3)
                     RETURNING id",
                    params![worker.name, worker.lease_secs, limit.min(i64::MAX as usize) as i64],
                )
                .context("taking over actions")?;
            rows.iter().map(|row| row.get(0)).collect()
        })?;
        let mut actions = ids.into_iter().map(|id| self.action_for_worker(id)).collect::<Result<Vec<_>>>()?;
        actions.sort_by_key(|a| a.id);
        Ok(actions)
    }
}
