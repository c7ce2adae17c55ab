# Loaded by every real vLLM engine of the test tier (PYTHONPATH=<this dir>).
# NIXL 1.5.1's Python API creates its agent with a progress thread whose delay is hard-coded to 0 us,
# so every idle engine busy-polls a core; on a 2-core machine that starves the other engine and gives
# 5-30 s outliers. With NIXL_PTHR_DELAY_US=N the thread stays (switching it off stalls transfers) but
# sleeps N us between polls. Nothing else is changed.
import os

_delay = os.environ.get("NIXL_PTHR_DELAY_US")
if _delay:
    for _name in ("nixl_cu13", "nixl_cu12"):
        try:
            _api = __import__(_name + "._api", fromlist=["_api"])
            _bind = _api.nixlBind
        except Exception:
            continue
        _base = _bind.nixlAgentConfig
        _field = _base.pthrDelay

        class _DelayedConfig(_base):
            @property
            def pthrDelay(self):
                return _field.__get__(self)

            @pthrDelay.setter
            def pthrDelay(self, value, _floor=int(_delay)):
                _field.__set__(self, max(int(value), _floor))

        _bind.nixlAgentConfig = _DelayedConfig
