"""Everything between a built CD-1.1 frame and the IDC archive: codec, keys, outbox, sender, receiver.

Imports nothing else of this project.
"""
