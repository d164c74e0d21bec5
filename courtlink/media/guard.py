"""A guard that no codec is ever opened in the server process.

The SFU forwards RTP without decoding or encoding. aiortc creates codec contexts only through
``aiortc.rtcrtpreceiver.get_decoder`` and ``aiortc.rtcrtpsender.get_encoder``; while the SFU runs
both are replaced by functions that count the attempt and refuse it, so a regression shows up
as a metric (``courtlink_media{kind="codec_attempts"}``) and a log line instead of silent CPU use.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__all__ = ["CODEC_FACTORIES", "CodecGuard"]

log = logging.getLogger("courtlink.media")

# (module, function): every place aiortc makes a decoder or an encoder.
CODEC_FACTORIES = (("aiortc.rtcrtpreceiver", "get_decoder"), ("aiortc.rtcrtpsender", "get_encoder"))


class CodecGuard:
    def __init__(self) -> None:
        self.attempts = 0
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        if self._saved:
            return

        def refuse(codec: Any) -> Any:
            self.attempts += 1
            log.error(
                "refused to open a %s codec in the server process",
                getattr(codec, "mimeType", codec),
            )
            raise RuntimeError("the SFU never decodes or encodes")

        for module_name, name in CODEC_FACTORIES:
            module = importlib.import_module(module_name)
            self._saved.append((module, name, getattr(module, name)))
            setattr(module, name, refuse)

    def uninstall(self) -> None:
        for module, name, original in self._saved:
            setattr(module, name, original)
        self._saved.clear()
