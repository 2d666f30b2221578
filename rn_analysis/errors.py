"""The one error an analysis raises for input it cannot analyse; the message names what is wrong."""


class AnalysisInputError(ValueError):
    """A sample the analysis refuses: a missing calibration block, zero live time, an empty spectrum..."""
