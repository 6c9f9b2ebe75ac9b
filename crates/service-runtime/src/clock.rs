//! Time as an input. One [`Clock`] is made where a service is composed — the system's in
//! production — and handed to whatever decides by the time (retention cutoffs, expiries,
//! partitions ahead, settle delays), which never reads the wall clock itself. Tests and drills
//! freeze it at a known instant, so what they check does not depend on the day they run.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// What time it is.
pub trait Clock: fmt::Debug + Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared by the parts of a service.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always reads the same instant.
#[derive(Clone, Copy, Debug)]
pub struct FrozenClock(pub DateTime<Utc>);

impl Clock for FrozenClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The clock a configuration asks for: frozen at `frozen_at` when given, else the system's.
pub fn clock_from_settings(frozen_at: Option<DateTime<Utc>>) -> SharedClock {
    match frozen_at {
        Some(instant) => Arc::new(FrozenClock(instant)),
        None => Arc::new(SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_reads_its_instant_and_the_system_clock_moves() {
        let instant = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let frozen = clock_from_settings(Some(instant));
        assert_eq!(frozen.now(), instant);
        assert_eq!(frozen.now(), instant);
        let system = clock_from_settings(None);
        let before = Utc::now();
        let read = system.now();
        assert!(read >= before && read <= Utc::now());
    }
}
