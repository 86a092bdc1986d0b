"""Issue 17, point 5: ``sim report`` writes a page a UX researcher reads.

Files and plots exist and are real PNGs, everything from sessions is escaped (a rationale
reading ``<script>`` stays text, and the page holds no script at all), the A/B table shows
the simulated result beside the true one, and the page renders in headless Chromium
(screenshot through Playwright): all images load, nothing overflows, the page is not blank.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from killkit import invoke

from customer_r1.sim import stats
from customer_r1.sim.compare import load_sessions
from customer_r1.sim.report import page_excerpt, write_sim_report
from customer_r1.sim.simulate import simulate
from customer_r1.world import WorldConfig, export_world, generate_world

EVIL = '<script>alert("pwned")</script> I leave & "never" come back'
N_BOOT = 100


def _tiny_png(path: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [1, 0])
    fig.savefig(path, dpi=50)
    return path


def _rewrite(run: Path, edit: Any) -> None:
    f = run / "sessions.jsonl"
    recs = [json.loads(x) for x in f.read_text().splitlines()]
    for r in recs:
        edit(r)
    f.write_text("".join(json.dumps(r) + "\n" for r in recs))


def _ab_json(ab: Path) -> None:
    """What `sim ab` writes, by hand: the arms' figures with user-bootstrap intervals."""
    arms = {k: load_sessions(ab / k).rows for k in ("control", "treatment", "true-control", "true-treatment")}
    metrics = {}
    for name, fn in (("conversion", stats.conversion), ("mean_length", stats.mean_length),
                     ("reach_reviews", stats.reach("reviews"))):
        def iv(rows: list[Any], fn: Any = fn) -> dict[str, float]:
            return stats.bootstrap(rows, fn, n_boot=N_BOOT).to_dict()

        def eff(t: str, c: str, paired: bool = True, fn: Any = fn) -> dict[str, float]:
            return stats.bootstrap_diff(arms[t], arms[c], fn, n_boot=N_BOOT, paired=paired).to_dict()

        metrics[name] = {"control": iv(arms["control"]), "treatment": iv(arms["treatment"]),
                         "effect": eff("treatment", "control"),
                         "effect_independent": eff("treatment", "control", False), "crn_shrink": 0.7,
                         "true": {"control": iv(arms["true-control"]),
                                  "treatment": iv(arms["true-treatment"]),
                                  "effect": eff("true-treatment", "true-control")}}
    (ab / "ab.json").write_text(json.dumps({
        "control": "control", "treatment": "reviews_hidden", "policy": {"kind": "baseline"},
        "reference_policy": "world", "users": 12, "sessions_per_arm": 36, "metrics": metrics,
        "runs": {"control": "control", "treatment": "treatment", "true_control": "true-control",
                 "true_treatment": "true-treatment"},
        "sample_size": {},
        "warnings": ["<b>only</b> 12 shoppers: effects under 20 points are not resolved"]}))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("simreport")
    world = root / "world"
    export_world(generate_world(WorldConfig(users=12, sessions_per_user=3, seed=5, population=50)), world)
    out = {"root": root, "world": world, "ab": root / "ab"}
    arms = (("control", "baseline", None), ("treatment", "baseline", ["reviews_hidden"]),
            ("true-control", "world", None), ("true-treatment", "world", ["reviews_hidden"]))
    for name, policy, variant in arms:
        simulate(world=world, out=out["ab"] / name, policy=policy, variant=variant, sessions_per_user=3,
                 seed=2, concurrency=4, progress=False)
    _ab_json(out["ab"])
    out["true"] = out["ab"] / "true-control"
    # a baseline run whose shoppers say hostile things when they leave, with screenshots in the trace
    out["baseline"] = root / "baseline"
    shutil.copytree(out["ab"] / "control", out["baseline"])
    shot = _tiny_png(out["baseline"] / "shot.png")

    def edit(r: dict[str, Any]) -> None:
        for e in r["steps"]:
            e["screenshot"] = shot.name
            if (e.get("action") or {}).get("type") == "terminate":
                e["rationale"] = EVIL
        r["steps"][0]["observation"]["html"] += "<p>&lt;img src=x onerror=alert(1)&gt;</p>"

    _rewrite(out["baseline"], edit)
    return out


@pytest.fixture(scope="module")
def report(study: dict[str, Path]) -> Path:
    return write_sim_report([study["baseline"], study["ab"]], study["root"] / "report",
                            reference=study["world"], n_boot=N_BOOT, title='Study <i>"A"</i>')


def test_report_files_and_plots(report: Path) -> None:
    from PIL import Image

    d = report.parent
    assert report.name == "index.html" and (d / "report.md").is_file() and (d / "report.json").is_file()
    html = report.read_text()
    md = (d / "report.md").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    pngs = sorted(p.name for p in d.glob("*.png"))
    assert {"funnel.png", "funnel_segments_1.png", "session_lengths.png", "user_conversion.png",
            "dropoffs.png", "conversion_by_variant.png"} <= set(pngs)
    for name in pngs:
        assert name in srcs and f"]({name})" in md, name
        data = (d / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(d / name) as im:
            im.verify()
        with Image.open(d / name) as im:
            assert im.width >= 400 and im.height >= 200
            assert np.asarray(im.convert("L")).std() > 5, f"{name} is blank"
    for src in srcs:  # relative files beside the page, nothing fetched from elsewhere
        assert not re.match(r"[a-z]+:", src) and (d / src).is_file(), src
    assert "http://" not in html.replace("https://www.shop.example", "") and "cdn" not in html.lower()
    data = json.loads((d / "report.json").read_text())
    assert data["comparisons"][0]["sim"]["label"] == "baseline"


def test_everything_from_sessions_is_escaped(report: Path) -> None:
    html = report.read_text()
    md = report.with_name("report.md").read_text()
    assert "<script" not in html.lower(), "the page must hold no script at all"
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert ("&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; I leave &amp; &#34;never&#34; come back"
            in html)
    assert "<img src=x" not in html
    assert "Study &lt;i&gt;&#34;A&#34;&lt;/i&gt;" in html  # the title too
    assert "&lt;b&gt;only&lt;/b&gt; 12 shoppers" in html  # and ab.json's warnings
    assert "<script" not in md.lower() and "&lt;script&gt;alert" in md
    # the drop-offs quote the shoppers' own reasons, grouped by the page they left
    section = html.split('id="dropoffs"')[1].split('id="examples"')[0]
    assert "left without buying" in section and 'class="kind"' in section
    assert "&lt;script&gt;alert" in section


def test_ab_table_shows_simulated_beside_true(report: Path, study: dict[str, Path]) -> None:
    html = report.read_text()
    ab = json.loads((study["ab"] / "ab.json").read_text())
    m = ab["metrics"]["conversion"]
    section = html.split('id="variants"')[1].split('id="funnel"')[0]
    row = next(r for r in section.split("<tr>") if r.startswith("<td>conversion</td>"))
    cells = re.findall(r'<td class="num">(.*?)</td>', row, flags=re.S)
    values = [re.sub(r"<br>.*", "", c, flags=re.S).strip() for c in cells]
    assert values[0] == f"{100 * m['control']['value']:.1f}%"
    assert values[3] == f"{100 * m['true']['control']['value']:.1f}%"
    assert values[4] == f"{100 * m['true']['treatment']['value']:.1f}%"
    assert all("[" in c for c in cells), "every figure with its interval"
    te, se = m["true"]["effect"], m["effect"]
    want = ("no clear true effect" if te["low"] <= 0 <= te["high"] else
            "missed" if se["low"] <= 0 <= se["high"] else
            "agrees" if np.sign(se["value"]) == np.sign(te["value"]) else "opposite")
    assert want in row
    assert "sessions reaching reviews" in section and "session length (steps)" in section
    assert "narrower than independent arms would give" in section


def test_ab_direction_against_the_known_answer() -> None:
    from customer_r1.sim.report import ab_rows

    def iv(v: float, lo: float, hi: float) -> dict[str, float]:
        return {"value": v, "low": lo, "high": hi}

    def metric(sim: dict[str, float], true: dict[str, float] | None) -> dict[str, object]:
        arm = iv(0.5, 0.4, 0.6)
        return {"control": arm, "treatment": arm, "effect": sim, "effect_independent": sim, "crn_shrink": 0.3,
                "true": None if true is None else {"control": arm, "treatment": arm, "effect": true}}

    rows = {r["key"]: r for r in ab_rows({"metrics": {
        "conversion": metric(iv(0.1, 0.05, 0.15), iv(0.2, 0.1, 0.3)),
        "reach_cart": metric(iv(-0.1, -0.15, -0.05), iv(0.2, 0.1, 0.3)),
        "reach_reviews": metric(iv(0.02, -0.05, 0.09), iv(0.2, 0.1, 0.3)),
        "mean_length": metric(iv(1.0, 0.5, 1.5), iv(0.1, -0.2, 0.4)),
        "order_value": metric(iv(1.0, 0.5, 1.5), None)}})}
    assert [rows[k]["direction"] for k in ("conversion", "reach_cart", "reach_reviews", "mean_length",
                                           "order_value")] == [
        "agrees", "opposite", "missed", "no clear true effect", None]
    assert rows["conversion"]["sim_effect"] == {"value": "+10.0 pp", "interval": "[+5.0 pp, +15.0 pp]"}
    assert rows["order_value"]["true_effect"]["value"] == "unknown"
    assert rows["order_value"]["sim_control"]["value"] == "$0.50"


def test_examples_render_step_by_step(report: Path) -> None:
    html = report.read_text()
    section = html.split('id="examples"')[1].split('id="method"')[0]
    assert section.count('class="session"') == 3
    assert "→ click" in section and 'class="why"' in section and "<mark>" in section
    shots = sorted(report.parent.glob("shots/*.png"))
    assert shots and all(f'src="shots/{p.name}"' in section for p in shots)


def test_page_excerpt_finds_the_element() -> None:
    page = ('<html><body><div>Welcome <b>back</b></div><input name="nav.search" value="lamp"/>'
            '<a name="results.nova_lamp">Nova <span>Lamp</span> $12</a><select name="size">'
            '<option>S</option></select><p>Footer text</p><script>var x = 1;</script></body></html>')
    ex = page_excerpt(page, "results.nova_lamp")
    assert ex.target == "Nova Lamp $12" and ex.before.endswith("[input: lamp]") and ex.after.startswith("S")
    assert "var x" not in ex.after
    assert page_excerpt(page, "nav.search").target == "[input: lamp]"
    assert page_excerpt(page, "size.M").target == "S"  # a select's option falls back to the select
    none = page_excerpt(page, None)
    assert none.target == "" and none.before.startswith("Welcome back")
    long = page_excerpt("<p>" + "word " * 200 + '<a name="x">here</a>' + " more" * 200 + "</p>", "x",
                        width=50)
    assert long.before.startswith("… ") and long.after.endswith(" …") and len(long.before) <= 53


def test_report_without_a_reference_and_through_the_cli(study: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "mine.txt").write_text("kept")  # --out may hold other things
    page = write_sim_report([study["true"]], tmp_path / "alone", n_boot=N_BOOT, examples=1)
    assert (tmp_path / "alone" / "mine.txt").read_text() == "kept"
    html = page.read_text()
    assert "No reference was given" in html and "user_conversion.png" not in html
    assert html.count('class="session"') == 1
    cli = ["sim", "report", str(study["ab"]), "--out", str(tmp_path / "cli")]
    code, _, err = invoke([*cli, "--n-boot", "50"])
    assert code == 0, err
    html = (tmp_path / "cli" / "index.html").read_text()
    # the A/B folder's true arms are the reference when none is given
    assert "true shopper" in html and "the true shopper&#39;s arms of the A/B folder" in html
    code, _, err = invoke([*cli, "--examples", "-1"])
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_page_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.async_api import async_playwright
    except ImportError:  # pragma: no cover - a missing dependency is a failure, not a skip
        pytest.fail("playwright is not installed: pip install playwright (it is a project dependency)")
    if chromium is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (make installs it)")

    async def shoot() -> dict[str, Any]:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                problems: list[str] = []
                page.on("console",
                        lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
                await page.goto(report.resolve().as_uri())
                await page.wait_for_load_state("load")
                images = await page.evaluate("Array.from(document.images)"
                                             ".map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
                width = await page.evaluate("document.documentElement.scrollWidth")
                await page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
                return {"images": images, "width": width, "problems": problems}
            finally:
                await browser.close()

    got = asyncio.run(shoot())
    assert not got["problems"], got["problems"]  # no script ran, no blocked resource
    assert got["images"] and all(ok and w > 0 for _, ok, w in got["images"]), got["images"]
    assert got["width"] <= 1280, "the page overflows sideways"
    shot = tmp_path / "page.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(shot) as im:
        assert im.width == 1280 and im.height > 3000
        grey = np.asarray(im.convert("L"), dtype=float)
    assert grey.std() > 20 and (grey < 100).mean() > 0.005, "the screenshot is blank"
    top = grey[:900]
    assert (top < 100).mean() > 0.01, "nothing drawn above the fold"
