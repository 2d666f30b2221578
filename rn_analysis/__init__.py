"""Radionuclide analysis: spectra to nuclides, activity concentrations and detection limits.

Shared by the IDC (automatic results for every sample), the station (preliminary results and QC) and
the bench (detector calibration). Parsing of the IMS 2.0 messages stays in ``gci_link.ims2``.
"""
