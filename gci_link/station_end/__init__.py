"""The station end of the GCI link: the durable outbox, the ZeroMQ sender and ``ims link`` tools."""
