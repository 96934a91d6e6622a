"""Adapters to the systems the advisor drives: SQLite (storage), libvirt (hypervisors), Prometheus (metrics),
and a fake hypervisor for tests. Each implements a small protocol of the layer that uses it and is built in
advisor/app.py; none imports a use case."""
