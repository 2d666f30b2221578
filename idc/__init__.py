"""IDC end of the GCI link: sessions, verification, gap lists, archive writers, availability metrics."""
