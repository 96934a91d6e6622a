"""The advisor's use cases: what the API, the CLI and the collectors ask of it.

Each module is one room: ingestion (inventory and samples in), queries (listings), advice (predict a cost,
recommend a target), plans (cluster plans), review (the lifecycle of recommendations), migrations (execute, watch,
abort; what an ended migration changes). Each is given the ports it needs (ports.py) and is built and wired in
advisor/app.py; none calls back up into the API or the CLI.
"""
