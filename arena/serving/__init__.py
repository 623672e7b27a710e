"""The serving backends behind one contract.

`protocol` is the bottom (the `ArenaBackend` Protocol the service depends on); `common` holds what every
backend shares (settings, telemetry, pair updates, the compute pool); `backends` is the one factory
(peft | vllm | llamacpp | remote | auto); each backend is its own module (`peft_engine`, `vllm_backend`,
`llamacpp_backend`, `remote_backend`) with its settings beside it (`vllm_config`, `llamacpp_settings`).

Run as: python -m pytest tests/test_backend_choice.py tests/test_engine.py -q
"""
