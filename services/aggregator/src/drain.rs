//! Draining on SIGTERM: the moment it starts, no new file or call is taken; files in flight
//! get a grace period to finish, after which they are rolled back.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct Drain {
    token: CancellationToken,
    grace: Duration,
}

impl Drain {
    pub fn new(grace: Duration) -> Drain {
        Drain {
            token: CancellationToken::new(),
            grace,
        }
    }

    pub fn start(&self) {
        self.token.cancel();
    }

    pub fn is_started(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when draining starts.
    pub async fn started(&self) {
        self.token.cancelled().await;
    }

    /// Resolves when the grace period after the start of draining has passed.
    pub async fn deadline(&self) {
        self.token.cancelled().await;
        tokio::time::sleep(self.grace).await;
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }
}
