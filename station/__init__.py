"""Station daemon: configuration, acquisition, framing, state of health, and the `ims` command."""
