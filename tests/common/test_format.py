import math

import pytest

from common.format import MISSING, delta, markdown_table, mean_sd, number, paired, plus_minus, signed
from common.stats import PairedDelta


def test_markdown_table_has_a_rule_under_its_header_and_one_line_per_row():
    assert markdown_table(["a", "b"], [["1", 2], ["x", ""]]) == ["| a | b |", "|---|---|", "| 1 | 2 |", "| x |  |"]
    assert markdown_table(["only"], []) == ["| only |", "|---|"]
    assert markdown_table(["a", "b", "c"], [[0, "", None]])[2] == "| 0 |  | |"  # None: a cell left out


def test_markdown_table_refuses_a_row_that_would_shift_columns():
    with pytest.raises(ValueError, match="2 cells under a header of 3"):
        markdown_table(["a", "b", "c"], [["1", "2"]])


def test_mean_sd_is_the_sample_standard_deviation():
    # 1, 2, 6: mean 3, sample variance ((-2)^2 + (-1)^2 + 3^2) / 2 = 7
    assert mean_sd([1.0, 2.0, 6.0]) == f"3.00 ± {math.sqrt(7):.2f}"
    assert mean_sd([1.0, 2.0, 6.0], digits=0) == "3 ± 3"
    assert mean_sd(iter([4.25])) == "4.25"  # one value: no spread to show
    assert mean_sd([]) == MISSING and mean_sd([math.nan]) == MISSING
    assert mean_sd([1.0, math.nan, 3.0], digits=1) == f"2.0 ± {math.sqrt(2):.1f}"  # a diverged run left out


def test_signed_numbers_and_differences_carry_their_sign():
    assert signed(0.4) == "+0.40" and signed(-0.4) == "-0.40" and signed(None) == ""
    assert number(0.4) == "0.40" and number(2.0, digits=0) == "2" and number(None) == ""
    assert plus_minus(87.1, 1.6, digits=1) == "87.1 ± 1.6" and plus_minus(3.0, None) == "3.00"
    assert delta(1.234, 0.456) == "+1.23 ± 0.46" and delta(-1.0, 0.4, star=True) == "-1.00 ± 0.40*"
    assert delta(0.5, None, star=True) == "+0.50"  # one seed: no test, so no star


def test_paired_cell_stars_only_a_significant_comparison():
    # t quantile (0.975) with 9 degrees of freedom: 2.262
    assert paired(PairedDelta(-1.0, 0.4, 10)) == "-1.00 ± 0.40*"  # t = 2.5
    assert paired(PairedDelta(0.8, 0.4, 10)) == "+0.80 ± 0.40"  # t = 2.0
    assert paired(PairedDelta(-1.0, 0.4, 10), star=False) == "-1.00 ± 0.40"
    assert paired(PairedDelta(0.5, None, 1)) == "+0.50" and paired(None) == ""
