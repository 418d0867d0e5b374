"""The load planner: pure functions from (model header, hardware, wishes) to a Plan.

``planner`` makes the plan; ``search`` tries context sizes, ``placement`` decides where each
layer's tensors go, ``kv_estimate`` and ``bandwidth`` give bytes and speeds, ``words`` says
why, and ``result`` holds the value objects. No I/O and no llama.cpp here.
"""
