"""IDC-style QC and timeliness flags of a particulate sample (spec sheet section 13, from the IDC's
SAMPML export S2), each a ``Flag`` with the figure that decided it.

"Received" is taken as the message's transmit time (the analysis sees no arrival time); the IDC's
"previous sample present" and "activation products" flags need other samples and are not computed.
"""

from __future__ import annotations

from gci_link.ims2 import PhdMessage

from .curves import GammaCalibration
from .decay import Timing
from .result import Flag, NuclideResult, Peak

BA140_MDC_MAX_UBQ_M3 = 30.0
FLOW_MIN_M3_H = 500.0
BE7_FWHM_MAX_KEV = 1.7
BE7_KEV = 477.6035
K40_KEV = 1460.822
COLLECTION_MAX_H = 24.0
ACQUISITION_MIN_H = 20.0
DECAY_MAX_H = 24.0
RECEIPT_MAX_H = 72.0
COLLECTION_TOLERANCE_H = 0.1  # a 24 h filter changed a few minutes late is still a 24 h collection


def particulate_flags(message: PhdMessage, t: Timing, nuclides: list[NuclideResult], peaks: list[Peak],
                      cal: GammaCalibration) -> list[Flag]:
    out = []
    ba = next((n for n in nuclides if n.name == "BA-140"), None)
    if ba is None:
        out.append(Flag("Ba140MDC", False, "no Ba-140 MDC: its lines are outside the spectrum"))
    else:
        out.append(Flag("Ba140MDC", ba.mdc_uBq_m3 <= BA140_MDC_MAX_UBQ_M3,
                        f"{ba.mdc_uBq_m3:.2f} uBq/m3 (at most {BA140_MDC_MAX_UBQ_M3:g})"))
    flow = t.air_volume_m3 / (t.collection_s / 3600.0)
    out.append(Flag("FlowRate", flow > FLOW_MIN_M3_H,
                    f"{flow:.1f} m3/h = {t.air_volume_m3:.1f} m3 in {t.collection_s / 3600:.2f} h "
                    f"(more than {FLOW_MIN_M3_H:g})"))
    fwhm = float(cal.resolution.fwhm(BE7_KEV))
    out.append(Flag("Be7FWHM", fwhm < BE7_FWHM_MAX_KEV,
                    f"{fwhm:.3f} keV at 477.6 keV from #g_Resolution (below {BE7_FWHM_MAX_KEV:g})"))
    k40 = min(peaks, key=lambda p: abs(p.energy_keV - K40_KEV), default=None)
    if k40 is None or abs(k40.energy_keV - K40_KEV) > k40.fwhm_keV:
        out.append(Flag("K40Location", False, "no K-40 peak found within a FWHM of 1460.8 keV"))
    else:
        shift = k40.energy_keV - K40_KEV
        out.append(Flag("K40Location", abs(shift) <= 0.5 * k40.fwhm_keV,
                        f"K-40 peak at {k40.energy_keV:.2f} keV ({shift:+.2f} keV, within half a FWHM)"))
    hours = t.collection_s / 3600.0
    out.append(Flag("CollectionTime", hours <= COLLECTION_MAX_H + COLLECTION_TOLERANCE_H,
                    f"{hours:.2f} h (at most {COLLECTION_MAX_H:g} h)"))
    hours = t.real_s / 3600.0
    out.append(Flag("AcquisitionTime", hours >= ACQUISITION_MIN_H,
                    f"{hours:.2f} h real time (at least {ACQUISITION_MIN_H:g} h)"))
    hours = t.decay_s / 3600.0
    out.append(Flag("DecayTime", hours <= DECAY_MAX_H + COLLECTION_TOLERANCE_H,
                    f"{hours:.2f} h (at most {DECAY_MAX_H:g} h)"))
    if message.collection_start_ns is not None:
        hours = (message.transmit_ns - message.collection_start_ns) / 3.6e12
        out.append(Flag("SampleReceived", hours <= RECEIPT_MAX_H,
                        f"sent {hours:.2f} h after the collection started (at most {RECEIPT_MAX_H:g} h)"))
    return out
