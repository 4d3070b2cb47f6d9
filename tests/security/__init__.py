"""Tenancy, hostile input, and the runner at scale (issue 11), against the real stack."""
