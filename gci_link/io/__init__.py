"""Archive formats, one folder per format as in ObsPy's ``io/<format>/``: miniSEED 2 and SDS."""
