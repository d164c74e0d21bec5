"""The live session: who holds which seat (presence, in memory or Redis), the port between
signaling and media, who sees and hears whom (routing), ICE servers for browsers."""
