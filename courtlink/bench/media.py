"""The media a load participant sends: pre-encoded VP8 (640x480, about 500 kbit/s, a key frame
every second) and Opus (20 ms frames), made once with PyAV and cached. Sent as is: the load
generator never encodes while it runs."""

from __future__ import annotations

import fractions
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import av

__all__ = ["LoadMedia"]

FPS = 30
SECONDS = 10


@dataclass
class LoadMedia:
    video: list[tuple[bytes, bool]]  # encoded frames at FPS, (data, key frame)
    audio: list[bytes]  # encoded Opus frames, 20 ms each

    @property
    def video_bitrate(self) -> float:
        return sum(len(f) for f, _ in self.video) * 8 / (len(self.video) / FPS)

    @classmethod
    def load(cls, cache: Path) -> LoadMedia:
        path = cache / f"loadmedia-v1-{SECONDS}s.pickle"
        if path.exists():
            media: LoadMedia = pickle.loads(path.read_bytes())  # noqa: S301 - our own cache file
            return media
        media = cls(video=_encode_video(), audio=_encode_audio())
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(media))
        return media


def _encode_video(
    width: int = 640, height: int = 480, bitrate: int = 500_000
) -> list[tuple[bytes, bool]]:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.gop_size = FPS  # a key frame every second, so a new subscriber starts soon
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
    }
    frames: list[tuple[bytes, bool]] = []
    for n in range(FPS * SECONDS):
        # A moving pattern: inter frames carry real detail, as a camera's would.
        rgb = bytearray(width * height * 3)
        for y in range(0, height, 4):
            shade = (y + 4 * n) % 256
            row = bytes((shade, (shade * 3) % 256, 255 - shade)) * width
            start = y * width * 3
            for k in range(4):
                rgb[start + k * width * 3 : start + (k + 1) * width * 3] = row
        frame = av.VideoFrame(width, height, "rgb24")
        frame.planes[0].update(bytes(rgb))
        frame = frame.reformat(format="yuv420p")
        frame.pts = n
        frame.time_base = codec.time_base
        for packet in codec.encode(frame):
            frames.append((bytes(packet), bool(packet.is_keyframe)))
    for packet in codec.encode(None):
        frames.append((bytes(packet), bool(packet.is_keyframe)))
    return frames


def _encode_audio(rate: int = 48000) -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = rate
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    codec.time_base = fractions.Fraction(1, rate)
    out: list[bytes] = []
    n = rate // 50
    for i in range(50 * SECONDS):
        samples = b"".join(
            int(8000 * math.sin(2 * math.pi * 440 * (i * n + k) / rate)).to_bytes(
                2, "little", signed=True
            )
            * 2
            for k in range(n)
        )
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        frame.planes[0].update(samples)
        frame.sample_rate = rate
        frame.pts = i * n
        frame.time_base = codec.time_base
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out
