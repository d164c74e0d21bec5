"""The media plane: an SFU on aiortc that forwards RTP between the participants of a session.

``Sfu`` implements rooms.media_port.MediaPort; signaling/ calls it through that port and never
imports this package. (Issue 2 lays out the interface; the media issue fills in forwarding.)
"""

from media.sfu import Router, Sfu

__all__ = ["Router", "Sfu"]
