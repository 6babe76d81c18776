import math

from common.stats import format_delta, paired_delta


def test_paired_delta_uses_only_common_seeds():
    values = {0: 10.0, 1: 12.0, 2: 11.0, 7: 99.0}
    baseline = {0: 9.0, 1: 9.0, 2: 10.0, 5: -50.0}
    mean, se = paired_delta(values, baseline)  # diffs 1, 3, 1
    assert math.isclose(mean, 5 / 3)
    assert math.isclose(se, math.sqrt(((1 - 5 / 3) ** 2 * 2 + (3 - 5 / 3) ** 2) / 2) / math.sqrt(3))


def test_single_or_no_common_seed():
    assert paired_delta({0: 2.0}, {0: 1.5}) == (0.5, None)
    assert paired_delta({0: 2.0}, {1: 1.5}) == (None, None)


def test_format_marks_differences_beyond_two_standard_errors():
    assert format_delta(None, None) == ""
    assert format_delta(0.5, None) == "+0.50"
    assert format_delta(-1.0, 0.4) == "-1.00 ± 0.40*"
    assert format_delta(0.8, 0.4) == "+0.80 ± 0.40"
