"""Predictors: the analytic model of live migration and the learned models that correct it."""
