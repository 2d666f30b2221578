"""Instrument drivers over serial lines: Güralp GCF/BRP digitizers and radionuclide MCAs.

Imports nothing else of this project, so it can be reused on its own.
"""
