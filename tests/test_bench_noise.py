"""The noise the voice bench listens in: its colour and its level against the speech."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.audio.chunk import RATE
from edge_assistant.bench.noise import fan, noisy_copy, pink


def _band_power(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spectrum[(f >= lo) & (f < hi)].mean())


def test_pink_noise_loses_half_its_power_per_octave() -> None:
    x = pink(RATE * 10, np.random.default_rng(0))
    assert np.mean(x * x) == pytest.approx(1.0)
    ratio = _band_power(x, 400, 800) / _band_power(x, 800, 1600)
    assert ratio == pytest.approx(2.0, rel=0.15)


def test_a_fan_is_low_with_a_hum() -> None:
    x = fan(RATE * 10, np.random.default_rng(0))
    assert np.mean(x * x) == pytest.approx(1.0)
    assert _band_power(x, 119, 121) > 10 * _band_power(x, 100, 118)
    assert _band_power(x, 200, 400) > 50 * _band_power(x, 3000, 6000)


def test_the_noise_is_mixed_at_the_level_asked_for_against_the_loud_speech() -> None:
    t = np.arange(RATE * 2) / RATE
    speech = np.zeros(RATE * 4, dtype=np.int16)
    speech[RATE : RATE * 3] = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    noise = pink(len(speech), np.random.default_rng(1))
    mixed = noisy_copy(speech, noise, 5.0).astype(np.float64)
    added = mixed - speech
    loud = speech[RATE : RATE * 3].astype(np.float64)
    snr = 10 * np.log10(np.mean(loud[np.abs(loud) > 300] ** 2) / np.mean(added**2))
    assert snr == pytest.approx(5.0, abs=0.2)
