"""Typed application keys: every piece of app state is reached through one of these."""

from __future__ import annotations

from aiohttp import web

from config import Settings
from rooms.auditor import Auditor
from rooms.clerk import Clerk
from rooms.gate import Gate
from rooms.keys import KeyRing
from rooms.media_port import MediaPort
from rooms.metrics import Metrics
from rooms.presence import Presence
from rooms.registry import Registry
from rooms.storage import Store
from signaling.server import SignalingServer
from web.documents import CourtSeal, FileStore
from web.i18n import Translator
from web.services import Services

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
