"""MoE-aware quantization for Llama 4: recipes as data, on llama.cpp's own quantizer.

In Scout and Maverick almost all bytes are routed experts, yet each token reads one expert
per layer; attention, the shared expert, the router and the embeddings are read for every
token. A recipe keeps those high and squeezes the experts, for a named machine.

Public API (stable; the bench and the window's Quantize dialog build on it):

``quantize.recipe``
    ``Recipe`` (frozen): ``name`` (``"scout-24gb-gpu"``), ``title`` (what it is for: "fits a
    24 GB GPU + 64 GB RAM"), ``family`` (``"scout"``, ``"maverick"`` or ``"any"``),
    ``ftype`` (llama.cpp file type name, ``"Q4_K_M"``), ``rules`` (ordered ``Rule(pattern,
    type)``; ``pattern`` is a glob on the tensor stem, ``ffn_*_exps``; the first match wins,
    as in llama.cpp), ``token_embd`` / ``output`` (type names or None for llama.cpp's
    choice), ``machine`` (a ``MachineSpec``: the hardware it is meant for) and
    ``needs_imatrix`` (True when a type needs an importance matrix: IQ1/IQ2/IQ3_XXS),
    ``allow_disk`` (judged with weights beyond memory read from disk: the two Maverick
    recipes for 64 GB machines, which nothing fits), ``note`` and ``types()`` (pattern ->
    type, embeddings and output included).
    ``load_recipes() -> tuple[Recipe, ...]`` reads ``recipes.toml``; ``recipe_named(name)``
    (raises ``RecipeError``, a HerdError, for an unknown name); ``Recipe.regex_rules()``:
    the ``(regex, type)`` pairs handed to llama.cpp's ``tt_overrides``.
``quantize.predict``
    ``predict(info: GGUFInfo, recipe) -> Prediction``: per tensor the type llama.cpp will
    write (``TensorChoice(name, group, src_type, type, shape, n_bytes)``, fallbacks for odd
    row sizes included), ``data_bytes``, ``file_bytes`` (the predicted output size, header
    included), ``by_pattern()`` (rule pattern -> type, tensors, bytes) and ``as_info()``
    (a ``GGUFInfo`` of the predicted file, which the planner reads).
``quantize.layouts``
    ``scout_info()`` / ``maverick_info()``: the real models' header-only layouts (BF16
    source), from shape facts kept here as data; ``family_info(family)``.
``quantize.verdict``
    ``judge(prediction, recipe, hardware=None) -> Verdict``: the planner's verdict on the
    recipe's machine (or ``hardware``): ``fits``, ``gpu_expert_layers`` / ``n_moe_layers``
    (where the experts go), ``tok_s``, ``disk_bytes``, ``plan`` (the full ``Plan``) and
    ``summary()`` (one line of words).
``quantize.imatrix``
    ``read_imatrix(path) -> Imatrix`` for both llama.cpp formats (GGUF ``*.in_sum2`` /
    ``*.counts`` and the legacy ``.dat``); ``Imatrix.entries`` (name -> float32 values,
    as llama-quantize hands them to llama.cpp: sums divided by counts). Errors are
    ``ImatrixError`` (a HerdError).
``quantize.job``
    ``QuantizeRequest(src, out, recipe, imatrix=None, keep_split=False, threads=0,
    hardware=None)``; ``plan_quantize(request) -> QuantizePlan`` (reads the headers,
    predicts, judges, reads and checks the imatrix; writes nothing): ``.prediction``,
    ``.verdict``, ``.warnings``, ``.outputs``. ``check_imatrix(imatrix, prediction)``
    raises ``ImatrixError`` naming a missing entry a very low-bit type needs.
    ``run_quantize(plan, cancel: CancelToken, *, log_path) -> Iterator[QuantizeEvent]``:
    checks the disk space first, runs llama.cpp in a child process writing to
    ``OUT.partial``, yields ``QuantizeProgress(fraction, written, expected, elapsed_s,
    eta_s)``, then ``QuantizeFinished(outputs, written, seconds)`` (alias
    ``QuantizeDone``) or ``QuantizeCancelled()``; renames on success, deletes every
    partial file on failure, cancel or an exception. Errors are ``QuantizeError`` (a
    HerdError with ``log_path``). The events and the child runner live in
    ``app.core.engine.quantizer`` (the only place llama.cpp is called, in a child).
"""
