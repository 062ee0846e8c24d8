"""What crosses a process boundary: messages, codec, config, the on-disk layout (paths),
socket options, and the client library."""
