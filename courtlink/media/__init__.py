"""The media plane: an SFU on aiortc's ICE/DTLS/SRTP that forwards RTP between the participants
of a session without decoding or encoding.

``Sfu`` implements courtlink.live.media_port.MediaPort; signaling/ calls it through that port
and never imports this package. One ``Router`` per live session; a ``Peer`` per participant
with fixed slots; a ``Producer`` per incoming track and a ``Consumer`` per outgoing slot.
"""

from courtlink.media.consumer import Consumer
from courtlink.media.peer import Peer
from courtlink.media.producer import Producer
from courtlink.media.router import Router
from courtlink.media.sfu import MediaSettings, Sfu

__all__ = ["Consumer", "MediaSettings", "Peer", "Producer", "Router", "Sfu"]
