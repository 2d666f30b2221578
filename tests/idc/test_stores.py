"""The SDS journal of a station's raw store: rows carry their commit epoch, and a row is never deleted
without the ``archived_through`` mark that covers it (what recovery relies on, idc/committer.py)."""

from __future__ import annotations

import sqlite3

from gci_link.gaplist import GapList
from idc.stores import JournalRow, StationStore


def test_rows_deleted_at_commit_or_close_leave_the_mark_that_covers_them(tmp_path):
    path = tmp_path / "STA1.sqlite"
    store = StationStore(path)
    assert store.archived_through() == -1
    store.commit([(1, 0, b"one", [("day", 0)]), (2, 0, b"two", [("day", 0)])], GapList([(1, 3)]), epoch=4)
    assert store.journal() == [JournalRow(1, 4, [("day", 0)]), JournalRow(2, 4, [("day", 0)])]
    store.archived([1, 2], through_epoch=4)
    assert len(store.journal()) == 2  # released rows go with the next transaction ...
    store.commit([(3, 0, b"three", [("day", 512)])], GapList([(1, 4)]), epoch=5)
    assert store.journal() == [JournalRow(3, 5, [("day", 512)])] and store.archived_through() == 4
    store.archived([3], through_epoch=5)
    store.close()  # ... or at close, with the mark
    store = StationStore(path)
    assert store.journal() == [] and store.archived_through() == 5
    store.close()


def test_a_journal_written_before_epochs_is_read_with_epoch_0(tmp_path):
    path = tmp_path / "STA1.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, files TEXT NOT NULL)")
    db.execute("INSERT INTO journal VALUES (7, ?)", ('[["day", 100]]',))
    db.commit()
    db.close()
    store = StationStore(path)
    assert store.journal() == [JournalRow(7, 0, [("day", 100)])] and store.archived_through() == -1
    store.close()
