"""What a headless participant receives, written to files (``courtlink participant --record``).

Each remote seat gets ``<seat>.webm`` (its video, VP8) and ``<seat>.wav`` (its audio, 16-bit
PCM). A seat's files stay open across new peer connections (a reconnect, a caucus ending), so
one file holds everything that seat sent during the run. Frames are stamped with the time they
arrived, so a gap in what arrived is a gap in the file, not a jump cut.

This records on the participant's side, for terminals without a browser and for checking a
session by ear and eye; the server itself records nothing (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import fractions
import logging
import time
import wave
from pathlib import Path
from typing import Any, BinaryIO

import av
import av.container

__all__ = ["SeatRecorder"]

log = logging.getLogger("courtlink.participant")

MILLISECONDS = fractions.Fraction(1, 1000)


class SeatRecorder:
    """The files of one remote seat. ``video`` and ``audio`` take decoded frames in arrival
    order; ``close`` finishes both files. Errors while writing stop the recording of that
    kind (with one log line) and never the participant."""

    def __init__(self, directory: Path, seat: str) -> None:
        self.video_path = directory / f"{seat}.webm"
        self.audio_path = directory / f"{seat}.wav"
        self._start = time.monotonic()
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._last_pts = -1
        self._wav: wave.Wave_write | None = None
        self._wav_file: BinaryIO | None = None
        self._wav_format: tuple[int, int] | None = None
        self.video_frames = 0
        self.audio_frames = 0
        self._failed: set[str] = set()

    def video(self, frame: av.VideoFrame) -> None:
        if "video" in self._failed:
            return
        try:
            self._write_video(frame)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._failed.add("video")
            log.warning("stopped recording video to %s: %s", self.video_path, exc)

    def audio(self, frame: av.AudioFrame) -> None:
        if "audio" in self._failed:
            return
        try:
            self._write_audio(frame)
        except (wave.Error, OSError, ValueError) as exc:
            self._failed.add("audio")
            log.warning("stopped recording audio to %s: %s", self.audio_path, exc)

    def _write_video(self, frame: av.VideoFrame) -> None:
        if self._container is None:
            self._size = (frame.width, frame.height)
            self._container = av.open(str(self.video_path), mode="w", format="webm")
            stream = self._container.add_stream("libvpx", rate=30)
            stream.width, stream.height = self._size
            stream.pix_fmt = "yuv420p"
            stream.time_base = MILLISECONDS
            stream.codec_context.time_base = MILLISECONDS
            self._stream = stream
        assert self._size is not None
        # Stamped by arrival; a frame in the same millisecond as the previous one moves on by one.
        pts = max(int((time.monotonic() - self._start) * 1000), self._last_pts + 1)
        self._last_pts = pts
        width, height = self._size
        out = frame.reformat(width=width, height=height, format="yuv420p")
        out.pts = pts
        out.time_base = MILLISECONDS
        for packet in self._stream.encode(out):
            self._container.mux(packet)
        self.video_frames += 1

    def _write_audio(self, frame: av.AudioFrame) -> None:
        if frame.format.name != "s16":
            raise ValueError(f"unexpected audio sample format {frame.format.name}")
        channels = len(frame.layout.channels)
        if self._wav is None:
            # The file first: wave.open on a path that cannot be opened leaves a half-built
            # writer that complains when collected.
            self._wav_file = self.audio_path.open("wb")
            self._wav = wave.open(self._wav_file, "wb")  # noqa: SIM115 -- closed in close()
            self._wav.setnchannels(channels)
            self._wav.setsampwidth(2)
            self._wav.setframerate(frame.sample_rate)
            self._wav_format = (channels, frame.sample_rate)
        if self._wav_format != (channels, frame.sample_rate):
            raise ValueError("the audio format changed mid-stream")
        # Packed s16: one plane, padded beyond the samples.
        self._wav.writeframes(bytes(frame.planes[0])[: frame.samples * channels * 2])
        self.audio_frames += 1

    def close(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
            with contextlib.suppress(av.FFmpegError, OSError):
                self._container.close()
            self._container = None
        if self._wav is not None:
            with contextlib.suppress(wave.Error, OSError):
                self._wav.close()
            self._wav = None
        if self._wav_file is not None:
            with contextlib.suppress(OSError):
                self._wav_file.close()
            self._wav_file = None
