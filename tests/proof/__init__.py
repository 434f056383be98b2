"""Proofs that the suite survives hostile targets: broken servers, and the harness must still end readably."""
