//! The one place the wall clock is read. Logic gets `now` from here, passed in.
//! With `--test-clock`, tests may move time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

#[derive(Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
    adjustable: bool,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn adjustable() -> Self {
        Self {
            offset_seconds: Arc::default(),
            adjustable: true,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    pub fn is_adjustable(&self) -> bool {
        self.adjustable
    }

    /// Move time forward (or back) by `seconds`; refused unless adjustable.
    pub fn advance(&self, seconds: i64) -> bool {
        if self.adjustable {
            self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
        }
        self.adjustable
    }
}
