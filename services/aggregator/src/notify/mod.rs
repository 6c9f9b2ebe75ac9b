//! Notifications: what leaves orgtrail when an alarm changes state (or a destination is
//! tested). `delivery` sends one notification to one destination, pure of the database; the
//! outbox that decides what to send and when lives beside it.

pub mod delivery;
