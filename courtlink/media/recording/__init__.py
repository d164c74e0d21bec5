"""Server-side recording of a session: each seat's audio and video as the SFU receives it,
muxed into WebM (Matroska for H.264) without decoding.

| module | what |
|---|---|
| ``depacketize.py`` | packets back in order, to whole frames (VP8, H.264, Opus): ``_assemble.c`` |
| ``track.py`` | one file per seat and kind, on the session clock, through reconnects |
| ``journal.py`` | ``journal.jsonl``, ``manifest.json``, and the manifest rebuilt after a kill |
| ``recorder.py`` | the session's recorder: the taps, the writer thread (one per Sfu), the disk |
| ``bench.py`` | ``tools/bench-recording-writer``: the writer thread's CPU per frame |
"""

from courtlink.media.recording.journal import recover
from courtlink.media.recording.recorder import (
    DiskFull,
    Recorder,
    RecordingInfo,
    RecordingWriter,
)

__all__ = ["DiskFull", "Recorder", "RecordingInfo", "RecordingWriter", "recover"]
