//! nats-server configuration file format.
