"""Configuration errors name file and key; ``ims idc status`` and the Prometheus view show the metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from idc.config import IdcConfigError, load_config
from idc.metrics import MetricsCollector, MetricsStore
from station.ims import main
from timeunits import NS_PER_S

EXAMPLE = Path(__file__).resolve().parents[2] / "idc" / "example_idc.toml"
BASE = "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='tcp://h:1'\n"


def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert config.stations["STA1"].network == "XX"
    assert config.root == EXAMPLE.parent / "idc-data" and config.data_endpoint == "tcp://0.0.0.0:8100"
    assert config.verify_workers == 2
    assert config.rn_analysis and config.rn_analysis_timeout_s == 300 and config.rn_analysis_memory_mb == 2048


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[idc]\nroot = 'r'\ntrust_dir = 't'\n", "idc.connection_endpoint: missing (required)"),
        ("[idc]\nroot = 5\n", "idc.root: must be a string, got int 5"),
        (BASE + "acknack_interval_s = 90\n", "60 s"),
        (BASE + "[stations.A]\n", "stations.A.network: missing (required)"),
        (BASE + "bogus=1\n", "idc.bogus: unknown key"),
        ("[idc\n", "(syntax): Expected ']'"),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='tcp://h:1'\n[idc.console]\nbind='0.0.0.0:80'\n",
            "idc.console.bind: 0.0.0.0 is reachable beyond this machine; set tls_cert and tls_key",
        ),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='tcp://h:1'\nverify_workers=-1\n",
            "idc.verify_workers: must be >= 0, got -1",
        ),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='tcp://h:1'\ncontrol_window_s=0\n",
            "idc.control_window_s: must be > 0, got 0",
        ),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='tcp://h:1'\nkey_bundle='k'\n",
            "/k/key.pem does not exist",
        ),
        (
            "[idc]\nroot='r'\ntrust_dir='t'\nconnection_endpoint='tcp://h:1'\n[stations.A]\nnetwork='XX'\n"
            "fresh_control='yes'\n",
            "stations.A.fresh_control: must be true or false",
        ),
        (BASE + "[stations.HONEST]\nnetwork='XX'\n", "stations.HONEST.sites: required, since 'HONEST'"),
        (BASE + "[stations.STA1]\nnetwork='XX'\nsites=[]\n", "stations.STA1.sites: a list of one or more"),
        (BASE + "[stations.STA1]\nnetwork='XX'\nsites=['../..']\n", "site '../..' is not 1-5 ASCII letters"),
        (BASE + "[stations.STA1]\nnetwork='XX'\nsites=[1]\n", "STA1.sites: must be a list of strings"),
        (BASE + "[stations.STA1]\nnetwork='X/'\n", "network 'X/' is not 1-2 ASCII letters or digits"),
        (BASE + "max_frame_bytes = 0\n", "idc.max_frame_bytes: 1024 to 268435456"),
        (BASE + "max_frame_bytes = 1073741824\n", "idc.max_frame_bytes: 1024 to 268435456"),
        (BASE + "quarantine_max_rows = 0\n", "idc.quarantine_max_rows: must be > 0"),
        (BASE + "[stations.'../x']\nnetwork='XX'\nsites=['X']\n", "1 to 8 ASCII letters or digits"),
        (BASE + "data_future_s = 0\n", "idc.data_future_s: must be > 0"),
        (BASE + "max_day_files_per_frame = 1.5\n", "idc.max_day_files_per_frame: must be an integer"),
        (BASE + "rn_analysis = 1\n", "idc.rn_analysis: must be true or false, got int 1"),
        (BASE + "rn_analysis_timeout_s = 0\n", "idc.rn_analysis_timeout_s: must be > 0"),
        (BASE + "rn_analysis_memory_mb = 256\n", "idc.rn_analysis_memory_mb: must be >= 512"),
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
    assert main(["idc", "status", "--config", str(config)]) == 1  # no receiver runs
    out = capsys.readouterr().out
    assert "UNHEALTHY\n  the receiver is not running" in out
    line = next(row for row in out.splitlines() if "STA1A.BHZ.00" in row).split()
    assert line[:2] == ["STA1", "STA1A.BHZ.00"] and line[3] == "1"
    assert float(line[2]) == pytest.approx(75.0, abs=1.0)  # the CLI reads the real clock a moment later
    assert "rejected:crc" in out
    registry = CollectorRegistry()
    registry.register(MetricsCollector(tmp_path / "data" / "metrics.sqlite", 40, lambda: now))
    text = generate_latest(registry).decode()
    labels = 'channel="BHZ",location="00",site="STA1A",station="STA1"'
    assert f"ims_idc_channel_availability_ratio{{{labels}}} 0.75" in text
    assert 'ims_idc_rejections_total{reason="crc",station="STA1"} 3.0' in text


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


def test_check_config_lists_every_problem(tmp_path, capsys):
    path = tmp_path / "idc.toml"
    path.write_text("[idc]\nroot = 5\ntrust_dir = 'nowhere'\nconnection_endpoint = '127.0.0.1:1'\nbogus = 1\n"
                    "acknack_interval_s = 90\n[stations.A]\nsites = []\n")
    assert main(["idc", "check-config", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "invalid IDC receiver configuration (6 problems):",
        f"  {path}: idc.root: must be a string, got int 5",
        f"  {path}: idc.connection_endpoint: must look like tcp://host:port (port * for any), "
        "got '127.0.0.1:1'",
        f"  {path}: idc.acknack_interval_s: CD-1.1 wants one at least every 60 s, got 90",
        f"  {path}: idc.bogus: unknown key",
        f"  {path}: stations.A.network: missing (required)",
        f"  {path}: stations.A.sites: a list of one or more site codes",
    ]


def test_check_config_reads_the_key_material(tmp_path, capsys, keys):
    path = tmp_path / "idc.toml"
    path.write_text("[idc]\nroot = 'data'\ntrust_dir = 'nowhere'\nconnection_endpoint = 'tcp://127.0.0.1:1'\n")
    assert main(["idc", "check-config", "--config", str(path)]) == 2
    missing = f"{tmp_path}/nowhere: trust store directory does not exist"
    assert f"{path}: idc.trust_dir: {missing}" in capsys.readouterr().err
    path.write_text(f"[idc]\nroot = 'data'\ntrust_dir = '{keys.ca.trust_dir}'\n"
                    f"connection_endpoint = 'tcp://127.0.0.1:1'\nkey_bundle = '{keys.idc_bundle}'\n")
    assert main(["idc", "check-config", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: IDC receiver at tcp://127.0.0.1:1, 0 station(s)")
    assert not (tmp_path / "data").exists()


def test_status_health_and_json(tmp_path, capsys):
    """Healthy: the receiver runs (a live holder of the root's lock) and every station's newest sample is
    recent; the exit code says so for monitoring checks, and --json carries the same answer."""
    import json
    import time

    from idc.health import ROOT_LOCK
    from opskit.lock import ProcessLock

    now = time.time_ns()
    config = tmp_path / "idc.toml"
    config.write_text("[idc]\nroot='data'\ntrust_dir='t'\nconnection_endpoint='tcp://127.0.0.1:1'\n"
                      "metrics_window_s = 40\n[stations.STA1]\nnetwork='XX'\n[stations.STA2]\nnetwork='XX'\n")
    _metrics(tmp_path / "data", now)
    with ProcessLock.acquire(tmp_path / "data" / ROOT_LOCK, "IDC receiver"):
        assert main(["idc", "status", "--config", str(config), "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["running"] and not report["healthy"]
        assert report["problems"] == ["station STA2: nothing archived in the last 40.0 s"]
        assert report["time"].endswith("Z") and report["channels"][0]["channel"] == "STA1A.BHZ.00"
        assert report["counters"] == [{"station": "STA1", "name": "rejected:crc", "value": 3}]
        config.write_text(config.read_text().replace("[stations.STA2]\nnetwork='XX'\n", ""))
        assert main(["idc", "status", "--config", str(config), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["problems"] == []
        # its newest sample ended at the moment _metrics took as now, which the status command's clock passed
        assert main(["idc", "status", "--config", str(config), "--stale-after", "0"]) == 1
        assert re.search(r"STA1 STA1A.BHZ.00: newest sample \d+ ms old", capsys.readouterr().out)
