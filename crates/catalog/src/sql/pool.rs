//! A few reader connections, opened when first needed and reused: at most `max` reads run at
//! once; more wait for a connection to be handed back.

use std::sync::{Condvar, Mutex};

use crate::error::Result;

pub(super) struct Pool<C> {
    max: usize,
    state: Mutex<State<C>>,
    freed: Condvar,
}

struct State<C> {
    idle: Vec<C>,
    opened: usize,
}

impl<C> Pool<C> {
    pub(super) fn new(max: usize) -> Pool<C> {
        Pool { max, state: Mutex::new(State { idle: Vec::new(), opened: 0 }), freed: Condvar::new() }
    }

    /// Runs `f` on an idle connection that is still `usable`, or on one made by `open`; the
    /// connection goes back to the pool afterwards unless `f` left it unusable.
    pub(super) fn with<T>(
        &self,
        open: impl FnOnce() -> Result<C>,
        usable: impl Fn(&C) -> bool,
        f: impl FnOnce(&mut C) -> Result<T>,
    ) -> Result<T> {
        let pooled = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(conn) = state.idle.pop() {
                    break Some(conn);
                }
                if state.opened < self.max {
                    state.opened += 1;
                    break None;
                }
                state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let mut conn = match pooled.filter(&usable).map_or_else(open, Ok) {
            Ok(conn) => conn,
            Err(e) => {
                self.give_back(None);
                return Err(e);
            }
        };
        let result = f(&mut conn);
        self.give_back(Some(conn).filter(usable));
        result
    }

    /// Returns a connection to the pool, or frees its place if there is none to return.
    fn give_back(&self, conn: Option<C>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match conn {
            Some(conn) => state.idle.push(conn),
            None => state.opened -= 1,
        }
        drop(state);
        self.freed.notify_one();
    }
}
