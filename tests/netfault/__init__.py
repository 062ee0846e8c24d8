"""Network faults for tests: network namespaces joined by a veth pair (`netns`), and a
small userspace TCP fault proxy for delay, jitter, stalls and cuts (`proxy`)."""
