"""Every number in this project that was not measured by it, with its source.

Tables show these in a separate, labelled column; they are never mixed with run records.
"""

from __future__ import annotations

INFOGRAPH_SOURCE = "Sun, Hoffmann, Verma, Tang. InfoGraph. ICLR 2020, Table 2 (mean ± std accuracy, %)"
INFOGRAPH = {  # dataset -> (mean, std)
    "MUTAG": (89.01, 1.13),
    "PTC_MR": (61.65, 1.43),
    "IMDB-BINARY": (73.03, 0.87),
    "IMDB-MULTI": (49.69, 0.53),
    "REDDIT-BINARY": (82.50, 1.42),
}

RELEASED_GRAPH_SOURCE = (
    "this project's issue 4: the authors' released graph code (joshr17/HCL) run unchanged on the same staged data "
    "by the issue's author; 200 epochs, tau_plus 0.5, 3 repeats, no seeds set; hard = betas 1/2/10 pooled"
)
RELEASED_GRAPH = {  # dataset -> method -> accuracy % as reported (mean ± std over repeats, or a range)
    "MUTAG": {"infograph": "87.1 ± 1.6", "hard (betas pooled)": "87.2 ± 1.5", "untrained": "85.6-86.4"},
    "PTC_MR": {"hard (betas pooled)": "56.5 ± 1.7", "untrained": "59.1"},
}

HCL_STL10_SOURCE = "joshr17/HCL README: STL10, ResNet-50, batch 256, 400 epochs, linear-probe top-1 (%)"
HCL_STL10 = {  # method label -> accuracy
    "SimCLR": 80.15,
    "debiased (tau_plus=0.1)": 84.26,
    "hard (beta=0.5)": 86.38,
    "hard (beta=1)": 87.44,
    "hard (beta=2)": 87.09,
    "hard (beta=6)": 83.09,
}
