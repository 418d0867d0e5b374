"""What the Model Manager says about a repository and its quants, before any download.

The card's licence and downloads come from the Hub's model info (real huggingface_hub
against the local server); parameter counts from the name; the quality hints and the
recommendation from the quant names and the verdicts.
"""

from __future__ import annotations

import pytest

from app.core.hardware.probe import Backend, Device, Hardware
from app.core.hub.catalog import licence_name, model_facts, repo_card, repo_quants, search
from app.core.hub.verdict import (
    Fit,
    Quality,
    Verdict,
    judge,
    machine_text,
    quality,
    recommend,
    too_coarse,
    why_none_fits,
)
from tests.hub.hub_repos import showcase_repo

SCOUT = "herd-test/Llama-4-Scout-17B-16E-Instruct-GGUF"
SHOWCASE = "unsloth/Llama-4-Scout-17B-16E-Instruct-GGUF"
GiB = 1 << 30


@pytest.fixture
def showcase(hub):
    return hub.add(showcase_repo(SHOWCASE))


def test_licence_and_downloads_come_from_the_hubs_model_info(hub, client, paths, showcase):
    quants = repo_quants(client, paths.hub_cache, SHOWCASE)
    assert quants.license == "llama4"  # the card says license: other, license_name: llama4
    assert quants.downloads == 48_213
    assert quants.vision
    card = repo_card(SHOWCASE, quants)
    assert (card.title, card.publisher, card.note) == (
        "Llama 4 Scout",
        "unsloth",
        "dynamic UD quants",
    )
    assert card.facts is not None and card.facts.text() == "109B total, 17B active, 16 experts"
    assert card.licence == "Llama 4 Community License"
    assert card.downloads_text() == "48,213 downloads last month"
    assert card.vision is True and not card.gated


def test_a_plain_licence_tag_and_a_repo_outside_the_curated_list(hub, client, paths):
    quants = repo_quants(client, paths.hub_cache, SCOUT)
    card = repo_card(SCOUT, quants)
    assert quants.license == "llama4" and card.licence == "Llama 4 Community License"
    assert (card.title, card.publisher) == ("Llama-4-Scout-17B-16E-Instruct-GGUF", "herd-test")
    assert card.downloads_text() == "10 downloads last month"
    hits = {h.repo_id: h for h in search(client, "scout")}
    assert hits[SCOUT].license == "llama4"  # search hits carry the licence tag


def test_before_the_listing_the_card_knows_only_the_name():
    card = repo_card("lmstudio-community/Llama-4-Maverick-17B-128E-Instruct-GGUF")
    assert card.title == "Llama 4 Maverick" and card.publisher == "LM Studio"
    assert card.facts is not None and card.facts.text() == "400B total, 17B active, 128 experts"
    assert card.vision is None and card.licence == "" and card.downloads_text() == ""


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("meta-llama_Llama-4-Scout-17B-16E-Instruct-GGUF", "Scout"),
        ("someone/llama-4-17b-16e-gguf", "Scout"),
        ("unsloth/Llama-4-Maverick-17B-128E-Instruct-GGUF", "Maverick"),
        ("x/Llama-4-17B-128E-GGUF", "Maverick"),
        ("bartowski/Qwen3-30B-A3B-GGUF", None),
    ],
)
def test_parameter_counts_from_the_name(name, family):
    facts = model_facts(name)
    assert (facts.family if facts else None) == family


def test_licence_words():
    assert licence_name("llama4") == "Llama 4 Community License"
    assert licence_name("apache-2.0") == "Apache 2.0"
    assert licence_name("cc-by-4.0") == "cc-by-4.0"  # unknown ids as they are
    assert licence_name("") == ""


@pytest.mark.parametrize(
    ("quant", "hint"),
    [
        ("Q8_0", "near-lossless"),
        ("Q6_K", "near-lossless"),
        ("UD-Q6_K_XL", "near-lossless"),
        ("Q5_K_M", "good"),
        ("Q4_K_M", "good"),
        ("UD-Q4_K_XL", "good"),
        ("IQ4_XS", "good"),
        ("Q3_K_M", "fair"),
        ("UD-Q3_K_XL", "fair"),
        ("IQ3_XXS", "fair"),
        ("Q2_K", "low"),
        ("UD-Q2_K_XL", "low"),
        ("IQ2_XXS", "low"),
        ("UD-IQ1_S", "very low \u2014 answers suffer"),
        ("IQ1_M", "very low \u2014 answers suffer"),
        ("UD-TQ1_0", "very low \u2014 answers suffer"),
        ("BF16", "original precision"),
    ],
)
def test_quality_hints(quant, hint):
    q = quality(quant)
    assert q is not None and q.text() == hint


def test_unknown_names_have_no_hint_and_order_is_by_quality():
    assert quality("plain") is None
    assert Quality.VERY_LOW < Quality.LOW < Quality.FAIR < Quality.GOOD < Quality.NEAR_LOSSLESS
    assert too_coarse("UD-IQ1_S") and too_coarse("IQ2_XXS") and too_coarse("IQ2_XS")
    assert not too_coarse("IQ2_M") and not too_coarse("Q2_K") and not too_coarse("Q4_K_M")


def _gpu(vram_gib: int, ram_gib: int) -> Hardware:
    v = vram_gib * GiB
    dev = Device("CUDA0", Backend.CUDA, "NVIDIA GeForce RTX 4090", v, v)
    return Hardware((dev,), ram_gib * GiB, ram_gib * GiB, 16)


def test_a_1_bit_quant_on_the_gpu_does_not_beat_a_q4_at_a_chatting_speed():
    hw = _gpu(24, 64)
    names = ["UD-IQ1_S", "Q4_K_M", "Q8_0"]
    sizes = [15 * GiB, 61 * GiB, 107 * GiB]
    judged = [(s, judge(s, f"Llama-4-Scout {n}", hw)) for s, n in zip(sizes, names, strict=True)]
    assert judged[0][1].fit is Fit.ALL_GPU and judged[0][1].tok_s > 100  # the tempting one
    assert judged[1][1].tok_s >= 10
    assert recommend(judged, names) == 1


def test_the_recommendation_follows_the_first_run_rules():
    fast_1bit = Verdict(Fit.ALL_GPU, 90.0)
    slow_q4 = Verdict(Fit.EXPERTS_CPU, 6.0)  # half a chatting speed: still preferred
    crawl_q4 = Verdict(Fit.EXPERTS_CPU, 2.0)
    assert recommend([(15, fast_1bit), (61, slow_q4)], ["IQ1_S", "Q4_K_M"]) == 1
    # nothing of real precision at half a chatting speed: the 1-bit one, said so by its hint
    assert recommend([(15, fast_1bit), (61, crawl_q4)], ["IQ1_S", "Q4_K_M"]) == 0
    # all on the GPU first, among quants of real precision
    gpu_q3 = Verdict(Fit.ALL_GPU, 60.0)
    ram_q4 = Verdict(Fit.EXPERTS_CPU, 25.0)
    assert recommend([(45, gpu_q3), (61, ram_q4)], ["Q3_K_M", "Q4_K_M"]) == 0
    assert recommend([(9, Verdict(Fit.NO_FIT, 0.0))], ["Q4_K_M"]) is None


def test_badges_and_context_in_one_number_style():
    assert Verdict(Fit.ALL_GPU, 41.6).badge() == "fits on GPU, ~42 tok/s"
    assert Verdict(Fit.EXPERTS_CPU, 9.4).badge() == "experts in RAM, ~9 tok/s"
    assert Verdict(Fit.CPU_ONLY, 0.4).badge() == "CPU only, <1 tok/s"
    assert Verdict(Fit.NO_FIT, 0.0).badge() == "does not fit"
    planned = Verdict(Fit.EXPERTS_CPU, 11.0, planned=True, n_ctx=32_768)
    assert planned.text() == "experts in CPU memory at about 11 tok/s, 32,768 tokens of context"


def test_why_none_fits_in_numbers_and_what_to_do():
    laptop = Hardware((), 16 * GiB, 12 * GiB, 8)
    why, what = why_none_fits(int(27.6 * GiB), "unsloth/Llama-4-Scout UD-IQ1_S", laptop)
    assert "27.6 GiB" in why and "needs about" in why and "12.0 GiB of RAM free" in why
    assert "more memory" in what and "Scout" not in what
    why, what = why_none_fits(122 * GiB, "Llama-4-Maverick-17B-128E", _gpu(24, 64))
    assert "24.0 GiB of GPU memory" in why
    assert "Llama 4 Scout needs about a quarter" in what


def test_machine_words():
    assert machine_text(_gpu(24, 64)) == (
        "NVIDIA GeForce RTX 4090 (24.0 GiB free) and 64.0 GiB of RAM free"
    )
    assert machine_text(Hardware((), 64 * GiB, 60 * GiB, 8)) == "no GPU, 60.0 GiB of RAM free"
