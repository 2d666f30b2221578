"""The web layer both operator consoles share: configuration, server thread, security, events, assets."""
