"""The published numbers we measure against, kept in one place with their source.

Every figure is copied from the papers (Customer-R1, arXiv 2510.07230; OPeRA, arXiv
2506.05606; Shop-R1, arXiv 2507.17842) or third-party accounts of them. Numbers are
percentages, as printed. ``(3P)`` marks a figure only reported by a third party.
Reports put these rows next to our runs; a cell the paper does not report is None
(rendered "–"), never a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Where every anchor in this module comes from.
SOURCE_DOC = "the Customer-R1, OPeRA and Shop-R1 papers (arXiv 2510.07230, 2506.05606, 2507.17842)"
CUSTOMER_R1 = "Customer-R1 (arXiv 2510.07230), OPeRA-filtered test, Qwen2.5-7B"
OPERA_ZERO_SHOT = "OPeRA (arXiv 2506.05606) zero-shot baselines, OPeRA-filtered test"
SHOP_R1 = "Shop-R1 (arXiv 2507.17842), its own data"
_CR1 = "Customer-R1 paper"
_OPERA = "OPeRA paper"

#: The headline metric keys, in table order (our metrics use the same keys, as fractions).
METRIC_KEYS: tuple[str, ...] = (
    "exact_match",
    "type_macro_f1",
    "click_type_weighted_f1",
    "outcome_f1",
)


@dataclass(frozen=True, slots=True)
class PaperRow:
    """One published result row. Values are percentages; None = not reported."""

    label: str
    group: str  # short source for a table cell
    source: str
    exact_match: float | None = None
    type_macro_f1: float | None = None
    click_type_weighted_f1: float | None = None
    outcome_f1: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


#: Customer-R1's own table. The paper's "type F1" is read as macro-F1 and "outcome F1"
#: as the same weighted F1 OPeRA reports (the Customer-R1 evaluation follows OPeRA's).
CUSTOMER_R1_ROWS: tuple[PaperRow, ...] = (
    PaperRow("Customer-R1 SFT", _CR1, CUSTOMER_R1, 35.14, 72.66, 56.43, 66.29, "(3P)"),
    PaperRow("Customer-R1 SFT+RL", _CR1, CUSTOMER_R1, 39.58, 78.50, None, 79.45, "(3P)"),
    PaperRow("Customer-R1 SFT+RL w/o persona", _CR1, CUSTOMER_R1, 37.80, note="(3P)"),
    PaperRow("Customer-R1 SFT+RL shuffled persona", _CR1, CUSTOMER_R1, 28.94, note="(3P)"),
)

#: OPeRA's zero-shot baselines: next action acc / type macro-F1 / click-type wF1 / outcome wF1.
ZERO_SHOT_ROWS: tuple[PaperRow, ...] = (
    PaperRow("GPT-4.1 zero-shot", _OPERA, OPERA_ZERO_SHOT, 21.51, 48.78, 44.47, 47.54),
    PaperRow("DeepSeek-R1 zero-shot", _OPERA, OPERA_ZERO_SHOT, 14.75, 27.37, 35.12, 46.36),
    PaperRow("Claude-3.7-Sonnet zero-shot", _OPERA, OPERA_ZERO_SHOT, 10.75, 31.58, 27.27, 43.52),
    PaperRow("Llama-3.3-70B zero-shot", _OPERA, OPERA_ZERO_SHOT, 8.31, 24.29, 19.99, 36.64),
)

#: A third-party reproduction of Customer-R1 SFT (8x H100, 65k context, 2,000 steps).
REPRODUCTION_ROWS: tuple[PaperRow, ...] = (
    PaperRow(
        "3P reproduction of Customer-R1 SFT",
        "3P reproduction",
        "a third-party reproduction of Customer-R1 (arXiv 2510.07230)",
        25.10,
        note="(3P) paper: 35.14",
    ),
)

#: All rows a report shows beside our runs, in order.
PAPER_ROWS: tuple[PaperRow, ...] = CUSTOMER_R1_ROWS + ZERO_SHOT_ROWS + REPRODUCTION_ROWS

#: Shop-R1's exact match on its own data: another dataset, so never in the same table.
SHOP_R1_EXACT_MATCH: dict[str, float] = {
    "Qwen2.5-3B zero-shot": 0.32,
    "SFT": 16.76,
    "SFT+RL binary": 16.55,
    "Shop-R1": 27.72,
}

#: Next-action exact match of the persona ablations (SFT+RL), keyed by our ablation names.
ABLATION_EXACT_MATCH: dict[str, float] = {
    "real": 39.58,
    "none": 37.80,
    "shuffled": 28.94,
}
