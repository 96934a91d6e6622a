"""Decisions, all pure: where a VM may go, which technique moves it, which moves make a plan."""
