"""Typed application keys: every piece of app state is reached through one of these."""

from __future__ import annotations

from aiohttp import web

from courtlink.config import Settings
from courtlink.court.auditor import Auditor
from courtlink.court.clerk import Clerk
from courtlink.court.documents.registry import Registry
from courtlink.court.gate import Gate
from courtlink.court.keys import KeyRing
from courtlink.live.media_port import MediaPort
from courtlink.live.presence import Presence
from courtlink.metrics import Metrics
from courtlink.papers import CourtSeal, FileStore
from courtlink.signaling.server import SignalingServer
from courtlink.storage import Store
from courtlink.web.i18n import Translator
from courtlink.web.services import Services

__all__ = [
    "AUDITOR",
    "CLERK",
    "FILES",
    "GATE",
    "KEYRING",
    "MEDIA",
    "METRICS",
    "PRESENCE",
    "REGISTRY",
    "SEAL",
    "SERVICES",
    "SETTINGS",
    "SIGNALING",
    "STORE",
    "TRANSLATOR",
]

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
KEYRING = web.AppKey("keyring", KeyRing)
AUDITOR = web.AppKey("auditor", Auditor)
CLERK = web.AppKey("clerk", Clerk)
GATE = web.AppKey("gate", Gate)
PRESENCE = web.AppKey("presence", Presence)
SIGNALING = web.AppKey("signaling", SignalingServer)
MEDIA = web.AppKey("media", MediaPort)
METRICS = web.AppKey("metrics", Metrics)
TRANSLATOR = web.AppKey("translator", Translator)
SERVICES = web.AppKey("services", Services)
REGISTRY = web.AppKey("registry", Registry)
SEAL = web.AppKey("seal", CourtSeal)
FILES = web.AppKey("files", FileStore)
