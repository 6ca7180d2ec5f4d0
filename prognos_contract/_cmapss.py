"""Signal names of the NASA C-MAPSS columns, as the TurboMon TM-21 profile publishes them.

The one source of truth for these names: the simulator and ``prognos demo`` publish C-MAPSS rows
under them (``cloud._cmapss``), the models train on them (``models._cmapss``) and the scorer reads
them back from InfluxDB. Here, in the standard-library-only contract package, because both
``cloud`` and ``models`` may import it without loading the other's dependencies (``models``
imports scikit-learn and pandas; ``models`` must not import ``cloud``).
"""

CMAPSS_SETTINGS = ("altitude_kft", "mach", "throttle_resolver_angle")
"""Operational settings 1-3 (FD001 runs at one condition; the names follow the NASA readme)."""

CMAPSS_SENSORS = (
    "t2_r",
    "t24_r",
    "t30_r",
    "t50_r",
    "p2_psia",
    "p15_psia",
    "p30_psia",
    "nf_rpm",
    "nc_rpm",
    "epr",
    "ps30_psia",
    "phi_pps_psi",
    "nrf_rpm",
    "nrc_rpm",
    "bpr",
    "far_b",
    "ht_bleed",
    "nf_dmd_rpm",
    "pcnfr_dmd_rpm",
    "w31_lbm_s",
    "w32_lbm_s",
)
"""Sensors 1-21: temperatures in degrees Rankine, pressures psia, speeds rpm, flows lbm/s."""
