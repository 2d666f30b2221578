"""Response models and calib/calper, checked against the spec's worked examples and against ObsPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from obspy.signal.invsim import corn_freq_2_paz, paz_to_freq_resp

from calibration.response import (
    PolesZeros,
    Seismometer,
    calib_from_response,
    hydrophone,
    microbarometer,
    pendulum_poles,
    response_from_calib,
)


def test_pendulum_poles_match_obspy_corn_freq_2_paz():
    ours = sorted(pendulum_poles(120.0, 0.707), key=lambda p: p.imag)
    theirs = sorted(corn_freq_2_paz(1 / 120.0, 0.707)["poles"], key=lambda p: p.imag)
    assert np.allclose(ours, theirs, rtol=1e-12)


def test_overdamped_and_critical_poles_are_real():
    p1, p2 = pendulum_poles(1.0, 2.0)
    assert p1.imag == p2.imag == 0 and p1.real < p2.real < 0
    assert p1 * p2 == pytest.approx((2 * math.pi) ** 2)  # product of the poles is ω0²
    c1, c2 = pendulum_poles(1.0, 1.0)
    assert c1 == pytest.approx(c2) == pytest.approx(-2 * math.pi)


def test_velocity_sensor_limits():
    """|H| → G far above the corner, G/(2h) at the corner, G·(f/f0)² far below (spec §1)."""
    sensor = Seismometer(120.0, 0.707, 1500.0)
    h = sensor.velocity_response()
    assert abs(h(100.0)) == pytest.approx(1500.0, rel=1e-6)
    assert abs(h(1 / 120.0)) == pytest.approx(1500.0 / (2 * 0.707), rel=1e-12)
    assert abs(h(1e-5)) == pytest.approx(1500.0 * (1e-5 * 120.0) ** 2, rel=1e-3)
    assert np.degrees(np.angle(h(1 / 120.0))) == pytest.approx(90.0)  # velocity sensor at its corner


def test_response_agrees_with_obspy_paz_to_freq_resp():
    sensor = Seismometer(30.0, 0.7, 800.0)
    paz = sensor.velocity_response()
    theirs, freqs = paz_to_freq_resp(list(paz.poles), list(paz.zeros), paz.scale, 0.05, 4096, freq=True)
    assert np.allclose(paz(freqs), theirs, rtol=1e-10)


def test_coil_response_is_velocity_response_over_s():
    sensor = Seismometer(30.0, 0.7, 800.0)
    f = np.geomspace(1e-3, 10, 50)
    assert np.allclose(sensor.coil_response()(f) * 2j * np.pi * f, sensor.velocity_response()(f), rtol=1e-12)


def test_normalised_response_has_the_sensitivity_at_its_frequency_with_sign():
    poles = pendulum_poles(120.0, 0.707)
    paz = PolesZeros.normalised([0, 0], poles, -2400.0, 1.0, "m/s", "V")
    assert paz.sensitivity(1.0) == pytest.approx(-2400.0)
    assert abs(paz.normalisation_factor(1.0) * paz(1.0) / paz.scale) == pytest.approx(1.0)
    assert np.real(paz(20.0)) < 0  # reversed polarity: negative in the flat band


def test_calib_matches_the_spec_examples():
    """G = 1500 V/(m/s), D = 4e5 counts/V: 0.2653 nm/count at 1 s, 5.305 at 20 s; at calper = T0 =
    120 s the general form gives 45.0 where the flat-band formula would give 31.8 (spec §5)."""
    counts = Seismometer(120.0, 0.707, 1500.0).velocity_response().scaled(4e5, "counts")
    assert calib_from_response(counts, 1.0) == pytest.approx(0.2653, abs=5e-5)
    assert calib_from_response(counts, 20.0) == pytest.approx(5.305, abs=5e-3)
    assert calib_from_response(counts, 120.0) == pytest.approx(45.0, abs=0.05)
    flat = 1e9 * 120.0 / (2 * math.pi * 1500.0 * 4e5)
    assert flat == pytest.approx(31.8, abs=0.05)


def test_calib_units_displacement_velocity_acceleration_agree():
    """The same sensor described from displacement, velocity or acceleration gives one calib."""
    vel = Seismometer(30.0, 0.7, 1e9).velocity_response(output_units="counts")
    disp = PolesZeros((0j, *vel.zeros), vel.poles, vel.scale, "m", "counts")  # one more s: from displacement
    acc = PolesZeros(vel.zeros[1:], vel.poles, vel.scale, "m/s**2", "counts")  # one fewer s
    for calper in (0.5, 1.0, 30.0):
        c = calib_from_response(vel, calper)
        assert calib_from_response(disp, calper) == pytest.approx(c, rel=1e-12)
        assert calib_from_response(acc, calper) == pytest.approx(c, rel=1e-12)


def test_calib_round_trip_and_polarity():
    shape = Seismometer(120.0, 0.707, 1.0).velocity_response(output_units="counts")
    rebuilt = response_from_calib(shape, 0.2653, 1.0)
    assert calib_from_response(rebuilt, 1.0) == pytest.approx(0.2653, rel=1e-12)
    assert rebuilt.scale == pytest.approx(1e9 / (2 * math.pi * 0.2653), rel=1e-4)
    reversed_sensor = response_from_calib(shape, -0.2653, 1.0)
    assert reversed_sensor.scale < 0 and calib_from_response(reversed_sensor, 1.0) == pytest.approx(-0.2653)


def test_pressure_sensors_are_flat_with_their_corners():
    mb = microbarometer(0.02, 0.01, 20.0, output_units="V")
    assert abs(mb(0.5)) == pytest.approx(0.02, rel=2e-3)  # mid-band: flat
    assert abs(mb(0.01)) == pytest.approx(0.02 / math.sqrt(2), rel=1e-3)  # −3 dB at the leak corner
    assert np.degrees(np.angle(mb(0.01))) == pytest.approx(45.0, abs=0.1)  # first-order high-pass
    hp = hydrophone(-0.15, 1.0, output_units="V")
    assert hp.scale == -0.15 and abs(hp(100.0)) == pytest.approx(0.15, rel=1e-4)
    assert np.real(hp(100.0)) < 0
    counts = mb.scaled(4e5, "counts")
    assert calib_from_response(counts, 1.0) == pytest.approx(1 / abs(counts(1.0)))  # Pa per count


@pytest.mark.parametrize("build, message", [
    (lambda: Seismometer(-1.0, 0.7, 1.0).velocity_response(), "positive"),
    (lambda: Seismometer(1.0, 0.0, 1.0).velocity_response(), "positive"),
    (lambda: PolesZeros((), (1 + 0j,), 1.0, "m/s", "V"), "left half-plane"),
    (lambda: PolesZeros((), (-1 + 0j,), 0.0, "m/s", "V"), "non-zero"),
    (lambda: microbarometer(0.02, 5.0, 1.0), "corners"),
    (lambda: calib_from_response(Seismometer(1.0, 0.7, 1.0).velocity_response("V"), 1.0), "counts"),
    (lambda: calib_from_response(Seismometer(1.0, 0.7, 1.0).coil_response(), 1.0), "input units"),
    (lambda: calib_from_response(Seismometer(1.0, 0.7, 1.0).velocity_response("counts"), 0.0), "calper"),
])
def test_bad_parameters_are_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()
