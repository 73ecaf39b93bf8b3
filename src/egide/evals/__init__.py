"""Evaluation sets and suites; they call the gateway like any tenant."""
