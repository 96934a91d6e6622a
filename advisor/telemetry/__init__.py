"""Metrics coming in: the store of recent samples, and (later) the Prometheus and libvirt sources."""
