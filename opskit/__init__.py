"""What every daemon and command of ours needs to run as operations software: TOML checking, process locks,
listening-port checks, the metrics exporter, systemd notification, heap trimming and time formatting.
Imports nothing of ours but ``timeunits``, so every package may use it."""
