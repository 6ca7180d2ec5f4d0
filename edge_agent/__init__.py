"""Prognos edge agent: reads device sensors, decodes them with device profiles, publishes over MQTT.

Runs on small gateway hardware, so it imports only light dependencies (paho-mqtt, pymodbus,
pyserial, APScheduler, PyYAML, pydantic, structlog) and never pandas, numpy or scikit-learn
(`tests/unit/test_edge_imports.py` enforces it).
"""

from edge_agent._version import __version__

__all__ = ["__version__"]
