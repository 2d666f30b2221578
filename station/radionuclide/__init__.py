"""The radionuclide sample cycle of a station: particulate (HPGe) and noble-gas (beta-gamma) systems.

A schedule on data time says when each filter or gas sample is collected and counted; the cycle drives
the detector through it, reads the spectra and the instruments' state of health, and stores IMS 2.0
messages in the station's outbox, which sends them over the GCI link like every frame. How it works and
what it promises: docs/radionuclide-station.md.
"""
