//! Notification endpoints: where deployment events are sent.
