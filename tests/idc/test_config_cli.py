"""Configuration errors name file and key; ``ims idc status`` and the Prometheus view show the metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from idc.config import IdcConfigError, load_config
from idc.metrics import MetricsCollector, MetricsStore
from station.ims import main
from timeunits import NS_PER_S

EXAMPLE = Path(__file__).resolve().parents[2] / "idc" / "example_idc.toml"
BASE = "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\n"


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert config.stations["STA1"].network == "XX"
    assert config.root == EXAMPLE.parent / "idc-data" and config.data_endpoint == "tcp://0.0.0.0:8100"
    assert config.verify_workers == 2
    assert config.rn_analysis and config.rn_analysis_timeout_s == 300 and config.rn_analysis_memory_mb == 2048


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[idc]\nroot = 'r'\ntrust_dir = 't'\n", "key 'idc.connection_endpoint': required"),
        ("[idc]\nroot = 5\n", "key 'idc.root': expected str, got int 5"),
        ("[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\nacknack_interval_s = 90\n", "60 s"),
        ("[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\n[stations.A]\n", "'stations.A.network'"),
        ("[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\nbogus=1\n", "'idc.bogus': unknown"),
        ("[idc\n", "not valid TOML"),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\nverify_workers=-1\n",
            "key 'idc.verify_workers': must not be negative, got -1",
        ),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\ncontrol_window_s=0\n",
            "key 'idc.control_window_s': must be positive, got 0",
        ),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\nkey_bundle='k'\n",
            "/k/key.pem does not exist",
        ),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='x'\n[stations.A]\nnetwork='XX'\n"
            "fresh_control='yes'\n",
            "key 'stations.A.fresh_control': expected true or false",
        ),
        (BASE + "[stations.HONEST]\nnetwork='XX'\n", "'stations.HONEST.sites': required, since 'HONEST'"),
        (BASE + "[stations.STA1]\nnetwork='XX'\nsites=[]\n", "'stations.STA1.sites': a list of one or more"),
        (BASE + "[stations.STA1]\nnetwork='XX'\nsites=['../..']\n", "site '../..' is not 1-5 ASCII letters"),
        (BASE + "[stations.STA1]\nnetwork='XX'\nsites=[1]\n", "'stations.STA1.sites': 1 is not a string"),
        (BASE + "[stations.STA1]\nnetwork='X/'\n", "network 'X/' is not 1-2 ASCII letters or digits"),
        (BASE + "max_frame_bytes = 0\n", "'idc.max_frame_bytes': 1024 to 268435456"),
        (BASE + "max_frame_bytes = 1073741824\n", "'idc.max_frame_bytes': 1024 to 268435456"),
        (BASE + "quarantine_max_rows = 0\n", "'idc.quarantine_max_rows': must be positive"),
        (BASE + "[stations.'../x']\nnetwork='XX'\nsites=['X']\n", "1 to 8 ASCII letters or digits"),
        (BASE + "data_future_s = 0\n", "'idc.data_future_s': must be positive"),
        (BASE + "max_day_files_per_frame = 1.5\n", "'idc.max_day_files_per_frame': expected int"),
        (BASE + "rn_analysis = 1\n", "key 'idc.rn_analysis': true or false, not 1"),
        (BASE + "rn_analysis_timeout_s = 0\n", "'idc.rn_analysis_timeout_s': must be positive"),
        (BASE + "rn_analysis_memory_mb = 256\n", "'idc.rn_analysis_memory_mb': at least 512"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "idc.toml"
    path.write_text(text)
    with pytest.raises(IdcConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)


def _metrics(root: Path, now: int) -> None:
    store = MetricsStore(root / "metrics.sqlite")
    for k in (0, 1, 3):  # 10 s blocks 0, 1 and 3 of the last 40 s: one 10 s gap
        start = now - 40 * NS_PER_S + k * 10 * NS_PER_S
        store.channel_seen(
            "STA1",
            "STA1A.BHZ.00",
            "authenticated",
            latency_ns=2 * NS_PER_S,
            start_ns=start,
            end_ns=start + 10 * NS_PER_S,
            rate=40.0,
        )
    store.channel_seen("STA1", "STA1A.BHZ.00", "unsigned")
    store.count("STA1", "rejected:crc", 3)
    report = store.channel_reports(now, 40)[0]
    assert report.availability_pct == pytest.approx(75.0)
    assert (report.gap_count, report.longest_gap_s, report.timeliness_s) == (1, 10.0, 0.0)
    assert report.authenticated_pct == pytest.approx(75.0)
    store.close()


def test_status_table_and_prometheus(tmp_path, capsys):
    import time

    now = time.time_ns()
    config = tmp_path / "idc.toml"
    config.write_text(
        "[idc]\nroot='data'\ntrust_dir='t'\nconnection_endpoint='tcp://127.0.0.1:1'\nmetrics_window_s = 40\n"
    )
    _metrics(tmp_path / "data", now)
    assert main(["idc", "status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "STA1A.BHZ.00" in row).split()
    assert line[:2] == ["STA1", "STA1A.BHZ.00"] and line[3] == "1"
    assert float(line[2]) == pytest.approx(75.0, abs=1.0)  # the CLI reads the real clock a moment later
    assert "rejected:crc" in out
    registry = CollectorRegistry()
    registry.register(MetricsCollector(tmp_path / "data" / "metrics.sqlite", 40, lambda: now))
    text = generate_latest(registry).decode()
    assert 'ims_idc_channel_availability_percent{channel="STA1A.BHZ.00",station="STA1"} 75.0' in text
    assert 'ims_idc_station_events_total{event="rejected:crc",station="STA1"} 3.0' in text


def test_the_idc_key_must_be_an_idc_key_issued_for_the_responder_name(tmp_path, keys):
    from gci_link.keys import KeyMaterialError
    from idc.server import idc_signer
    from tests.idc.conftest import make_config

    def config(bundle, **kw):
        return make_config(tmp_path, keys.ca.trust_dir, key_bundle=bundle, **kw)

    assert idc_signer(config(keys.idc_bundle)).key_id == keys.idc.key_id
    with pytest.raises(KeyMaterialError, match="a station's key, not an IDC's"):
        idc_signer(config(next(keys.ca.root.glob("issued/STA1-*"))))
    with pytest.raises(KeyMaterialError, match="certificate is for IDC 'IDC' but responder_name is 'IDC2'"):
        idc_signer(config(keys.idc_bundle, responder_name="IDC2"))
