"""Conformance of libraries' policy-gradient updates with exact mathematics."""
