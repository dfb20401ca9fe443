"""Generated policy sets for the benchmarks: realistic rules at any size."""

from __future__ import annotations

import random

PLATFORMS = ["taobao", "xianyu", "aliexpress", "lazada", "tmall", "1688"]


def category_name(i: int) -> str:
    return f"Category {i:05d}"


def policy_text(n_rules: int, *, seed: int = 7, name: str = "generated") -> str:
    """N rules, each blocking one category from a date; one in five also restricted to
    some platforms; one rule with a keyword set; a ladder used by one rule in ten."""
    rnd = random.Random(seed)
    lines = [
        f"policy {name}",
        '  title "Generated benchmark policy"',
        '  authority "bench/gen.py"',
        '  timezone "Asia/Shanghai"',
        "",
        "set keywords = ['bitcoin', 'litecoin', 'ether', 'mining rig', '比特币']",
        "ladder escalate = remove listing then remove listing and deduct 6 points then restrict listing for 30d "
        "then close account",
        "",
        "rule keywords: from 2021-10-08 block mentions any keywords penalty escalate",
    ]
    for i in range(n_rules - 1):
        day = 1 + rnd.randrange(28)
        rule = f"rule r{i}: from 2021-{1 + rnd.randrange(12):02d}-{day:02d} block category '{category_name(i)}'"
        if i % 5 == 0:
            plats = rnd.sample(PLATFORMS, 2)
            rule += f" if platform in ['{plats[0]}', '{plats[1]}']"
        if i % 10 == 0:
            rule += " penalty escalate"
        lines.append(rule)
    return "\n".join(lines) + "\n"
