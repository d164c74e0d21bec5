"""The live session, whatever carries it: the hearing (joins, leaves, replacement, the judge's
controls, media negotiation), who holds which seat (presence, in memory or Redis), the ports to
the edge (outbox) and to media (MediaPort), who sees and hears whom (routing), ICE for browsers."""
