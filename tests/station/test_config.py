"""Station configuration: the example loads; every kind of mistake is named by file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, load_config, load_example_config

EXAMPLE = Path(__file__).resolve().parents[2] / "station" / "example_station.toml"


def broken(tmp_path: Path, old: str, new: str) -> ConfigError:
    """Write the example with one edit and return the error loading it raises."""
    text = EXAMPLE.read_text()
    assert old in text, old
    path = tmp_path / "station.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def messages(error: ConfigError) -> list[str]:
    return [f"{p.key}: {p.problem}" for p in error.problems]


def test_example_config_loads_with_every_section(tmp_path):
    config = load_example_config(tmp_path)
    assert config.station.name == "XMPL" and config.frame.length_s == 10
    assert [c.code for c in config.channels] == ["XMPL.BHZ.", "XMPL.BHN.", "XMPL.BHE.", "XMPL.BDF.01"]
    assert config.channels[3].sensor_type_code == 2 and config.channels[0].calper == 1.0
    assert config.digitizer("dm24").system_id == "XMPL01"
    assert config.link.key_bundle == tmp_path / "keys" / "XMPL"
    assert config.link.endpoints == ("tcp://127.0.0.1:8041",) and config.link.window == 64
    assert config.daemon.state_dir == tmp_path / "state" and config.daemon.metrics_port == 0
    assert config.outbox.path == tmp_path / "outbox" / "outbox.sqlite"
    assert config.soh.supply_volts.min == 11.0 and config.soh.supply_volts.hysteresis == 0.3
    assert config.acquisition.lateness_budget_s == 30.0
    assert config.console is not None and (config.console.host, config.console.port) == ("127.0.0.1", 8080)
    assert config.soh.digitizer_silent_after_s == 60.0


def test_file_on_disk_resolves_paths_against_its_folder(tmp_path):
    path = tmp_path / "site" / "station.toml"
    path.parent.mkdir()
    path.write_text(EXAMPLE.read_text())
    assert load_config(path).archive.path == tmp_path / "site" / "archive"


def test_missing_key_is_named_with_file_and_path(tmp_path):
    error = broken(tmp_path, "calper = 1.0\nsample_rate = 40.0\n\n[[channels]]\ndigitizer = \"dm24\"\n"
                   "stream_id = \"XMPLE2\"", "sample_rate = 40.0\n\n[[channels]]\ndigitizer = \"dm24\"\n"
                   "stream_id = \"XMPLE2\"")
    (problem,) = error.problems
    assert problem.file.endswith("station.toml") and problem.key == "channels[1].calper"
    assert problem.problem == "missing (required)"
    assert f"{problem.file}: channels[1].calper: missing (required)" in str(error)


def test_wrong_type_is_reported(tmp_path):
    error = broken(tmp_path, "baud = 115200", 'baud = "fast"')
    assert messages(error) == ["digitizers[0].baud: must be an integer, got str 'fast'"]


def test_out_of_range_is_reported(tmp_path):
    error = broken(tmp_path, "calper = 1.0", "calper = -2.0")
    assert messages(error) == ["channels[0].calper: must be > 0, got -2.0"]


def test_console_beyond_localhost_without_tls_is_refused(tmp_path):
    error = broken(tmp_path, 'bind = "127.0.0.1:8080"', 'bind = "192.0.2.7:8080"')
    assert messages(error) == ["console.bind: 192.0.2.7 is reachable beyond this machine; set tls_cert and "
                               "tls_key (the operator credential must not cross a network in clear)"]


def test_unknown_key_is_reported(tmp_path):
    error = broken(tmp_path, "[frame]\n", "[frame]\nlenght_s = 20\n")
    assert messages(error) == ["frame.lenght_s: unknown key"]


def test_duplicate_channel_and_stream_are_reported(tmp_path):
    error = broken(tmp_path, 'stream_id = "XMPLN2"\nsite = "XMPL"\nchannel = "BHN"',
                   'stream_id = "XMPLZ2"\nsite = "XMPL"\nchannel = "BHZ"')
    assert messages(error) == [
        "channels[1]: duplicate channel XMPL.BHZ. (also channels[0])",
        "channels[1].stream_id: stream XMPLZ2 of dm24 already mapped by channels[0]",
    ]


def test_all_problems_are_listed_in_one_error(tmp_path):
    text = EXAMPLE.read_text().replace('name = "XMPL"', 'name = "TOOLONG"').replace(
        'sensor_type = "infrasonic"', 'sensor_type = "infra"').replace(
        "sample_rate = 20.0", "sample_rate = 0.05").replace('digitizer = "dm24"', 'digitizer = "dm42"', 1)
    path = tmp_path / "many.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = messages(info.value)
    assert "station.name: must be 1 to 5 characters, got 'TOOLONG'" in got
    assert any(m.startswith("channels[3].sensor_type: must be one of hydroacoustic") for m in got)
    assert "channels[0].digitizer: no [[digitizers]] entry is named 'dm42'" in got
    assert "channels[3].sample_rate: 0.05 sps gives 0.5 samples per 10 s frame; must be a whole number" in got
    assert len(got) == 4 and "4 problems" in str(info.value)


def test_missing_table_is_reported_once(tmp_path):
    error = broken(tmp_path, "[archive]\npath = \"archive\"\nbudget_mb = 10000.0\n", "")
    assert messages(error) == ["archive: missing (required table)"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('endpoints = ["tcp://127.0.0.1:8041"]', 'endpoints = ["udp://x:1"]',
     "link.endpoints[0]: must look like tcp://host:port, got 'udp://x:1'"),
    ('endpoints = ["tcp://127.0.0.1:8041"]', 'endpoints = "tcp://127.0.0.1:8041"',
     "link.endpoints: must be a list, got str 'tcp://127.0.0.1:8041'"),
    ('port = "/dev/ttyUSB0"', 'port = "ftp://x"',
     "digitizers[0].port: URL scheme must be one of alt, hwgrep, loop, rfc2217, socket, spy; got 'ftp://x'"),
    ("length_s = 10 ", "length_s = 7 ",
     "frame.length_s: must divide 60 s evenly (1, 2, 5, 10, ... 60), got 7"),
    ("min = 11.0\nmax = 15.0", "min = 14.9\nmax = 15.0",
     "soh.supply_volts: min + 2*hysteresis must be below max (min=14.9, max=15.0, hysteresis=0.3)"),
    ("calib = 0.0159", "calib = true", "channels[0].calib: must be a number, got bool True"),
])
def test_value_checks(tmp_path, old, new, expected):
    assert messages(broken(tmp_path, old, new)) == [expected]


def test_syntax_and_unreadable_file_are_config_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[station\nname = 1")
    with pytest.raises(ConfigError, match=r"bad.toml: \(syntax\)"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_the_example_in_the_docs_loads(tmp_path):
    doc = (EXAMPLE.parents[1] / "docs" / "station-config.md").read_text()
    block = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "doc.toml"
    path.write_text(block)
    config = load_config(path)
    assert config.channels[0].code == "XMPL.BHZ." and config.soh.temperature_c.max == 50.0


def test_idc_trust_must_hold_an_idc_certificate(tmp_path):
    from gci_link.keys import CertificateAuthority

    ca = CertificateAuthority.create(tmp_path / "ca")
    link = 'key_bundle = "keys/XMPL"'
    error = broken(tmp_path, link, f'{link}\nidc_trust = "ca/trust"')
    no_idc = "no IDC certificate here; issue one with 'ims keys issue-idc'"
    assert messages(error) == [f"link.idc_trust: {tmp_path}/ca/trust/idc: {no_idc}"]
    error = broken(tmp_path, link, f'{link}\nidc_trust = "nowhere"')
    assert messages(error) == [f"link.idc_trust: {tmp_path}/nowhere: trust store directory does not exist"]
    ca.issue_idc()
    path = tmp_path / "station.toml"
    path.write_text(EXAMPLE.read_text().replace(link, f'{link}\nidc_trust = "ca/trust"'))
    assert load_config(path).link.idc_trust == tmp_path / "ca" / "trust"
    assert load_example_config(tmp_path).link.idc_trust is None


def test_calibration_tables_take_their_defaults_from_the_stream_id(tmp_path):
    config = load_example_config(tmp_path)
    bhz, bhn = config.channels[:2]
    assert bhz.calibration is not None and bhn.calibration is None
    assert (bhz.calibration.input_stream_id, bhz.calibration.component) == ("XMPLC2", "Z")
    assert bhz.calibration.coil_constant == 2.5e-8 and bhz.calibration.depth_m == 0.0
    assert config.calibration.apply_accepted is False
    assert config.calibration.report_dir == tmp_path / "state" / "calibrations"
    info = config.station
    assert (info.latitude, info.longitude, info.elevation_m) == (46.52, 6.63, 410.0)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("damping = 0.707 ", "# damping", "channels[0].calibration.damping: give period_s, damping, sensitivity "
                                      "together (missing damping)"),
    ("coil_constant = 2.5e-8 ", "# coil", "channels[0].calibration.coil_constant: required with a nominal "
                                          "response (it puts the nominal in the fit's units)"),
    ("sensitivity = 1.0e10 ", "sensitivity = 0.0 ", "channels[0].calibration.sensitivity: must be a finite "
                                                    "non-zero number, got 0.0"),
    ("# component = \"Z\"", "component = \"X\"", "channels[0].calibration.component: must be one of E, N, Z; "
                                                 "got 'X'"),
    ("coil_constant = 2.5e-8 ", "coil_constant = 2.5e-8\ncoil = 1 ",
     "channels[0].calibration.coil: unknown key"),
    ("apply_accepted = false", "apply_accepted = \"yes\"",
     "calibration.apply_accepted: must be true or false, got str 'yes'"),
    ("longitude = 6.63 ", "# longitude", "station.longitude: give latitude, longitude, elevation_m together "
                                         "(missing longitude)"),
    ("latitude = 46.52 ", "latitude = 91.0 ", "station.latitude: must be <= 90, got 91.0"),
])
def test_calibration_settings_are_checked(tmp_path, old, new, expected):
    assert messages(broken(tmp_path, old, new)) == [expected]


def test_a_stream_id_that_gives_no_default_needs_the_keys(tmp_path):
    error = broken(tmp_path, 'stream_id = "XMPLZ2"', 'stream_id = "Z2"')
    assert messages(error) == ["channels[0].calibration.input_stream_id: missing (required)",
                               "channels[0].calibration.component: missing (required)"]
