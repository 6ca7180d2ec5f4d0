"""Prognos cloud: ingest MQTT telemetry into InfluxDB, score, alert and open work orders."""

from edge_agent import __version__

__all__ = ["__version__"]
