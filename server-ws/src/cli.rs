//! Command-line flags, parsed by Go `flag` rules as nats-server parses them.
