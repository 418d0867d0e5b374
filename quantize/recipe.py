"""Recipes as data: tensor-name patterns to ggml types, read from ``recipes.toml``.

A recipe needs no code: an ordered list of ``(pattern, type)`` rules over the tensor stem
(``blk.N.<stem>.weight``), the first match winning as in llama.cpp's ``--tensor-type``,
plus the token-embedding and output types and the machine it is meant for.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from app.core.errors import HerdError
from app.core.hardware.probe import Hardware
from app.core.hardware.spec import hardware_from_spec, parse_size, profile

RECIPES_FILE = Path(__file__).with_name("recipes.toml")
FAMILIES = ("scout", "maverick", "any")

# llama.cpp refuses these without an importance matrix (tensor_requires_imatrix)
IMATRIX_TYPES = frozenset({"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS"})
# what llama.cpp never quantizes: the router stays as the converter wrote it
KEPT_STEMS = ("ffn_gate_inp",)


class RecipeError(HerdError, ValueError):
    """A recipe that does not exist or makes no sense."""


def type_id(name: str) -> int:
    """The ggml type number of ``name`` (``"Q4_K"``).

    Raises:
        RecipeError: not a ggml type.
    """
    try:
        qtype = GGMLQuantizationType[name.upper()]
    except KeyError:
        raise RecipeError(f"{name!r} is not a ggml type.", "Use e.g. Q4_K or Q8_0.") from None
    if qtype not in GGML_QUANT_SIZES:
        raise RecipeError(f"{name} has no known block size.", "Use e.g. Q4_K or Q8_0.")
    return int(qtype)


def ftype_id(name: str) -> int:
    """llama.cpp's file type number for ``name`` (``"Q4_K_M"`` -> 15).

    Raises:
        RecipeError: not a llama.cpp file type.
    """
    for prefix in ("MOSTLY_", "ALL_"):
        member = LlamaFileType.__members__.get(prefix + name.upper())
        if member is not None:
            return int(member)
    raise RecipeError(f"{name!r} is not a llama.cpp file type.", "Use e.g. Q4_K_M.")


def stem_regex(pattern: str) -> str:
    r"""The regex for a stem glob: ``ffn_*_exps`` -> ``^blk\.[0-9]+\.ffn_[^.]*_exps\.weight$``.

    ``token_embd`` and ``output`` name the top-level tensors. The regex is the same in
    Python's ``re`` and in llama.cpp's ``std::regex`` (ECMAScript).
    """
    body = "[^.]*".join(re.escape(part) for part in pattern.split("*"))
    if pattern in ("token_embd", "output"):
        return rf"^{body}\.weight$"
    return rf"^blk\.[0-9]+\.{body}\.weight$"


@dataclass(frozen=True, slots=True)
class Rule:
    """Tensors whose stem matches ``pattern`` (a glob) get ``type``."""

    pattern: str
    type: str

    @property
    def regex(self) -> str:
        """The pattern as an anchored regex over the full tensor name."""
        return stem_regex(self.pattern)


@dataclass(frozen=True, slots=True)
class MachineSpec:
    """The machine a recipe is meant for: a named profile, or a described one."""

    profile: str = ""
    ram: str = ""
    vram: tuple[str, ...] = ()
    unified: bool = False
    cores: int = 16
    gpu_name: str = ""

    def hardware(self) -> Hardware:
        """The machine as the planner sees it."""
        if self.profile:
            return profile(self.profile)
        hw = hardware_from_spec(
            [parse_size(v) for v in self.vram], parse_size(self.ram), self.unified, self.cores
        )
        if self.gpu_name and hw.devices:
            import dataclasses

            named = tuple(dataclasses.replace(d, description=self.gpu_name) for d in hw.devices)
            hw = dataclasses.replace(hw, devices=named)
        return hw


@dataclass(frozen=True, slots=True)
class Recipe:
    """One way to quantize a model, for one kind of machine."""

    name: str
    title: str  # what it is for, in words
    family: str  # "scout", "maverick" or "any"
    ftype: str  # llama.cpp's file type: the default for tensors no rule names
    rules: tuple[Rule, ...]
    machine: MachineSpec
    token_embd: str | None = None  # None: llama.cpp's choice for ftype
    output: str | None = None
    note: str = ""
    allow_disk: bool = False  # judged with weights beyond memory read from disk (mmap)

    @property
    def needs_imatrix(self) -> bool:
        """Whether a type here needs an importance matrix (llama.cpp refuses without)."""
        return any(r.type in IMATRIX_TYPES for r in self.rules)

    def regex_rules(self) -> tuple[tuple[str, int], ...]:
        """``(regex, ggml type)`` for llama.cpp's ``tt_overrides`` (kept stems left out)."""
        return tuple((r.regex, type_id(r.type)) for r in self.rules if r.pattern not in KEPT_STEMS)

    def types(self) -> dict[str, str]:
        """Pattern -> type, the embeddings and output included, in rule order."""
        out = {r.pattern: r.type for r in self.rules}
        if self.token_embd:
            out["token_embd"] = self.token_embd
        if self.output:
            out["output"] = self.output
        return out


def _recipe(raw: dict[str, object]) -> Recipe:
    name = str(raw.get("name", ""))
    try:
        rules = tuple(Rule(str(p), str(t).upper()) for p, t in raw.get("rules", []))  # type: ignore[attr-defined]
        machine = MachineSpec(**raw.get("machine", {}))  # type: ignore[arg-type]
        recipe = Recipe(
            name=name,
            title=str(raw["title"]),
            family=str(raw["family"]),
            ftype=str(raw["ftype"]).upper(),
            rules=rules,
            machine=machine,
            token_embd=str(raw["token_embd"]).upper() if raw.get("token_embd") else None,
            output=str(raw["output"]).upper() if raw.get("output") else None,
            note=str(raw.get("note", "")),
            allow_disk=bool(raw.get("allow_disk", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecipeError(f"Recipe {name or '?'} is malformed: {exc}.") from None
    _check(recipe)
    return recipe


def _check(recipe: Recipe) -> None:
    if recipe.family not in FAMILIES:
        raise RecipeError(f"Recipe {recipe.name}: family {recipe.family!r} is unknown.")
    ftype_id(recipe.ftype)
    for r in recipe.rules:
        type_id(r.type)
        if r.pattern in KEPT_STEMS and r.type != "F32":
            raise RecipeError(
                f"Recipe {recipe.name}: llama.cpp never quantizes {r.pattern}; it stays F32."
            )
    for t in (recipe.token_embd, recipe.output):
        if t:
            type_id(t)


@functools.cache
def load_recipes(path: Path = RECIPES_FILE) -> tuple[Recipe, ...]:
    """Every recipe in ``path`` (``recipes.toml`` next to this module), in file order.

    Raises:
        RecipeError: the file does not parse, or a recipe is malformed.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"Cannot read the recipes in {path.name}: {exc}.") from None
    recipes = tuple(_recipe(raw) for raw in data.get("recipe", []))
    names = [r.name for r in recipes]
    if len(set(names)) != len(names):
        raise RecipeError(f"{path.name} names a recipe twice.")
    return recipes


def recipe_named(name: str, path: Path = RECIPES_FILE) -> Recipe:
    """The recipe called ``name``.

    Raises:
        RecipeError: there is none; the hint lists the known names.
    """
    recipes = load_recipes(path)
    for r in recipes:
        if r.name == name:
            return r
    raise RecipeError(
        f"There is no recipe named {name!r}.",
        f"Known: {', '.join(r.name for r in recipes)} (see `herd quantize --list-recipes`).",
    )
