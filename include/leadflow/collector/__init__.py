"""Pixel collector: receives landing-page form submissions from the pixel script.

Run it with ``python -m leadflow.collector --host 127.0.0.1 --port 18200``.
The wire format, the checks and the environment settings are described in
``leadflow.collector.app``.
"""

from leadflow.collector.app import CollectorSettings, create_app

__all__ = ["CollectorSettings", "create_app"]
