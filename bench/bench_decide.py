"""Evaluator benchmark (issue #3): the compiled evaluator against hand-written Python.

Workload (bench/gen.py): N rules, each blocking one category from a date, one in five
also restricted to two platforms, one in ten with a penalty ladder, and one rule with a
keyword set; 20,000 listings of which about 10% hit a rule. The policy is generated as
text and goes through the real path: files on disk, ``dsl.load`` (read, parse, check,
compile).

Baselines, measured in the same run on the same listings, giving the same decisions
(checked):
- hand-written: plain Python with a dict from category segment to rules, a regex for the
  keywords, the penalty step picked by hand;
- naive: the same, but looping over every rule for every listing.

Figures printed, with the issue's targets:
- N=1,000: decide / hand-written per decision (<= 3x), decide_many / hand-written (<= 2x)
- decide per decision at N=10,000 vs N=10 (within 1.5x)
- compile time for 10,000 rules (< 2 s; the whole load, parse and check included, is
  printed too) and the peak memory of loading them (< 200 MB)
- p50 and p99 latency of decide

Run ``python bench/bench_decide.py`` (``--quick`` for a smaller, faster run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gen import PLATFORMS, category_name, policy_text  # noqa: E402

import dsl  # noqa: E402
from dsl.evaluate.compiled import CompiledPolicySet  # noqa: E402
from dsl.evaluate.policies import Policies  # noqa: E402

AT = "2022-01-01T00:00:00Z"
AT_INSTANT = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
FILLER = ("vintage", "lamp", "cable", "wallet", "case", "new", "GPU", "sofa", "kit", "battery", "shoes")
KEYWORDS = ("bitcoin", "litecoin", "ether", "mining rig")


# ------------------------------------------------------------------ workload


def load(n_rules: int, workdir: Path) -> tuple[Policies, float, str]:
    """Write the generated policy, then load it the way a service does."""
    text = policy_text(n_rules)
    path = workdir / f"gen{n_rules}"
    path.mkdir(exist_ok=True)
    (path / "generated.policy").write_text(text, encoding="utf-8")
    gc.collect()
    t0 = time.perf_counter()
    policies = dsl.load([path])
    return policies, time.perf_counter() - t0, text


def make_listings(n_rules: int, count: int, seed: int = 11) -> list[dict[str, Any]]:
    """About 10% of the listings hit a rule: ~9% by category (the platform sometimes
    outside a restricted rule's list), ~1% by a keyword. Category paths are drawn from a
    few thousand distinct ones, as on a real marketplace."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        roll = rnd.random()
        if roll < 0.095:
            category = f"Home > {category_name(rnd.randrange(n_rules - 1))} > Sub {i % 2}"
        else:
            category = f"Home > Other {rnd.randrange(2000):05d} > Sub {i % 2}"
        words = rnd.sample(FILLER, 3)
        if rnd.random() < 0.01:
            words.insert(1, rnd.choice(KEYWORDS).title())
        out.append({
            "category": category,
            "title": " ".join(words),
            "description": "Ships in 2 days. " + " ".join(rnd.sample(FILLER, 4)),
            "tags": rnd.sample(FILLER, 2),
            "platform": rnd.choice(PLATFORMS),
            "price": rnd.randrange(1, 5000),
        })
    return out


# ------------------------------------------------------------------ baselines


_Ladder = tuple[tuple[str, ...], ...]
_Entry = tuple[str, dt.datetime, frozenset[str] | None, _Ladder | None]  # qid, start, platforms, ladder
_Hits = list[tuple[str, Any]]
_Decider = Callable[..., tuple[Any, ...]]


def hand_written(policies: Policies) -> tuple[_Decider, _Decider]:
    """What a developer would write by hand for these rules (built from the model, so the
    two always describe the same rules). Returns (indexed, naive)."""
    by_category, every, keyword_rule = _hand_rules(policies)
    words = re.compile(r"(?<!\w)(?:bitcoin|litecoin|ether|mining rig)(?!\w)|比特币")
    keywords = _keywords_fn(keyword_rule, words)
    return _indexed_fn(by_category, keywords, _finish), _naive_fn(every, keywords, _finish)


def _hand_rules(policies: Policies) -> tuple[dict[str, list[_Entry]], list[tuple[str, _Entry]],
                                             tuple[str, dt.datetime, _Ladder | None]]:
    """The rules by category (and in a list, for the naive loop), and the keyword rule."""
    by_category: dict[str, list[_Entry]] = {}
    every = []
    keyword_rule = None
    for rule in policies.policy_set.rules:
        ladder = tuple(step.actions for step in rule.penalty.steps) if rule.penalty else None
        assert rule.start is not None
        if rule.name == "keywords":
            keyword_rule = (rule.qid, rule.start, ladder)
            continue
        text = repr(rule.condition)
        category = re.search(r"Category \d+", text).group(0).lower()  # type: ignore[union-attr]
        platforms = frozenset(re.findall(r"Str\(value='([a-z0-9]+)'\)", text)) or None
        entry = (rule.qid, rule.start, platforms, ladder)
        by_category.setdefault(category, []).append(entry)
        every.append((category, entry))
    assert keyword_rule is not None
    return by_category, every, keyword_rule


def _finish(hits: _Hits, prior: int) -> tuple[Any, ...]:
    if not hits:
        return ("allow", (), None)
    hits.sort()
    penalty = None
    for qid, ladder in hits:  # all ladders are the same one here: the smallest id wins
        if ladder is not None:
            n = min(prior + 1, len(ladder))
            penalty = (qid, n, ladder[n - 1])
            break
    return ("block", tuple(q for q, _ in hits), penalty)


def _keywords_fn(keyword_rule: tuple[str, dt.datetime, _Ladder | None],
                 words: re.Pattern[str]) -> Callable[[dict[str, Any], dt.datetime, _Hits], None]:
    def keywords(listing: dict[str, Any], at: dt.datetime, hits: _Hits) -> None:
        qid, start, ladder = keyword_rule
        if at >= start:
            for piece in (listing.get("title"), listing.get("description"), *(listing.get("tags") or ())):
                if isinstance(piece, str) and words.search(piece.lower()):
                    hits.append((qid, ladder))
                    return

    return keywords


def _indexed_fn(by_category: dict[str, list[_Entry]], keywords: Callable[[dict[str, Any], dt.datetime, _Hits], None],
                finish: Callable[[_Hits, int], tuple[Any, ...]]) -> _Decider:
    def indexed(listing: dict[str, Any], at: dt.datetime, prior: int = 0) -> tuple[Any, ...]:
        hits: _Hits = []
        category = listing.get("category")
        if isinstance(category, str):
            for segment in category.lower().split(">"):
                for qid, start, platforms, ladder in by_category.get(segment.strip(), ()):
                    if at >= start and (platforms is None or listing.get("platform") in platforms):
                        hits.append((qid, ladder))
        keywords(listing, at, hits)
        return finish(hits, prior)

    return indexed


def _naive_fn(every: list[tuple[str, _Entry]], keywords: Callable[[dict[str, Any], dt.datetime, _Hits], None],
              finish: Callable[[_Hits, int], tuple[Any, ...]]) -> _Decider:
    def naive(listing: dict[str, Any], at: dt.datetime, prior: int = 0) -> tuple[Any, ...]:
        hits: _Hits = []
        category = listing.get("category")
        if isinstance(category, str):
            segments = {s.strip() for s in category.lower().split(">")}
            for cat, (qid, start, platforms, ladder) in every:
                if cat in segments and at >= start and (platforms is None or listing.get("platform") in platforms):
                    hits.append((qid, ladder))
        keywords(listing, at, hits)
        return finish(hits, prior)

    return naive


def summary(d: dsl.Decision) -> tuple[Any, ...]:
    p = d.penalty
    return (d.effect, d.rules, None if p is None else (p.rule, p.step, p.actions))


# ------------------------------------------------------------------ timing


def per_decision(fn: Callable[[], Any], count: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``fn`` (which decides ``count`` listings): seconds per decision."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / count


def us(seconds: float) -> str:
    return f"{seconds * 1e6:7.2f} µs"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _deciding(decide: Callable[..., Any], listings: list[dict[str, Any]]) -> Callable[[], Any]:
    """What ``per_decision`` times: ``decide`` over every listing."""
    return lambda: [decide(x, AT) for x in listings]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer listings and rules, one repetition")
    args = ap.parse_args()
    count = 4000 if args.quick else 20_000
    repeat = 2 if args.quick else 5
    big = 3000 if args.quick else 10_000
    print(f"# bench_decide: {count:,} listings, best of {repeat}; Python {sys.version.split()[0]}")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        # --- N=1,000: against the baselines -------------------------------------
        policies, load_s, _ = load(1000, work)
        listings = make_listings(1000, count)
        hand, naive = hand_written(policies)
        decisions = [policies.decide(x, AT) for x in listings]
        hits = sum(d.effect != "allow" for d in decisions)
        wrong = sum(summary(d) != hand(x, AT_INSTANT) for x, d in zip(listings, decisions, strict=True))
        wrong += sum(naive(x, AT_INSTANT) != hand(x, AT_INSTANT) for x in listings[:2000])
        print(f"N=1,000: {hits / count:.1%} of listings hit a rule; decisions differing from hand-written: {wrong}")
        print(f"  plan: {policies.plan_summary()}")

        decide = policies.decide
        # The three are interleaved, best of `repeat` each, so that a noisy machine slows
        # them alike.
        runs: dict[str, list[float]] = {"decide": [], "many": [], "hand": []}
        for _ in range(repeat):
            runs["hand"].append(per_decision(lambda: [hand(x, AT_INSTANT) for x in listings], count, 1))
            runs["decide"].append(per_decision(lambda: [decide(x, AT) for x in listings], count, 1))
            runs["many"].append(per_decision(lambda: policies.decide_many(listings, AT), count, 1))
        t_hand, t_decide, t_many = min(runs["hand"]), min(runs["decide"]), min(runs["many"])
        t_naive = per_decision(lambda: [naive(x, AT_INSTANT) for x in listings[: count // 10]], count // 10, 1)
        t_ref = per_decision(lambda: [policies.decide_reference(x, AT) for x in listings[:200]], 200, 1)
        print(f"  hand-written (dict by category)  {us(t_hand)} per decision")
        print(f"  naive loop over all rules        {us(t_naive)} per decision")
        print(f"  reference evaluator              {us(t_ref)} per decision (the oracle; not meant to be fast)")
        print(f"  decide                           {us(t_decide)} per decision = {t_decide / t_hand:.2f}x hand-written"
              f"  (target <= 3x: {verdict(t_decide / t_hand <= 3)})")
        print(f"  decide_many                      {us(t_many)} per decision = {t_many / t_hand:.2f}x hand-written"
              f"  (target <= 2x: {verdict(t_many / t_hand <= 2)})")

        # --- latency -------------------------------------------------------------
        samples = []
        for x in listings:
            t0 = time.perf_counter_ns()
            decide(x, AT)
            samples.append(time.perf_counter_ns() - t0)
        samples.sort()
        p50, p99 = samples[len(samples) // 2], samples[int(len(samples) * 0.99)]
        print(f"  decide latency: p50 {p50 / 1000:.1f} µs, p99 {p99 / 1000:.1f} µs, max {samples[-1] / 1000:.1f} µs")

        # --- scaling: N=10 vs N=10,000 -------------------------------------------
        times = {}
        for n in (10, big):
            pol, _, _ = load(n, work)
            xs = make_listings(n, count)
            d = pol.decide
            times[n] = per_decision(_deciding(d, xs), count, repeat)
            hit = sum(r.effect != "allow" for r in (d(x, AT) for x in xs[:2000])) / min(count, 2000)
            print(f"N={n:,}: decide {us(times[n])} per decision ({hit:.1%} hit)")
            del pol, xs
        ratio = times[big] / times[10]
        print(f"  N={big:,} vs N=10: {ratio:.2f}x  (target within 1.5x: {verdict(ratio <= 1.5)})")

        # --- compile time and memory for 10,000 rules ------------------------------
        text = policy_text(big)
        path = work / "mem"
        path.mkdir()
        (path / "generated.policy").write_text(text, encoding="utf-8")
        gc.collect()
        tracemalloc.start()
        t0 = time.perf_counter()
        pol = dsl.load([path])
        t_load = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        gc.collect()
        t0 = time.perf_counter()
        CompiledPolicySet(pol.policy_set)
        t_plan = time.perf_counter() - t0
        t0 = time.perf_counter()
        dsl.load([path])
        t_all = time.perf_counter() - t0
        print(f"{big:,} rules ({len(text) / 1e6:.2f} MB of policy): compile (plan the checked model) {t_plan:.3f} s"
              f"  (target < 2 s: {verdict(t_plan < 2)})")
        print(f"  whole dsl.load (read + parse + check + compile): {t_all:.2f} s")
        print(f"  peak memory of dsl.load (tracemalloc): {peak / 1e6:.0f} MB"
              f"  (target < 200 MB: {verdict(peak < 200e6)}); dsl.load under tracemalloc took {t_load:.2f} s")
        print(f"  N=1,000 load took {load_s:.2f} s")


if __name__ == "__main__":
    main()
