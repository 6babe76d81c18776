import math

from common.stats import PairedDelta, holm_adjusted, largest_gain, paired_delta, t_threshold


def test_paired_delta_uses_only_common_seeds():
    values = {0: 10.0, 1: 12.0, 2: 11.0, 7: 99.0}
    baseline = {0: 9.0, 1: 9.0, 2: 10.0, 5: -50.0}
    delta = paired_delta(values, baseline)  # diffs 1, 3, 1
    assert delta.n == 3 and math.isclose(delta.mean, 5 / 3)
    assert math.isclose(delta.se, math.sqrt(((1 - 5 / 3) ** 2 * 2 + (3 - 5 / 3) ** 2) / 2) / math.sqrt(3))


def test_single_or_no_common_seed():
    assert paired_delta({0: 2.0}, {0: 1.5}) == PairedDelta(0.5, None, 1)
    assert paired_delta({0: 2.0}, {1: 1.5}) is None


def test_star_is_a_two_sided_paired_t_test_at_five_percent():
    # t quantiles (0.975): 12.706 with 1 degree of freedom, 2.262 with 9
    assert PairedDelta(-1.0, 0.4, 10).significant  # t = 2.5 > 2.262
    assert not PairedDelta(0.8, 0.4, 10).significant  # t = 2.0
    assert not PairedDelta(5.0, 0.4, 2).significant  # t = 12.5 < 12.706
    assert PairedDelta(5.2, 0.4, 2).significant  # t = 13


def test_t_threshold_is_where_the_star_starts():
    assert math.isclose(t_threshold(2), 12.706, abs_tol=1e-3) and math.isclose(t_threshold(10), 2.262, abs_tol=1e-3)
    for n in (2, 3, 4, 10):
        se = 0.5
        assert PairedDelta(t_threshold(n) * se * 1.001, se, n).significant
        assert not PairedDelta(t_threshold(n) * se * 0.999, se, n).significant


def test_largest_gain_is_the_joint_upper_confidence_bound():
    one = PairedDelta(0.5, 0.4, 10)
    assert math.isclose(largest_gain([one]), 0.5 + 2.2622 * 0.4, abs_tol=1e-3)  # the plain 95% interval
    # two variants: each interval at 97.5% (t = 2.685 with 9 degrees of freedom); the wide one sets the bound
    assert math.isclose(largest_gain([PairedDelta(1.0, 0.5, 10), PairedDelta(1.5, 0.1, 10)]), 1.0 + 2.685 * 0.5,
                        abs_tol=1e-3)


def test_p_value_equals_scipy_paired_t_test():
    from scipy.stats import ttest_rel

    values = {0: 71.2, 1: 73.0, 2: 72.4, 3: 70.9, 4: 74.1}
    baseline = {0: 70.8, 1: 72.1, 2: 72.9, 3: 70.2, 4: 72.6}
    expected = ttest_rel(list(values.values()), list(baseline.values())).pvalue
    assert math.isclose(paired_delta(values, baseline).p_value, expected, rel_tol=1e-9)
    assert PairedDelta(0.5, None, 1).p_value is None
    assert PairedDelta(0.0, 0.0, 3).p_value == 1.0 and PairedDelta(0.5, 0.0, 3).p_value == 0.0


def holm_decisions(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down procedure as the textbook states it: an oracle for :func:`holm_adjusted`."""
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    reject = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        reject[index] = True
    return reject


def test_holm_steps_down_and_stops_at_the_first_failure():
    # sorted: 0.01 <= 0.05/4, 0.015 <= 0.05/3, 0.03 > 0.05/2 stops, so 0.04 is kept though <= 0.05/1
    for p, expected in (([0.03, 0.01, 0.04, 0.015], [False, True, False, True]), ([0.04], [True]),
                        ([0.04, 0.04], [False, False]), ([], [])):
        assert holm_decisions(p) == expected
        assert [a <= 0.05 for a in holm_adjusted(p)] == expected
