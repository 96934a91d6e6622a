"""Offline jobs: train and evaluate the learned cost models and the technique policy. Never imported by the server."""

import os

# LightGBM's OpenMP threads spin while they wait for work, taking the cores from everything else on the machine (a
# retrain runs beside the advisor that asked for it): with threads that sleep instead, a short retrain took a
# quarter of the time on this project's 2-core machine and wrote the same models. Set before LightGBM is loaded
# (every job is a module of this package); an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
