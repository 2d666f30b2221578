"""The fuzz targets: module name -> (share of ``make fuzz``'s inputs, modules atheris instruments).

Numba-compiled modules are not instrumented: atheris rewrites Python bytecode, which numba then cannot
compile (their correctness is checked differentially instead, against a plain-Python reference).

Shares follow cost and attack surface: CD-1.1 frames come from the network, so they get the most; the
configurations are operator-written files, so they get the least. Kept free of project imports, so the
launcher can import it before instrumenting anything.
"""

from __future__ import annotations

# ``python -m fuzz`` runs targets in this order, ``--jobs`` at a time: the long ones come first.
TARGETS: dict[str, tuple[float, tuple[str, ...]]] = {
    "cd11_frame": (0.28, ("gci_link.cd11",)),  # but see NOT_INSTRUMENTED
    # BRP's checks cost in proportion to the stream (about 900 inputs a second at 2 KB), GCF's are cheap
    "brp_stream": (0.13, ("digitizer.brp",)),
    "gcf_block": (0.09, ("digitizer.gcf", "digitizer.base36")),
    "station_config": (0.07, ("station.config", "tomllib")),
    "idc_config": (0.07, ("idc.config", "tomllib")),
    "hil_scenario": (0.06, ("hil.scenario", "tomllib")),
    "ims2_message": (0.08, ("gci_link.ims2",)),  # but see NOT_INSTRUMENTED
    # the receiver's core over message sequences: each input verifies real signatures (about 230 inputs
    # a second against thousands for the parsers), so a small share still takes a quarter of an hour
    "idc_receiver": (0.02, ("idc.protocol", "idc.session", "idc.verify", "idc.admission", "idc.checker",
                            "gci_link.io.mseed2.limits", "gci_link.gaplist")),
    # any client the IDC lets in reaches the SeedLink server's command parser
    "seedlink_session": (0.08, ("idc.seedlink.protocol", "idc.seedlink.selection", "idc.seedlink.times",
                                "idc.seedlink.info")),
    # the radionuclide detectors' serial lines: corrupt bytes from the gamma MCA (Amptek DP5)
    "dp5_stream": (0.04, ("digitizer.dp5",)),
    # ... and from the beta-gamma MCA, the air sampler and the xenon unit (our line protocol)
    "mca_lines": (0.04, ("digitizer.mca",)),
    # the Güralp digitizer's text: status blocks' text and the console's replies through the session
    "guralp_text": (0.04, ("digitizer.gcf_status", "digitizer.guralp_console", "digitizer.guralp_session",
                           "digitizer.brp")),
}

NOT_INSTRUMENTED = ("gci_link.cd11.canadian", "gci_link.cd11.crc", "gci_link.io.mseed2.records",
                    "gci_link.ims2.intcodec", "gci_link.ims2.lexer", "gci_link.ims2.spectra")
