"""Courtlink's domain: cases, detentions, sessions and seats, the role policy, invites, consent,
the audit chain, presence, and the storage behind them. No web or media framework is imported
here; signaling/, media/ and web/ build on this package.
"""

from rooms.accounts import Account
from rooms.audit import AuditEvent, AuditKind, Checkpoint, VerifyReport, verify_chain
from rooms.auditor import Auditor
from rooms.cases import Case, normalize_case_number
from rooms.clerk import Clerk, ClerkRules, IssuedInvite
from rooms.clock import Clock, new_id, system_clock
from rooms.consent import CONSENT_SEATS, Consent
from rooms.detentions import Detention, DetentionStatus, Period
from rooms.errors import (
    ConfigError,
    Conflict,
    CourtlinkError,
    Forbidden,
    InvalidInput,
    InviteExpired,
    InviteInvalid,
    InviteRevoked,
    NotAuthenticated,
    NotFound,
    RateLimited,
    SeatNotAllowed,
    Unavailable,
)
from rooms.gate import Gate, GateRules, Login
from rooms.hashing import SecretHasher
from rooms.invites import Invite, InviteClaims, InviteSigner
from rooms.keys import KeyRing, load_or_create_secret
from rooms.policy import (
    AccountPrincipal,
    Action,
    InvitePrincipal,
    Principal,
    TerminalPrincipal,
    authorize,
)
from rooms.presence import MemoryPresence, Occupant, ParticipantState, Presence
from rooms.seats import SEATS, AccountRole, Seat
from rooms.sessions import Session, SessionState
from rooms.storage import Records, Store
from rooms.terminals import Terminal

__all__ = [
    "CONSENT_SEATS",
    "SEATS",
    "Account",
    "AccountPrincipal",
    "AccountRole",
    "Action",
    "AuditEvent",
    "AuditKind",
    "Auditor",
    "Case",
    "Checkpoint",
    "Clerk",
    "ClerkRules",
    "Clock",
    "ConfigError",
    "Conflict",
    "Consent",
    "CourtlinkError",
    "Detention",
    "DetentionStatus",
    "Forbidden",
    "Gate",
    "GateRules",
    "InvalidInput",
    "Invite",
    "InviteClaims",
    "InviteExpired",
    "InviteInvalid",
    "InvitePrincipal",
    "InviteRevoked",
    "InviteSigner",
    "IssuedInvite",
    "KeyRing",
    "Login",
    "MemoryPresence",
    "NotAuthenticated",
    "NotFound",
    "Occupant",
    "ParticipantState",
    "Period",
    "Presence",
    "Principal",
    "RateLimited",
    "Records",
    "Seat",
    "SeatNotAllowed",
    "SecretHasher",
    "Session",
    "SessionState",
    "Store",
    "Terminal",
    "TerminalPrincipal",
    "Unavailable",
    "VerifyReport",
    "authorize",
    "load_or_create_secret",
    "new_id",
    "normalize_case_number",
    "system_clock",
    "verify_chain",
]
