"""The built-in objective families: one ``Family(...)`` each, with its reference code and what differs from it.

Imported by :mod:`common.objectives`; the machinery is :mod:`common.registry`, and the plugins register after these
(the last line).
Ranges bound every parameter where the loss would overflow or lose its meaning (see :data:`HARDNESS_MAX`,
:data:`SEED_MAX`, :data:`COUNT_MAX`), so a spec that parses is one that runs.
"""

from __future__ import annotations

from common.plugins import load_plugins
from common.registry import Family, Param, Value, register

#: Upper bound of hard's beta, the JSD beta and the hardness alpha. The logits s/t lie in [-100, 100] at t >= 0.01;
#: a weight e^{beta s/t} (or the offset's (1 + alpha t) s/t) stays far inside float32 after the row maximum is taken
#: out up to beta = 1e4 (an exponent range of 2e6), and beyond it the weights are already a hard maximum.
HARDNESS_MAX = 1e4
#: Seeds are those of torch.Generator that every pipeline records: [0, 2^32).
SEED_MAX = 2.0**32 - 1
#: MoCHi's counts: at most MoCo's largest queue (65536), the most hard negatives the paper ever mixes from.
COUNT_MAX = 65536.0

_TAU_PLUS = Param(0.1, "class prior of false negatives among the negatives (0: no debiasing)", 0.0, 1.0, high_open=True)
_BETA = Param(1.0, "concentration of the weights on hard negatives", 0.0, HARDNESS_MAX)
_HCL = "Robinson, Chuang, Sra, Jegelka. Contrastive Learning with Hard Negative Samples. ICLR 2021, arXiv:2010.04592"
_DCL = "Yeh, Hong, Hsu, Liu, Chen, LeCun. Decoupled Contrastive Learning. ECCV 2022, arXiv:2110.06848"
_DCL_REFERENCE = ("raminnakhli/Decoupled-Contrastive-Learning: loss/dcl.py (the paper released no code; lightly's "
                  "lightly/loss/dcl_loss.py is written after it)")
_ONE_WAY = "the reference scores view-1 anchors only (one direction); we average both views' anchors"
_COUNT = {"low": 0.0, "high": COUNT_MAX, "integer": True}

register(
    Family("ntxent", "NT-Xent / InfoNCE: cross-entropy of the positive against all in-batch negatives",
           "Chen, Kornblith, Norouzi, Hinton. A Simple Framework for Contrastive Learning of Visual "
           "Representations. ICML 2020, arXiv:2002.05709",
           reference="google-research/simclr: objective.py (add_contrastive_loss)",
           deviation="the reference adds the two views' mean losses (twice our mean over the 2B anchors)",
           fixed={"tau_plus": 0.0, "beta": 0.0}, masked="common.losses:masked_hcl_loss", two_view="common.losses:hcl_loss"),
    ("simclr", "ntxent"), ("plain", "ntxent"), ("infonce", "ntxent"),
    ("mnrl", "ntxent"),  # sentence-transformers' MultipleNegativesRankingLoss (sentence st-finetune runs the library's)
)
register(
    Family("debiased", "debiased contrastive loss: the negatives' sum corrected for false negatives of prior tau_plus",
           "Chuang, Robinson, Lin, Torralba, Jegelka. Debiased Contrastive Learning. NeurIPS 2020, arXiv:2007.00224",
           reference="chingyaoc/DCL: main.py (criterion)",
           deviation="evaluated in log space (the reference exponentiates raw logits, which overflow at small t)",
           params={"tau_plus": _TAU_PLUS}, fixed={"beta": 0.0},
           masked="common.losses:masked_hcl_loss", two_view="common.losses:hcl_loss"),
)
register(
    Family("hard", "HCL: negatives importance-weighted by e^{beta s/t}, debiased with prior tau_plus", _HCL,
           reference="joshr17/HCL: image/main.py (criterion)",
           deviation="evaluated in log space (the reference exponentiates raw logits); beta is held constant (the "
                     "reference image runs may anneal it: an image-pipeline schedule, not part of the loss)",
           params={"tau_plus": _TAU_PLUS, "beta": _BETA},
           masked="common.losses:masked_hcl_loss", two_view="common.losses:hcl_loss"),
    ("hcl", "hard"),
)
register(
    Family("jsd", "InfoGraph's local-global Jensen-Shannon estimator, with HCL's debiasing and hard weighting "
           "(graphs only); tau_plus = beta = 0 is InfoGraph", "Sun, Hoffmann, Verma, Tang. InfoGraph. ICLR 2020, "
           f"arXiv:1908.01000; hard variant: {_HCL}",
           reference="joshr17/HCL: graph/cortex_DIM/functions/gan_losses.py (measure JSD_hard)",
           deviation="convention=paper (the default) weights the true negatives by e^{+beta q/s} as the paper "
                     "writes; convention=reference is the released code term for term (joshr17/HCL issue 11)",
           params={"tau_plus": Param(0.0, "class prior of false negatives (the released graph code uses 0.5)", 0.0, 1.0,
                                     high_open=True),
                   "beta": Param(0.0, "hardness of the negative weighting (0: uniform)", 0.0, HARDNESS_MAX),
                   "convention": Param("paper", "paper: weights e^{+beta q/s} over true negatives; reference: the "
                                       "released graph code's arithmetic (joshr17/HCL issue 11)",
                                       choices=("paper", "reference"))},
           local_global="common.local_global:local_global_loss"),
    ("infograph", "jsd"),
)

# The negative-handling methods of the field (issue 18): each in the masked form over common.masked;
# images take them through the two-view adapter, graphs through the InfoNCE local-global estimator.
register(
    Family("decoupled", "DCL: NT-Xent with the positive removed from the denominator (no negative-positive coupling)",
           _DCL, reference=_DCL_REFERENCE, deviation=_ONE_WAY, masked="common.decoupled:dcl_loss"),
    ("dcl", "decoupled"),
)
register(
    Family("dclw", "DCLW: DCL with the positive term weighted by 2 - P softmax(s+/sigma) over the batch's positive "
           "pairs (negative von Mises-Fisher weight; exact with gathered negatives); detach=yes holds the weights "
           "constant in the gradient as lightly's DCLWLoss does, detach=no differentiates them as the reference does",
           _DCL + " (Sec. 3, DCLW)", reference=_DCL_REFERENCE,
           deviation=_ONE_WAY + "; the weights' mean runs over every rank's pairs with gathered negatives (lightly: "
                     "per rank); the reference leaves normalising the embeddings to its caller",
           params={"sigma": Param(0.5, "von Mises-Fisher scale of the positive weights (paper: 0.5); from 0.01, where "
                                  "the weights are a hard maximum already and s+/sigma stays within the logits' range",
                                  0.01),
                   "detach": Param("no", "yes: the weights are constants in the gradient (lightly's DCLWLoss); no: "
                                   "differentiated (the reference)", choices=("no", "yes"))},
           masked="common.decoupled:dclw_loss", two_view="common.decoupled:dclw_two_view"),
)
register(
    Family("hardness", "hardness offset: every negative logit s/t raised by alpha * stop_grad(s), weights e^{alpha s} "
           "not renormalised (sentence-transformers' hardness_mode=in_batch_negatives). The offset is not divided by "
           "t, so the negative logits are multiplied by 1 + alpha t: one alpha is a different strength at each "
           "temperature (common.hardness.alpha_for_multiplier gives the alpha of a multiplier)",
           "Lan, Niu, Meng, Zhou, Su. LLaVE: Large Language and Vision Embedding Models with Hardness-Weighted "
           "Contrastive Learning. arXiv:2503.04812, 2025",
           reference="huggingface/sentence-transformers: sentence_transformers/losses/MultipleNegativesRankingLoss.py "
                     "(hardness_mode='in_batch_negatives'; the installed library is the test's oracle)",
           params={"alpha": Param(9.0, "hardness strength, added to the logit unscaled by the temperature (LLaVE: 9 "
                                  "at t = 0.05, a x1.45 multiplier; 0: NT-Xent)", 0.0, HARDNESS_MAX)},
           masked="common.hardness:hardness_offset_loss"),
)
register(
    Family("fnc", "false-negative cancellation: candidates scored by their largest cosine to the anchor's support "
           "set (the anchor and its positives: both views of a sample, so every view of it cancels the same ones); "
           "the topk (scaled to the run's negatives) scoring above threshold are attracted as extra positives or "
           "eliminated from the negatives", "Huynh, Kornblith, Walter, Maire, Khademi. Boosting "
           "Contrastive Self-Supervised Learning with False Negative Cancellation. WACV 2022, arXiv:2011.11765",
           reference="google-research/fnc: objective.py (add_contrastive_loss; flags fn_topk, fn_threshold and "
                     "support_size in run.py)",
           deviation="in-batch, without the momentum memory and the 8 extra support views: the support set is the "
                     "anchor and its positives; topk is the reference's count among its 65536 candidates, scaled "
                     "to the anchor's negatives (at least 1); the reference adds the views' mean losses (twice our "
                     "mean); mode=elimination is the paper's other variant, not in the reference code",
           params={"topk": Param(10.0, "false negatives per anchor at the reference's 65536 candidates (16 x batch "
                                 "4096), scaled to the anchor's negatives: round(topk N / 65536), at least 1 (0: none, "
                                 "NT-Xent), at most N - 1", 0.0, 65536.0, integer=True),
                   "threshold": Param(0.7, "cosine a candidate must exceed to be cancelled (reference: 0.7)", -1.0, 1.0),
                   "mode": Param("attraction", "attraction: cancelled candidates become positives (the reference); "
                                 "elimination: dropped from the negatives", choices=("attraction", "elimination"))},
           retired={"k": 1.0},  # the earlier in-batch variant: k most similar to the anchor alone, no threshold
           masked="common.fnc:fnc_loss"),
)


def _ring_band(values: dict[str, Value]) -> str | None:
    lower, upper = values["lower"], values["upper"]
    return None if lower <= upper else f"lower/upper: the ring band [{lower:g}, {upper:g}] is empty (lower > upper)"


register(
    Family("ring", "ring / conditional negatives: of each anchor's N negatives ranked by similarity, the floor((1 - "
           "lower) N) most similar are kept, less the floor((1 - upper) N) most similar of all; the default is the "
           "official SimCLRRing setting (thres_outer 0.5, thres_inner 0.1 of it)",
           "Wu, Zhuang, Mosse, Yamins, Goodman. Conditional Negative Sampling for Contrastive Learning of "
           "Visual Representations. ICLR 2021, arXiv:2010.02037",
           reference="mhw32/contrastive-ring-public: src/objectives/simclr.py (SimCLRRing) with "
                     "config/pretrain/simclr/simclr_ring.json (first commit e79c871)",
           deviation="the reference ranks all 2B dot products of a view-1 anchor, its self-product and its positive "
                     "included (they lead the list, so its cuts fall up to two places lower among the negatives), "
                     "and adds the positive to the ring even when the ring holds it; we rank the anchor's negatives "
                     "and average both views' anchors",
           params={"lower": Param(0.5, "1 - the fraction of most similar negatives kept (reference: thres_outer = "
                                  "0.5)", 0.0, 1.0),
                   "upper": Param(0.95, "1 - the fraction of most similar negatives dropped (reference: thres_inner "
                                  "0.1 of thres_outer 0.5, 0.05)", 0.0, 1.0)},
           masked="common.ring:ring_loss", constraint=_ring_band),
)
register(
    Family("mochi", "MoCHi hard negative mixing, in-batch: synthetic negatives mixed from pairs of each anchor's "
           "num_hard hardest negatives and from the anchor with one (coefficient < 0.5), no gradient through them",
           "Kalantidis, Sariyildiz, Pion, Weinzaepfel, Larlus. Hard Negative Mixing for Contrastive Learning. "
           "NeurIPS 2020, arXiv:2010.01028",
           deviation="in-batch instead of a 16k-65k MoCo queue, so N, s and s' are scaled down (16, 16, 4 against "
                     "1024, 1024, 128-256)",
           params={"num_hard": Param(16.0, "hardest negatives mixed per anchor, N (paper: 1024 of a 16k queue; "
                                     "in-batch: at most the anchor's negatives)", 1.0, COUNT_MAX, integer=True),
                   "num_mix": Param(16.0, "synthetic negatives mixed from two hard negatives, s", **_COUNT),
                   "num_query_mix": Param(4.0, "synthetic negatives mixed from the anchor and a hard negative, s'",
                                          **_COUNT),
                   "seed": Param(0.0, "seed of the mixing draws (they advance every step)", 0.0, SEED_MAX,
                                 integer=True)},
           masked="common.mixing:mochi_loss", two_view="common.mixing:mochi_two_view", seeded=True,
           constraint=lambda v: "num_hard must be >= 2 to mix pairs of negatives" if v["num_mix"] and v["num_hard"] < 2
           else None),
)

load_plugins()
