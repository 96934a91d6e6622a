"""Offline jobs: train and evaluate the learned cost models and the technique policy. Never imported by the server."""
