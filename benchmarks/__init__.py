"""Ratio benchmarks: the reference server against a bare Flask app under the same gunicorn configuration.

``python -m benchmarks`` serves both apps, drives them with the same load (wrk when installed, else the asyncio
keep-alive client in ``loadgen``), alternates A/B runs and reports medians, ratios and PASS/MISS against targets.
Nothing here is a timed assertion in the project's tests: the figures are a report, not a gate.
"""
