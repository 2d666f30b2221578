// filled in by the station console commit
