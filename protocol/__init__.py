"""What crosses a process boundary: messages, codec, config, and the client library."""
